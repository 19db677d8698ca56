;; Creates the directory made.cleanup in the granted directory and checks it
;; is one (exit 100 otherwise) and that creating it again fails with errno 20,
;; exist (exit 101 otherwise). Exits with the errno of any other failing call.
(module
  (import "wasi_snapshot_preview1" "path_create_directory"
    (func $path_create_directory (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get"
    (func $path_filestat_get (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  ;; 0: iovec, 8: byte count, 256: path, 512: text, 1024: filestat.
  (memory (export "memory") 1)
  (data (i32.const 256) "made.cleanup")
  (data (i32.const 512) "made a directory\n")
  (func $check (param $errno i32)
    (if (local.get $errno) (then (call $proc_exit (local.get $errno)))))
  (func (export "_start")
    (call $check (call $path_create_directory (i32.const 3) (i32.const 256) (i32.const 12)))
    (call $check (call $path_filestat_get (i32.const 3) (i32.const 0) (i32.const 256) (i32.const 12) (i32.const 1024)))
    ;; filestat.filetype (offset 16) 3 = directory.
    (if (i32.ne (i32.load8_u (i32.const 1040)) (i32.const 3)) (then (call $proc_exit (i32.const 100))))
    (if (i32.ne (call $path_create_directory (i32.const 3) (i32.const 256) (i32.const 12)) (i32.const 20))
      (then (call $proc_exit (i32.const 101))))
    (i32.store (i32.const 0) (i32.const 512))
    (i32.store (i32.const 4) (i32.const 17))
    (call $check (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
