;; Hostile configuration hook: ap_init never returns; the setup budget must stop it
;; and the load must fail.
(module
  (memory (export "memory") 2)
  (func (export "ap_abi_version") (result i32) i32.const 1)
  (func (export "ap_event_buffer") (result i32) i32.const 4096)
  (func (export "ap_init") (param i32 i32) (result i32) (loop $l (br $l)) i32.const 0)
  (func (export "ap_filter") (param i32 i32) (result i32) i32.const 1))
