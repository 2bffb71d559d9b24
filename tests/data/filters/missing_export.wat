;; No ap_filter entry point; must be refused at load.
(module
  (memory (export "memory") 2)
  (func (export "ap_abi_version") (result i32) i32.const 1)
  (func (export "ap_event_buffer") (result i32) i32.const 4096))
