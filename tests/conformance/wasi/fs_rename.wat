;; Creates before.cleanup, renames it to after.cleanup, checks that the old
;; name is gone (exit 100 otherwise) and prints the file under its new name.
;; Exits with the errno of any other WASI call that fails.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_rename" (func $path_rename (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  ;; 0: iovec, 8: byte count, 16: opened fd, 256/288: paths, 512: text, 1024: buffer.
  (memory (export "memory") 1)
  (data (i32.const 256) "before.cleanup")
  (data (i32.const 288) "after.cleanup")
  (data (i32.const 512) "moved\n")
  (func $check (param $errno i32)
    (if (local.get $errno) (then (call $proc_exit (local.get $errno)))))
  ;; path_open of the name at $path in fd 3; returns the errno, the fd goes to 16.
  (func $open (param $path i32) (param $len i32) (param $oflags i32) (param $rights i64) (result i32)
    (call $path_open (i32.const 3) (i32.const 0) (local.get $path) (local.get $len)
      (local.get $oflags) (local.get $rights) (i64.const 0) (i32.const 0) (i32.const 16)))
  (func (export "_start")
    ;; oflags 9 = creat | trunc; rights 64 = fd_write, 2 = fd_read.
    (call $check (call $open (i32.const 256) (i32.const 14) (i32.const 9) (i64.const 64)))
    (i32.store (i32.const 0) (i32.const 512))
    (i32.store (i32.const 4) (i32.const 6))
    (call $check (call $fd_write (i32.load (i32.const 16)) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $check (call $fd_close (i32.load (i32.const 16))))
    (call $check (call $path_rename (i32.const 3) (i32.const 256) (i32.const 14)
      (i32.const 3) (i32.const 288) (i32.const 13)))
    ;; The old name must now be missing: errno 44 (noent).
    (if (i32.ne (call $open (i32.const 256) (i32.const 14) (i32.const 0) (i64.const 2)) (i32.const 44))
      (then (call $proc_exit (i32.const 100))))
    (call $check (call $open (i32.const 288) (i32.const 13) (i32.const 0) (i64.const 2)))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 4096))
    (call $check (call $fd_read (i32.load (i32.const 16)) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 4) (i32.load (i32.const 8)))
    (call $check (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
