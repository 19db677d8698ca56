;; A command component that imports WASI 0.3 (`wasi:random/random@0.3.0`)
;; beside exporting `wasi:cli/run`: `run` succeeds when two random numbers
;; in a row differ.
(component
  (import "wasi:random/random@0.3.0" (instance $random (export "get-random-u64" (func (result u64)))))
  (core func $u64 (canon lower (func $random "get-random-u64")))
  (core module $m
    (import "wasi" "u64" (func $u64 (result i64)))
    ;; `result` without payloads: 0 is ok, 1 is err.
    (func (export "run") (result i32) (i64.eq (call $u64) (call $u64))))
  (core instance $i (instantiate $m (with "wasi" (instance (export "u64" (func $u64))))))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $cli (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli)))
