//! Bounds on compiling a module, which happens before any run's timeout
//! exists. Cranelift's time and memory grow with a function's locals times
//! its blocks (each block may need every local as a parameter), so a small
//! module can take Cranelift many seconds and much memory (the figures:
//! docs/performance.md). So sizes are checked with wasmparser before
//! Cranelift sees the module, and the compile itself has a deadline.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use wasmparser::{Operator, Parser, Payload};

/// What the runtime agrees to compile; a module past one of these is
/// refused with [`crate::Error::CompileLimit`]. Every guest of this
/// repository and every module of the WASI test suite is well inside the
/// defaults (at most 3.2 MB, 21 KB in one function, 1,512 locals, 349
/// locals times 507 blocks).
///
/// ```
/// use std::time::Duration;
/// let config = host::RuntimeConfig::default().compile_limits(host::CompileLimits {
///     max_function_locals: 100_000,
///     timeout: Some(Duration::from_secs(300)),
///     ..host::CompileLimits::default()
/// });
/// # let _ = config;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileLimits {
    /// Largest module, in bytes (WAT text is measured once turned into a
    /// binary). Default 64 MiB. It also bounds reading: a module file or
    /// stream, text or binary, is read at most one byte past it
    /// ([`crate::Error::ModuleTooLarge`]), whether or not it is compiled.
    pub max_module_bytes: usize,
    /// Largest function body, in bytes. Default 1 MiB.
    pub max_function_body_bytes: usize,
    /// Most locals one function may declare. Default 10,000.
    pub max_function_locals: u64,
    /// Most locals times blocks (`block`, `loop`, `if`) in one function,
    /// what Cranelift's work grows with. Default 2,000,000 (docs/limits.md
    /// says why).
    pub max_locals_times_blocks: u64,
    /// Longest a compile may take. Past it the load fails; the compiler
    /// cannot be stopped, so it finishes on a thread no one waits for.
    /// `None` waits forever. Default 60 s.
    pub timeout: Option<Duration>,
}

impl Default for CompileLimits {
    fn default() -> Self {
        Self {
            max_module_bytes: 64 << 20,
            max_function_body_bytes: 1 << 20,
            max_function_locals: 10_000,
            max_locals_times_blocks: 2_000_000,
            timeout: Some(Duration::from_secs(60)),
        }
    }
}

/// Which of the [`CompileLimits`] a module went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompileLimit {
    /// [`CompileLimits::max_module_bytes`].
    ModuleBytes,
    /// [`CompileLimits::max_function_body_bytes`].
    FunctionBodyBytes,
    /// [`CompileLimits::max_function_locals`].
    FunctionLocals,
    /// [`CompileLimits::max_locals_times_blocks`].
    LocalsTimesBlocks,
    /// [`CompileLimits::timeout`], in milliseconds.
    TimeMillis,
}

impl std::fmt::Display for CompileLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CompileLimit::ModuleBytes => "module size in bytes",
            CompileLimit::FunctionBodyBytes => "function body size in bytes",
            CompileLimit::FunctionLocals => "locals in one function",
            CompileLimit::LocalsTimesBlocks => "locals times blocks in one function",
            CompileLimit::TimeMillis => "compile time in milliseconds",
        })
    }
}

/// A limit that was exceeded, and by what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exceeded {
    pub(crate) limit: CompileLimit,
    /// What the module has (or, for time, how long was waited).
    pub(crate) value: u64,
    pub(crate) max: u64,
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is {}, past {}", self.limit, self.value, self.max)
    }
}

impl std::error::Error for Exceeded {}

/// Checks the sizes of the binary module `bytes` against `limits`.
/// Malformed sections are left to the compiler, which names them.
pub(crate) fn check(bytes: &[u8], limits: &CompileLimits) -> Result<(), Exceeded> {
    let over = |limit, value: u64, max: u64| (value > max).then_some(Exceeded { limit, value, max });
    if let Some(exceeded) = over(
        CompileLimit::ModuleBytes,
        bytes.len() as u64,
        limits.max_module_bytes as u64,
    ) {
        return Err(exceeded);
    }
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(Payload::CodeSectionEntry(body)) = payload else {
            continue;
        };
        let size = body.range().len() as u64;
        if let Some(exceeded) = over(
            CompileLimit::FunctionBodyBytes,
            size,
            limits.max_function_body_bytes as u64,
        ) {
            return Err(exceeded);
        }
        let Ok(locals) = body.get_locals_reader() else {
            continue;
        };
        let mut declared = 0u64;
        for group in locals {
            let Ok((count, _)) = group else {
                break;
            };
            declared = declared.saturating_add(u64::from(count));
        }
        if let Some(exceeded) = over(CompileLimit::FunctionLocals, declared, limits.max_function_locals) {
            return Err(exceeded);
        }
        let Ok(operators) = body.get_operators_reader() else {
            continue;
        };
        let blocks = operators
            .into_iter()
            .map_while(Result::ok)
            .filter(|op| matches!(op, Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. }))
            .count() as u64;
        let cost = declared.saturating_mul(blocks);
        if let Some(exceeded) = over(CompileLimit::LocalsTimesBlocks, cost, limits.max_locals_times_blocks) {
            return Err(exceeded);
        }
    }
    Ok(())
}

/// Runs `compile` on a thread of its own and waits for it at most
/// `timeout`. Cranelift cannot be interrupted, so a compile past it is left
/// to finish on that thread, and the caller gets [`Exceeded`] (inside the
/// error) at once.
pub(crate) fn within<R: Send + 'static>(
    timeout: Option<Duration>,
    compile: impl FnOnce() -> wasmtime::Result<R> + Send + 'static,
) -> wasmtime::Result<R> {
    let Some(timeout) = timeout else {
        return compile();
    };
    let (done, result) = mpsc::sync_channel(1);
    let thread = std::thread::Builder::new().name("wasm-compile".into()).spawn(move || {
        // The receiver is gone when the caller stopped waiting.
        let _ = done.send(compile());
    })?;
    match result.recv_timeout(timeout) {
        Ok(compiled) => {
            // Ending now that its result is sent: a load leaves no thread
            // behind it (a caller counting its threads finds them as before).
            let _ = thread.join();
            compiled
        }
        // Its thread gone without a result: the compile panicked (the
        // panic's message printed), long before the limit.
        Err(RecvTimeoutError::Disconnected) => Err(wasmtime::format_err!("the compiler panicked")),
        Err(RecvTimeoutError::Timeout) => {
            let waited = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
            Err(Exceeded {
                limit: CompileLimit::TimeMillis,
                value: waited,
                max: waited,
            }
            .into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compile_past_its_deadline_is_abandoned_and_named() {
        let slow = || {
            std::thread::sleep(Duration::from_secs(2));
            Ok(())
        };
        let started = std::time::Instant::now();
        let error = within(Some(Duration::from_millis(50)), slow).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1), "not waited for");
        let exceeded = error.downcast_ref::<Exceeded>().unwrap();
        assert_eq!((exceeded.limit, exceeded.max), (CompileLimit::TimeMillis, 50));
        assert_eq!(within(Some(Duration::from_secs(60)), || Ok(7)).unwrap(), 7);
        assert_eq!(within(None, || Ok(8)).unwrap(), 8);
    }

    /// A compile that panics (a compiler bug) within its time limit is not
    /// reported as one past the limit (found by the red team: its thread
    /// gone, the wait for it ended at once in `Exceeded` of the limit).
    #[test]
    fn a_compile_that_panics_is_not_reported_as_past_its_time_limit() {
        let error = within(Some(Duration::from_secs(60)), || -> wasmtime::Result<()> {
            panic!("a compiler bug")
        })
        .unwrap_err();
        assert!(error.downcast_ref::<Exceeded>().is_none(), "{error:?}");
    }

    /// A compile in time has ended its thread when it returns (its
    /// thread-local destructors run, last of all): a caller counting its
    /// threads (or descriptors) after a load finds them as before.
    #[test]
    fn a_compile_in_time_has_ended_its_thread_when_it_returns() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static ENDED: AtomicUsize = AtomicUsize::new(0);
        /// Takes a moment to go, as its thread ends.
        struct SlowToDrop;
        impl Drop for SlowToDrop {
            fn drop(&mut self) {
                std::thread::sleep(Duration::from_millis(5));
                ENDED.fetch_add(1, Ordering::SeqCst);
            }
        }
        thread_local!(static SLOW: SlowToDrop = const { SlowToDrop });
        for compiled in 1..=10 {
            within(Some(Duration::from_secs(60)), || {
                SLOW.with(|_| {});
                Ok(())
            })
            .unwrap();
            assert_eq!(ENDED.load(Ordering::SeqCst), compiled, "its thread had not ended");
        }
    }

    fn module(wat: &str) -> Vec<u8> {
        wat::parse_str(wat).unwrap()
    }

    #[test]
    fn each_size_limit_is_checked_at_its_edge() {
        let two_locals = module("(module (func (local i32 i64)) (func (local f32)))");
        let limits = CompileLimits {
            max_function_locals: 2,
            ..CompileLimits::default()
        };
        assert_eq!(check(&two_locals, &limits), Ok(()));
        let one = CompileLimits {
            max_function_locals: 1,
            ..limits
        };
        let exceeded = check(&two_locals, &one).unwrap_err();
        assert_eq!(
            (exceeded.limit, exceeded.value, exceeded.max),
            (CompileLimit::FunctionLocals, 2, 1)
        );

        let size = two_locals.len();
        let module_bytes = |max_module_bytes| CompileLimits {
            max_module_bytes,
            ..CompileLimits::default()
        };
        assert_eq!(check(&two_locals, &module_bytes(size)), Ok(()));
        assert_eq!(
            check(&two_locals, &module_bytes(size - 1)).unwrap_err().limit,
            CompileLimit::ModuleBytes
        );

        // The first body: its local declarations (2 groups) and `end`.
        let body_bytes = |max_function_body_bytes| CompileLimits {
            max_function_body_bytes,
            ..CompileLimits::default()
        };
        assert_eq!(check(&two_locals, &body_bytes(6)), Ok(()));
        let exceeded = check(&two_locals, &body_bytes(5)).unwrap_err();
        assert_eq!((exceeded.limit, exceeded.value), (CompileLimit::FunctionBodyBytes, 6));

        let blocks = module("(module (func (local i32 i32 i32) (block (loop (if (i32.const 1) (then))))))");
        let cost = |max_locals_times_blocks| CompileLimits {
            max_locals_times_blocks,
            ..CompileLimits::default()
        };
        assert_eq!(check(&blocks, &cost(9)), Ok(()));
        let exceeded = check(&blocks, &cost(8)).unwrap_err();
        assert_eq!((exceeded.limit, exceeded.value), (CompileLimit::LocalsTimesBlocks, 9));
    }
}
