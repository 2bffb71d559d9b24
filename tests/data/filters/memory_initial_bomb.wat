;; Hostile: asks for 4 GiB of linear memory up front; must be refused at load.
(module
  (memory (export "memory") 65536)
  (func (export "ap_abi_version") (result i32) i32.const 1)
  (func (export "ap_event_buffer") (result i32) i32.const 4096)
  (func (export "ap_filter") (param i32 i32) (result i32) i32.const 1))
