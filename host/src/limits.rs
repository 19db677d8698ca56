//! What a single run may consume. Every run has limits; these defaults are
//! meant for untrusted guests and are documented in docs/limits.md.
//!
//! [`Limits`] is the embedder's view; [`GuestLimiter`] is how a store
//! enforces the memory and table parts of it, and remembers the largest
//! linear memory it ever allowed, so tests and fuzzers can check the limit
//! from the outside.

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// Resource limits for one run (or one [`crate::GuestInstance`]).
///
/// ```
/// use std::time::Duration;
/// let limits = host::Limits {
///     timeout: Some(Duration::from_millis(200)),
///     fuel: Some(1_000_000),
///     ..host::Limits::default()
/// };
/// let sandbox = host::Sandbox::new().limits(limits);
/// # let _ = sandbox;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time for each call into the guest (for a command, the
    /// whole run); past it the guest is interrupted with
    /// [`crate::TrapKind::Timeout`], also while it sleeps in `poll_oneoff`.
    /// `None` waits forever. Default 10 s.
    pub timeout: Option<Duration>,
    /// Instruction budget: past it the guest stops with
    /// [`crate::TrapKind::OutOfFuel`]. `None` is unlimited. Default `None`.
    pub fuel: Option<u64>,
    /// Largest linear memory, in bytes; `memory.grow` past it returns -1 in
    /// the guest, and a module whose initial memory is larger cannot be
    /// instantiated. Default 256 MiB.
    pub max_memory_bytes: usize,
    /// Largest table, in elements; `table.grow` past it returns -1. Default 100,000.
    pub max_table_elements: usize,
    /// Bytes of stdout kept, and separately of stderr; the rest is dropped and
    /// the outcome marked truncated. Default 1 MiB.
    pub max_output_bytes: usize,
    /// Bytes of `host.log` messages kept in all; each message counts at
    /// least one byte, so a flood of empty messages is cut too. Default 64 KiB.
    pub max_log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Some(Duration::from_secs(10)),
            fuel: None,
            max_memory_bytes: 256 << 20,
            max_table_elements: 100_000,
            max_output_bytes: 1 << 20,
            max_log_bytes: 64 << 10,
        }
    }
}

/// A guest may have this many memories: the one a WASI program exports.
const MAX_MEMORIES: usize = 1;
/// A guest may have this many tables (a Rust guest uses one).
pub(crate) const MAX_TABLES: usize = 4;

/// Enforces [`Limits::max_memory_bytes`] and [`Limits::max_table_elements`]
/// for one store, refusing growth (so `memory.grow` returns -1, as the spec
/// says) rather than trapping.
pub(crate) struct GuestLimiter {
    max_memory_bytes: usize,
    max_table_elements: usize,
    peak_memory_bytes: usize,
}

impl GuestLimiter {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            max_memory_bytes: limits.max_memory_bytes,
            max_table_elements: limits.max_table_elements,
            peak_memory_bytes: 0,
        }
    }

    /// The largest linear memory this store has had or been allowed to grow to.
    pub(crate) fn peak_memory_bytes(&self) -> usize {
        self.peak_memory_bytes
    }
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allow = desired <= self.max_memory_bytes && maximum.is_none_or(|max| desired <= max);
        let reached = if allow { desired } else { current };
        self.peak_memory_bytes = self.peak_memory_bytes.max(reached);
        Ok(allow)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= self.max_table_elements && maximum.is_none_or(|max| desired <= max))
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_the_limit_or_the_declared_maximum_is_refused_and_the_peak_kept() {
        let mut limiter = GuestLimiter::new(&Limits {
            max_memory_bytes: 1 << 20,
            max_table_elements: 10,
            ..Limits::default()
        });
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!limiter.memory_growing(1 << 20, (1 << 20) + 65536, None).unwrap());
        assert!(!limiter.memory_growing(0, 131072, Some(65536)).unwrap());
        assert_eq!(limiter.peak_memory_bytes(), 1 << 20);
        assert!(limiter.table_growing(0, 10, None).unwrap());
        assert!(!limiter.table_growing(10, 11, None).unwrap());
        assert!(!limiter.table_growing(0, 5, Some(4)).unwrap());
    }
}
