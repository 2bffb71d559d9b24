;; Recurses pid levels deep and keeps the event: past the depth limit it traps, at the
;; same pid on every engine.
(module
  (memory (export "memory") 2)
  (func (export "ap_abi_version") (result i32) i32.const 1)
  (func (export "ap_event_buffer") (result i32) i32.const 4096)
  (func $down (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (call $down (i32.sub (local.get $n) (i32.const 1))) (i32.const 1)))))
  (func (export "ap_filter") (param $ev i32) (param $len i32) (result i32)
    (drop (call $down (i32.load offset=16 (local.get $ev))))
    (i32.const 1)))
