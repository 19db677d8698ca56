;; Without a granted directory there is no descriptor 3 at all (exit 100 if
;; there is); opening through it exits with the errno: 8, badf.
(module
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "fs-tests.dir/hello.txt")
  (func (export "_start")
    (if (i32.ne (call $fd_prestat_get (i32.const 3) (i32.const 16)) (i32.const 8))
      (then (call $proc_exit (i32.const 100))))
    (call $proc_exit (call $path_open (i32.const 3) (i32.const 0) (i32.const 256) (i32.const 22)
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16)))))
