;; Would pass, but its specification reads stdout before any run (validation
;; rule 2): the test fails naming the rule, and tests/conformance/expectations.toml
;; expects that failure.
(module
  (memory (export "memory") 1)
  (func (export "_start")))
