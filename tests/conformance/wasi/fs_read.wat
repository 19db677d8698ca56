;; Reads hello.txt from the granted directory (the first preopen, fd 3) and
;; prints it. Exits with the errno of any WASI call that fails.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  ;; 0: iovec, 8: byte count, 16: opened fd, 256: path, 1024: file contents.
  (memory (export "memory") 1)
  (data (i32.const 256) "hello.txt")
  (func $check (param $errno i32)
    (if (local.get $errno) (then (call $proc_exit (local.get $errno)))))
  (func (export "_start")
    ;; Rights 2 = fd_read.
    (call $check (call $path_open (i32.const 3) (i32.const 0) (i32.const 256) (i32.const 9)
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16)))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 4096))
    (call $check (call $fd_read (i32.load (i32.const 16)) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 4) (i32.load (i32.const 8)))
    (call $check (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
