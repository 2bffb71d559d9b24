;; Returns AP_FILTER_TRANSFORM with a record that breaks a rule, chosen by pid % 6:
;;   0: comm without a NUL   1: pid changed        2: user stack grew
;;   3: weight zeroed        4: control byte in tag  5: a valid transform (tag "ok",
;;                                                      user stack trimmed to 1 frame)
(module
  (memory (export "memory") 2)
  (func (export "ap_abi_version") (result i32) i32.const 1)
  (func (export "ap_event_buffer") (result i32) i32.const 4096)
  (func (export "ap_filter") (param $ev i32) (param $len i32) (result i32)
    (local $k i32)
    (local.set $k (i32.rem_u (i32.load offset=16 (local.get $ev)) (i32.const 6)))
    (block $done
      (if (i32.eq (local.get $k) (i32.const 0))
        (then (i64.store offset=48 (local.get $ev) (i64.const 0x4141414141414141))
              (i64.store offset=56 (local.get $ev) (i64.const 0x4141414141414141))
              (br $done)))
      (if (i32.eq (local.get $k) (i32.const 1))
        (then (i32.store offset=16 (local.get $ev) (i32.const 1)) (br $done)))
      (if (i32.eq (local.get $k) (i32.const 2))
        (then (i32.store16 offset=46 (local.get $ev)
                (i32.add (i32.load16_u offset=46 (local.get $ev)) (i32.const 1)))
              (br $done)))
      (if (i32.eq (local.get $k) (i32.const 3))
        (then (i64.store offset=32 (local.get $ev) (i64.const 0)) (br $done)))
      (if (i32.eq (local.get $k) (i32.const 4))
        (then (i32.store offset=64 (local.get $ev) (i32.const 0x00074141)) (br $done)))
      (i32.store offset=64 (local.get $ev) (i32.const 0x00006b6f))
      (i32.store16 offset=46 (local.get $ev) (i32.const 1)))
    i32.const 2))
