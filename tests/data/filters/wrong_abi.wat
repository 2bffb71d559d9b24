;; Built for a future ABI version; must be refused at load.
(module
  (memory (export "memory") 2)
  (func (export "ap_abi_version") (result i32) i32.const 99)
  (func (export "ap_event_buffer") (result i32) i32.const 4096)
  (func (export "ap_filter") (param i32 i32) (result i32) i32.const 1))
