;; Prints each argument after the program name, then each environment
;; variable as NAME=VALUE, one per line, in the order the host gives them.
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  ;; 16: count, 20: buffer size, 1024: pointers, 8192: strings.
  (memory (export "memory") 1)
  (data (i32.const 256) "\n")
  ;; Exits with the errno when a WASI call failed.
  (func $check (param $errno i32)
    (if (local.get $errno) (then (call $proc_exit (local.get $errno)))))
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (call $check (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $strlen (param $ptr i32) (result i32)
    (local $len i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $ptr) (local.get $len)))))
        (local.set $len (i32.add (local.get $len) (i32.const 1)))
        (br $next)))
    (local.get $len))
  ;; Prints the NUL-terminated strings the pointers at 1024 point to, from index $first.
  (func $print_lines (param $first i32)
    (local $i i32)
    (local $string i32)
    (local.set $i (local.get $first))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.load (i32.const 16))))
        (local.set $string (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 2)))))
        (call $write (i32.const 1) (local.get $string) (call $strlen (local.get $string)))
        (call $write (i32.const 1) (i32.const 256) (i32.const 1))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))
  (func (export "_start")
    (call $check (call $args_sizes_get (i32.const 16) (i32.const 20)))
    (call $check (call $args_get (i32.const 1024) (i32.const 8192)))
    (call $print_lines (i32.const 1))
    (call $check (call $environ_sizes_get (i32.const 16) (i32.const 20)))
    (call $check (call $environ_get (i32.const 1024) (i32.const 8192)))
    (call $print_lines (i32.const 0))))
