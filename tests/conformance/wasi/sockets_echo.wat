;; Stands for a server guest: its specification needs the sockets proposal and
;; connect/send/recv, which wasm-host does not offer, so the test is skipped.
(module
  (memory (export "memory") 1)
  (func (export "_start")))
