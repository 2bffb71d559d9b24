;; Forbidden: a filter must own its memory, not import one; must be refused at load.
(module
  (import "env" "memory" (memory 2))
  (export "memory" (memory 0))
  (func (export "ap_abi_version") (result i32) i32.const 1)
  (func (export "ap_event_buffer") (result i32) i32.const 4096)
  (func (export "ap_filter") (param i32 i32) (result i32) i32.const 1))
