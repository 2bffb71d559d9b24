;; Every kind of trap, chosen by pid % 8 (all engines must classify them alike):
;;   0: keep   1: unreachable   2: divide by zero   3: call_indirect to a missing entry
;;   4: call_indirect with the wrong type   5: env.log with an out-of-bounds buffer
;;   6: float-to-int overflow   7: drop
(module
  (import "env" "log" (func $log (param i32 i32 i32)))
  (type $i2i (func (param i32) (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $id)
  (memory (export "memory") 2)
  (func (export "ap_abi_version") (result i32) i32.const 1)
  (func (export "ap_event_buffer") (result i32) i32.const 4096)
  (func $id (param i32) (result i32) (local.get 0))
  (func (export "ap_filter") (param $ev i32) (param $len i32) (result i32)
    (local $k i32)
    (local.set $k (i32.rem_u (i32.load offset=16 (local.get $ev)) (i32.const 8)))
    (if (i32.eq (local.get $k) (i32.const 1)) (then unreachable))
    (if (i32.eq (local.get $k) (i32.const 2))
      (then (drop (i32.div_u (i32.const 1) (i32.sub (local.get $k) (i32.const 2))))))
    (if (i32.eq (local.get $k) (i32.const 3))
      (then (drop (call_indirect (type $i2i) (i32.const 0) (i32.const 1)))))
    (if (i32.eq (local.get $k) (i32.const 4))
      (then (call_indirect (param i32 i32 i32) (i32.const 0) (i32.const 0) (i32.const 0)
              (i32.const 0))))
    (if (i32.eq (local.get $k) (i32.const 5))
      (then (call $log (i32.const 0) (i32.const 0x7ffffff0) (i32.const 64))))
    (if (i32.eq (local.get $k) (i32.const 6))
      (then (drop (i32.trunc_f64_s (f64.const 1e300)))))
    (i32.ne (local.get $k) (i32.const 7))))
