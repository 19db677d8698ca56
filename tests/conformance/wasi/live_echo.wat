;; Writes `READY`, then echoes each read of stdin as it comes, until stdin
;; ends: its specification reads each answer before it writes the next
;; input, so it passes only when the guest runs live, stdin fed and stdout
;; read while it runs. host/tests/all/live_stdio.rs runs it too.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "READY\n")
  ;; The iovec is at 16, the count written or read at 24, the input at 1024.
  (func $out (param $ptr i32) (param $len i32)
    (i32.store (i32.const 16) (local.get $ptr))
    (i32.store (i32.const 20) (local.get $len))
    (drop (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24))))
  (func (export "_start")
    (local $n i32)
    (call $out (i32.const 0) (i32.const 6))
    (block $done
      (loop $more
        (i32.store (i32.const 16) (i32.const 1024))
        (i32.store (i32.const 20) (i32.const 1024))
        (br_if $done (call $read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
        (local.set $n (i32.load (i32.const 24)))
        (br_if $done (i32.eqz (local.get $n)))
        (call $out (i32.const 1024) (local.get $n))
        (br $more)))))
