;; Hostile: unbounded recursion on odd pids (the call-depth limit must stop it).
;; The recursion is not a tail call, so no compiler can turn it into a loop.
(module
  (memory (export "memory") 2)
  (func (export "ap_abi_version") (result i32) i32.const 1)
  (func (export "ap_event_buffer") (result i32) i32.const 4096)
  (func $rec (param $n i32) (result i32)
    (i32.add (call $rec (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))
  (func (export "ap_filter") (param $ev i32) (param $len i32) (result i32)
    (if (i32.and (i32.load offset=16 (local.get $ev)) (i32.const 1))
      (then (drop (call $rec (i32.const 0)))))
    i32.const 0))
