;; With nothing granted the guest sees only its program name and an empty
;; environment: nothing of the runner's own environment leaks in.
;; Exit 1: other arguments were present; exit 2: variables were present.
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "nothing granted\n")
  (func (export "_start")
    (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
    (if (i32.ne (i32.load (i32.const 16)) (i32.const 1)) (then (call $proc_exit (i32.const 1))))
    (drop (call $environ_sizes_get (i32.const 16) (i32.const 20)))
    (if (i32.load (i32.const 16)) (then (call $proc_exit (i32.const 2))))
    (i32.store (i32.const 0) (i32.const 256))
    (i32.store (i32.const 4) (i32.const 16))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
