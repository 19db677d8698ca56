//! What a single run may consume. Every run has limits; these defaults are
//! meant for untrusted guests and are documented in the README.

use std::time::Duration;

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
    /// [`crate::TrapKind::Timeout`]. `None` waits forever. Default 10 s.
    pub timeout: Option<Duration>,
    /// Instruction budget: past it the guest stops with
    /// [`crate::TrapKind::OutOfFuel`]. `None` is unlimited. Default `None`.
    pub fuel: Option<u64>,
    /// Largest linear memory, in bytes; `memory.grow` past it returns -1 in
    /// the guest. Default 256 MiB.
    pub max_memory_bytes: usize,
    /// Largest table, in elements; `table.grow` past it returns -1. Default 100,000.
    pub max_table_elements: usize,
    /// Bytes of stdout kept, and separately of stderr; the rest is dropped and
    /// the outcome marked truncated. Default 1 MiB.
    pub max_output_bytes: usize,
    /// Bytes of `host.log` messages kept in all. Default 64 KiB.
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
