;; A component, in a suite of wasm32-wasip3 tests: skipped with the reason,
;; since wasm-host runs core modules only.
(component)
