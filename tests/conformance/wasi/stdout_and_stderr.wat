;; Interleaves stdout and stderr, then exits with 3: each stream keeps its
;; own bytes in order, and the exit code is checked alongside them.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "out 1\n")
  (data (i32.const 272) "err\n")
  (data (i32.const 288) "out 2\n")
  ;; Writes $len bytes at $ptr to $fd; exits with the errno if that fails.
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (local $errno i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (local.set $errno (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
    (if (local.get $errno) (then (call $proc_exit (local.get $errno)))))
  (func (export "_start")
    (call $write (i32.const 1) (i32.const 256) (i32.const 6))
    (call $write (i32.const 2) (i32.const 272) (i32.const 4))
    (call $write (i32.const 1) (i32.const 288) (i32.const 6))
    (call $proc_exit (i32.const 3))))
