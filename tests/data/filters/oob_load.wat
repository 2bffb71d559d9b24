;; Hostile: reads far outside its linear memory on odd pids.
(module
  (memory (export "memory") 2)
  (func (export "ap_abi_version") (result i32) i32.const 1)
  (func (export "ap_event_buffer") (result i32) i32.const 4096)
  (func (export "ap_filter") (param $ev i32) (param $len i32) (result i32)
    (if (i32.and (i32.load offset=16 (local.get $ev)) (i32.const 1))
      (then (drop (i32.load (i32.const 0x7ff00000)))))
    i32.const 0))
