;; Creates written.cleanup in the granted directory, writes a line to it,
;; then opens it again and prints what it reads back.
;; Exits with the errno of any WASI call that fails.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  ;; 0: iovec, 8: byte count, 16: opened fd, 256: path, 512: text, 1024: buffer.
  (memory (export "memory") 1)
  (data (i32.const 256) "written.cleanup")
  (data (i32.const 512) "written by the guest\n")
  (func $check (param $errno i32)
    (if (local.get $errno) (then (call $proc_exit (local.get $errno)))))
  ;; Opens written.cleanup with `oflags` and `rights`; returns the new fd.
  (func $open (param $oflags i32) (param $rights i64) (result i32)
    (call $check (call $path_open (i32.const 3) (i32.const 0) (i32.const 256) (i32.const 15)
      (local.get $oflags) (local.get $rights) (i64.const 0) (i32.const 0) (i32.const 16)))
    (i32.load (i32.const 16)))
  (func (export "_start")
    (local $fd i32)
    ;; oflags 9 = creat | trunc; rights 64 = fd_write.
    (local.set $fd (call $open (i32.const 9) (i64.const 64)))
    (i32.store (i32.const 0) (i32.const 512))
    (i32.store (i32.const 4) (i32.const 21))
    (call $check (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $check (call $fd_close (local.get $fd)))
    ;; Rights 2 = fd_read.
    (local.set $fd (call $open (i32.const 0) (i64.const 2)))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 4096))
    (call $check (call $fd_read (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 4) (i32.load (i32.const 8)))
    (call $check (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
