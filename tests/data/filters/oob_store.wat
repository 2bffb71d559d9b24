;; Hostile: writes 8 bytes straddling the end of its memory on odd pids (the whole
;; store must fault, nothing may be written past the end).
(module
  (memory (export "memory") 2)
  (func (export "ap_abi_version") (result i32) i32.const 1)
  (func (export "ap_event_buffer") (result i32) i32.const 4096)
  (func (export "ap_filter") (param $ev i32) (param $len i32) (result i32)
    (if (i32.and (i32.load offset=16 (local.get $ev)) (i32.const 1))
      (then (i64.store
              (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 4))
              (i64.const -1))))
    i32.const 0))
