;; Returns from _start. Its specification has a field the format does not
;; define: reported on stderr, and the test still runs.
(module
  (memory (export "memory") 1)
  (func (export "_start")))
