;; Hostile: spins forever on events with an odd pid (the fuel budget must stop it);
;; drops the others, so a test can see the instance keeps working after each trap.
(module
  (memory (export "memory") 2)
  (func (export "ap_abi_version") (result i32) i32.const 1)
  (func (export "ap_event_buffer") (result i32) i32.const 4096)
  (func (export "ap_filter") (param $ev i32) (param $len i32) (result i32)
    (if (i32.and (i32.load offset=16 (local.get $ev)) (i32.const 1))
      (then (loop $spin (br $spin))))
    i32.const 0))
