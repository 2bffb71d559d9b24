;; Hostile: grows its memory one page at a time until memory.grow fails, on every event.
;; The cap must hold (growth returns -1 there); the filter then keeps the event and
;; reports the page count it reached in the tag, for the test to check.
(module
  (memory (export "memory") 2)
  (func (export "ap_abi_version") (result i32) i32.const 1)
  (func (export "ap_event_buffer") (result i32) i32.const 4096)
  (func (export "ap_filter") (param $ev i32) (param $len i32) (result i32)
    (loop $grow
      (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    ;; tag = memory.size as 4 decimal digits (cap <= 9999 pages in the tests)
    (i32.store8 offset=64 (local.get $ev)
      (i32.add (i32.const 48) (i32.rem_u (i32.div_u (memory.size) (i32.const 1000)) (i32.const 10))))
    (i32.store8 offset=65 (local.get $ev)
      (i32.add (i32.const 48) (i32.rem_u (i32.div_u (memory.size) (i32.const 100)) (i32.const 10))))
    (i32.store8 offset=66 (local.get $ev)
      (i32.add (i32.const 48) (i32.rem_u (i32.div_u (memory.size) (i32.const 10)) (i32.const 10))))
    (i32.store8 offset=67 (local.get $ev)
      (i32.add (i32.const 48) (i32.rem_u (memory.size) (i32.const 10))))
    (i32.store8 offset=68 (local.get $ev) (i32.const 0))
    i32.const 2))
