;; Uses memory.fill, whose cost does not fit a per-instruction budget; refused at load.
(module
  (memory (export "memory") 2)
  (func (export "ap_abi_version") (result i32) i32.const 1)
  (func (export "ap_event_buffer") (result i32) i32.const 4096)
  (func (export "ap_filter") (param i32 i32) (result i32)
    (memory.fill (i32.const 0) (i32.const 0) (i32.const 65536))
    i32.const 1))
