;; Loops pid times, then keeps the event: with a small budget some pids run out of fuel,
;; at the same pid on every engine. Odd iterations also call a helper, so calls and
;; depth accounting are exercised.
(module
  (memory (export "memory") 2)
  (func (export "ap_abi_version") (result i32) i32.const 1)
  (func (export "ap_event_buffer") (result i32) i32.const 4096)
  (func $step (param $x i32) (result i32) (i32.add (local.get $x) (i32.const 3)))
  (func (export "ap_filter") (param $ev i32) (param $len i32) (result i32)
    (local $n i32) (local $acc i32)
    (local.set $n (i32.load offset=16 (local.get $ev)))
    (block $out
      (loop $l
        (br_if $out (i32.eqz (local.get $n)))
        (if (i32.and (local.get $n) (i32.const 1))
          (then (local.set $acc (call $step (local.get $acc)))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l)))
    (i32.store offset=32 (local.get $ev) (i32.add (local.get $acc) (i32.const 1)))
    (i32.const 2)))
