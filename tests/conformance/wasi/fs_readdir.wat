;; Lists the granted directory (fd 3) and prints every entry's name except
;; `.` and `..`, one per line. Exits with the errno of a failing WASI call.
(module
  (import "wasi_snapshot_preview1" "fd_readdir" (func $fd_readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  ;; 0: iovec, 8: byte count, 16: bytes used, 256: newline, 1024: dirents.
  (memory (export "memory") 1)
  (data (i32.const 256) "\n")
  (func $check (param $errno i32)
    (if (local.get $errno) (then (call $proc_exit (local.get $errno)))))
  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (call $check (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  ;; True for the names `.` and `..`.
  (func $is_dot (param $name i32) (param $len i32) (result i32)
    (if (result i32) (i32.eq (local.get $len) (i32.const 1))
      (then (i32.eq (i32.load8_u (local.get $name)) (i32.const 46)))
      (else (i32.and (i32.eq (local.get $len) (i32.const 2))
                     (i32.eq (i32.load16_u (local.get $name)) (i32.const 0x2e2e))))))
  (func (export "_start")
    (local $entry i32)
    (local $end i32)
    (local $len i32)
    (call $check (call $fd_readdir (i32.const 3) (i32.const 1024) (i32.const 8192) (i64.const 0) (i32.const 16)))
    (local.set $entry (i32.const 1024))
    (local.set $end (i32.add (i32.const 1024) (i32.load (i32.const 16))))
    ;; Each dirent: next (8 bytes), inode (8), name length (4), type (1), padding (3), then the name.
    (block $done
      (loop $next
        (br_if $done (i32.gt_u (i32.add (local.get $entry) (i32.const 24)) (local.get $end)))
        (local.set $len (i32.load (i32.add (local.get $entry) (i32.const 16))))
        (if (i32.eqz (call $is_dot (i32.add (local.get $entry) (i32.const 24)) (local.get $len)))
          (then
            (call $write (i32.add (local.get $entry) (i32.const 24)) (local.get $len))
            (call $write (i32.const 256) (i32.const 1))))
        (local.set $entry (i32.add (local.get $entry) (i32.add (i32.const 24) (local.get $len))))
        (br $next)))))
