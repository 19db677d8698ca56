//! What a single run may consume. Every run has limits; these defaults are
//! meant for untrusted guests and are documented in docs/limits.md.
//!
//! [`Limits`] is the embedder's view; [`GuestLimiter`] is how a store
//! enforces the memory and table parts of it, and remembers the largest
//! linear memory it ever allowed, so tests and fuzzers can check the limit
//! from the outside.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use wasmtime::ResourceLimiter;

use crate::setters::setters;

/// Resource limits for one run (or one [`crate::GuestInstance`]).
///
/// ```
/// use std::time::Duration;
/// let limits = host::Limits::default()
///     .timeout(Some(Duration::from_millis(200)))
///     .fuel(Some(1_000_000));
/// let sandbox = host::Sandbox::new().limits(limits);
/// # let _ = sandbox;
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time for a command's whole run: instantiation (a core
    /// module's start function, a component's) and `_start` or
    /// `wasi:cli/run` together. An instance's instantiation (with a
    /// reactor's `_initialize`) has one such budget, and then each call
    /// ([`crate::GuestInstance::call`]) one of its own. Past it the guest
    /// is interrupted with [`crate::TrapKind::Timeout`], also while it
    /// waits in a host call. `None` waits forever. Default 10 s.
    pub timeout: Option<Duration>,
    /// Instruction budget: past it the guest stops with
    /// [`crate::TrapKind::OutOfFuel`]. `None` is unlimited. Default `None`.
    pub fuel: Option<u64>,
    /// Largest linear memory, in bytes (for a component, all its memories
    /// together); `memory.grow` past it returns -1 in the guest, and a
    /// module whose initial memory is larger cannot be instantiated.
    /// Default 256 MiB.
    pub max_memory_bytes: usize,
    /// Largest table, in elements; `table.grow` past it returns -1. Default 100,000.
    pub max_table_elements: usize,
    /// Bytes of stdout kept, and separately of stderr; the rest is dropped and
    /// the outcome marked truncated. Default 1 MiB.
    pub max_output_bytes: usize,
    /// Bytes of `host.log` messages kept in all; each message counts at
    /// least one byte, so a flood of empty messages is cut too. Default 64 KiB.
    pub max_log_bytes: usize,
    /// Descriptors the guest may hold open at once, its three standard
    /// streams and granted directories included; a `path_open` past it
    /// fails with `EMFILE`, so a guest cannot use up the descriptors of the
    /// process other runs share. A component's files and directories count
    /// (not its streams), and an `open-at` past it fails with `quota`.
    /// Default 256.
    pub max_descriptors: usize,
    /// Resources a guest may hold at once, so that what the host keeps for
    /// it outside its linear memory stays bounded: WASI's table (files,
    /// streams, pollables, sockets, HTTP requests and bodies) and, for a
    /// component, its handles (WASI 0.3's streams and futures, its own
    /// resources) each refuse an entry past it, and the call that wanted
    /// one traps ([`crate::TrapKind::HostError`]). Default 4096.
    pub max_resources: usize,
    /// Bytes of host memory a guest may fill outside its linear memory:
    /// the data of WASI 0.2 HTTP bodies written and not yet sent, and each
    /// outgoing HTTP connection (64 KiB each: hyper's buffers, capped at
    /// that). A write past it fails (`last-operation-failed`), a request
    /// past it with `connection-limit-reached`. Each set of HTTP header
    /// fields a guest builds may hold `max_host_memory_bytes /
    /// max_resources` bytes (at least 8 KiB, at most 128 KiB). Default 32 MiB.
    pub max_host_memory_bytes: usize,
}

setters!(
/// Chained setters, one per limit, from [`Limits::default`]: the struct is
/// `#[non_exhaustive]`, so that a new limit is not a breaking change.
Limits {
    timeout: Option<Duration>,
    fuel: Option<u64>,
    max_memory_bytes: usize,
    max_table_elements: usize,
    max_output_bytes: usize,
    max_log_bytes: usize,
    max_descriptors: usize,
    max_resources: usize,
    max_host_memory_bytes: usize,
});

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Some(Duration::from_secs(10)),
            fuel: None,
            max_memory_bytes: 256 << 20,
            max_table_elements: 100_000,
            max_output_bytes: 1 << 20,
            max_log_bytes: 64 << 10,
            max_descriptors: 256,
            max_resources: 4096,
            max_host_memory_bytes: 32 << 20,
        }
    }
}

/// What a guest holds of [`Limits::max_host_memory_bytes`], shared by
/// everything of its store that takes from it; each [`Charge`] gives its
/// bytes back when dropped, on whatever thread frees the buffer.
#[derive(Debug, Clone)]
pub(crate) struct HostMemory(Arc<Budget>);

#[derive(Debug)]
struct Budget {
    limit: usize,
    used: AtomicUsize,
}

impl HostMemory {
    pub(crate) fn new(limit: usize) -> Self {
        Self(Arc::new(Budget {
            limit,
            used: AtomicUsize::new(0),
        }))
    }

    /// Bytes still free.
    pub(crate) fn room(&self) -> usize {
        self.0.limit.saturating_sub(self.0.used.load(Ordering::SeqCst))
    }

    /// Takes `bytes`, or nothing when they do not fit.
    pub(crate) fn charge(&self, bytes: usize) -> Option<Charge> {
        self.0
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.0.limit)
            })
            .ok()?;
        Some(Charge {
            memory: self.clone(),
            bytes,
        })
    }
}

/// Bytes taken from a [`HostMemory`] until dropped.
#[derive(Debug)]
pub(crate) struct Charge {
    memory: HostMemory,
    bytes: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.memory.0.used.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// How many core instances, memories and tables a guest may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    instances: usize,
    memories: usize,
    pub(crate) tables: usize,
}

impl Shape {
    /// A core module: one instance, the one memory a WASI program exports,
    /// and a few tables (a Rust guest uses one).
    pub(crate) const CORE: Shape = Shape {
        instances: 1,
        memories: 1,
        tables: 4,
    };
    /// A component: its core modules, and the adapters `wit-component` adds
    /// between them, each an instance with a memory or a table of its own.
    pub(crate) const COMPONENT: Shape = Shape {
        instances: 32,
        memories: 8,
        tables: 32,
    };
}

/// Enforces [`Limits::max_memory_bytes`] (over all of a guest's memories
/// together) and [`Limits::max_table_elements`] for one store, refusing
/// growth (so `memory.grow` returns -1, as the spec says) rather than
/// trapping; holds [`Limits::max_descriptors`] for the guarded opens.
pub(crate) struct GuestLimiter {
    shape: Shape,
    max_memory_bytes: usize,
    max_table_elements: usize,
    /// All linear memories together, now and at their largest.
    memory_bytes: usize,
    max_descriptors: usize,
    peak_memory_bytes: usize,
}

impl GuestLimiter {
    pub(crate) fn new(limits: &Limits, shape: Shape) -> Self {
        Self {
            shape,
            max_memory_bytes: limits.max_memory_bytes,
            max_table_elements: limits.max_table_elements,
            memory_bytes: 0,
            max_descriptors: limits.max_descriptors,
            peak_memory_bytes: 0,
        }
    }

    /// How many descriptors the guest may hold open at once.
    pub(crate) fn max_descriptors(&self) -> usize {
        self.max_descriptors
    }

    /// The most linear memory this store has had, or been allowed to grow to.
    pub(crate) fn peak_memory_bytes(&self) -> usize {
        self.peak_memory_bytes
    }
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = (self.memory_bytes - current.min(self.memory_bytes)).saturating_add(desired);
        let allow = total <= self.max_memory_bytes && maximum.is_none_or(|max| desired <= max);
        if allow {
            self.memory_bytes = total;
        }
        self.peak_memory_bytes = self.peak_memory_bytes.max(self.memory_bytes);
        Ok(allow)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= self.max_table_elements && maximum.is_none_or(|max| desired <= max))
    }

    fn instances(&self) -> usize {
        self.shape.instances
    }

    fn tables(&self) -> usize {
        self.shape.tables
    }

    fn memories(&self) -> usize {
        self.shape.memories
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_the_limit_or_the_declared_maximum_is_refused_and_the_peak_kept() {
        let mut limiter = GuestLimiter::new(
            &Limits {
                max_memory_bytes: 1 << 20,
                max_table_elements: 10,
                ..Limits::default()
            },
            Shape::CORE,
        );
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!limiter.memory_growing(1 << 20, (1 << 20) + 65536, None).unwrap());
        assert!(!limiter.memory_growing(0, 131072, Some(65536)).unwrap());
        assert_eq!(limiter.peak_memory_bytes(), 1 << 20);
        assert!(limiter.table_growing(0, 10, None).unwrap());
        assert!(!limiter.table_growing(10, 11, None).unwrap());
        assert!(!limiter.table_growing(0, 5, Some(4)).unwrap());
    }
}

#[cfg(test)]
mod host_memory_tests {
    use super::*;

    #[test]
    fn charges_fit_the_limit_and_are_given_back_when_dropped() {
        let memory = HostMemory::new(10);
        let six = memory.charge(6).unwrap();
        assert!(memory.charge(5).is_none(), "past the limit");
        let four = memory.charge(4).unwrap();
        assert_eq!(memory.room(), 0);
        drop(six);
        assert_eq!(memory.room(), 6);
        assert!(memory.charge(usize::MAX).is_none(), "no overflow");
        drop(four);
        assert_eq!(memory.room(), 10);
    }
}

#[cfg(test)]
mod component_tests {
    use super::*;

    #[test]
    fn a_components_memories_share_one_budget() {
        let limits = Limits {
            max_memory_bytes: 3 << 16,
            ..Limits::default()
        };
        let mut limiter = GuestLimiter::new(&limits, Shape::COMPONENT);
        assert!(limiter.memory_growing(0, 2 << 16, None).unwrap(), "first memory");
        assert!(
            limiter.memory_growing(0, 1 << 16, None).unwrap(),
            "second memory, at the budget"
        );
        assert!(
            !limiter.memory_growing(1 << 16, 2 << 16, None).unwrap(),
            "past it together"
        );
        assert_eq!(limiter.peak_memory_bytes(), 3 << 16);
    }
}
