;; Clocks and random bytes are available to every guest.
;; Exit 100: the wall clock read 0; exit 101: 32 random bytes were all zero.
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func $check (param $errno i32)
    (if (local.get $errno) (then (call $proc_exit (local.get $errno)))))
  (func (export "_start")
    ;; Clock 0 is the realtime clock.
    (call $check (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 16)))
    (if (i64.eqz (i64.load (i32.const 16))) (then (call $proc_exit (i32.const 100))))
    (call $check (call $random_get (i32.const 1024) (i32.const 32)))
    (if (i64.eqz (i64.or (i64.or (i64.load (i32.const 1024)) (i64.load (i32.const 1032)))
                         (i64.or (i64.load (i32.const 1040)) (i64.load (i32.const 1048)))))
      (then (call $proc_exit (i32.const 101))))))
