//! Set-up shared by the integration tests: loading guests and fixtures, and
//! re-running one test in a child process.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use host::{Error, GuestModule, RunOutcome, Runtime, TrapKind};

/// How long past its timeout a stopped guest may take to be reported: an
/// interrupted guest stops within one epoch tick, so this only absorbs a
/// loaded machine; a guest that was not stopped would run forever. The
/// fuzzing property's margin, so that there is one.
pub use host::fuzzing::HANG_SLACK as SLACK;

/// The kind of trap a run ended with; panics, showing the ending, when it
/// did not trap.
pub fn trap_kind(outcome: &RunOutcome) -> TrapKind {
    match outcome.trap() {
        Some(trap) => trap.kind,
        None => panic!("expected a trap, got {outcome}: {}", outcome.stderr_text()),
    }
}

/// The kind of trap a call into a guest ended with; panics when it returned
/// or failed some other way.
pub fn call_trap_kind(result: Result<impl std::fmt::Debug, Error>) -> TrapKind {
    match result {
        Err(Error::Trap { trap, .. }) => trap.kind,
        other => panic!("expected a trap, got {other:?}"),
    }
}

/// The guest crate `name` built for wasm32-wasip1, compiled.
fn guest(name: &str) -> GuestModule {
    load(name, xtask::guests::artifact(name))
}

/// The guest crate `name` built as a component (wasm32-wasip2), compiled.
fn component(name: &str) -> GuestModule {
    load(name, xtask::guests::component(name))
}

fn load(name: &str, built: anyhow::Result<PathBuf>) -> GuestModule {
    let path = built.unwrap_or_else(|e| panic!("building guest {name}: {e:#}"));
    Runtime::shared()
        .load_file(&path)
        .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
}

// One loader per guest crate and kind, from `xtask::foreach_guest!` (the
// guest workspace's metadata). A loader no test calls is a compile error, so
// a guest crate added without a host test fails the build.
macro_rules! module_loader {
    ($name:ident, module) => {
        /// This guest crate built for wasm32-wasip1 (once per test
        /// process), compiled.
        pub fn $name() -> GuestModule {
            super::guest(stringify!($name))
        }
    };
    ($name:ident, component) => {};
}

macro_rules! component_loader {
    ($name:ident, component) => {
        /// This guest crate built as a component (once per test process),
        /// compiled.
        pub fn $name() -> GuestModule {
            super::component(stringify!($name))
        }
    };
    ($name:ident, module) => {};
}

/// The guests built as core modules: `modules::hostile()`.
#[deny(dead_code)]
pub mod modules {
    use host::GuestModule;
    xtask::foreach_guest!(module_loader);
}

/// The guests built as components: `components::text_component()`.
#[deny(dead_code)]
pub mod components {
    use host::GuestModule;
    xtask::foreach_guest!(component_loader);
}

/// A module written inline as WAT.
pub fn wat(name: &str, source: &str) -> GuestModule {
    Runtime::shared()
        .load_bytes(name, source)
        .unwrap_or_else(|e| panic!("compiling {name}: {e}"))
}

/// A core module that imports `host.log` as `$log`, has "hello" at address
/// 0 of its memory, and the functions `funcs` (WAT).
pub fn logging_guest(name: &str, funcs: &str) -> GuestModule {
    wat(
        name,
        &format!(
            r#"(module
                 (import "host" "log" (func $log (param i32 i32)))
                 (memory (export "memory") 1)
                 (data (i32.const 0) "hello")
                 {funcs})"#
        ),
    )
}

/// A file under the shared `tests/` folder at the project root.
pub fn shared_test_file(relative: &str) -> PathBuf {
    xtask::project_root().join("tests").join(relative)
}

/// Makes a FIFO at `path`, with nothing at either end.
#[cfg(unix)]
pub fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// A WAT fixture from `tests/fixtures/`, compiled.
pub fn fixture(file_name: &str) -> GuestModule {
    Runtime::shared()
        .load_file(shared_test_file(&format!("fixtures/{file_name}")))
        .unwrap_or_else(|e| panic!("loading fixture {file_name}: {e}"))
}

/// Runs the test `path` (such as `module_cache::cache_probe`) alone in a new
/// process of this test binary, with `envs` added to its environment, and
/// returns what it printed. Panics with its output if it fails.
///
/// For what one process cannot show: a second process's cache, or a host
/// variable that must not leak (setting it here would race other tests).
pub fn run_test_in_child_process<V: AsRef<OsStr>>(path: &str, envs: &[(&str, V)]) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", path, "--nocapture", "--test-threads=1"])
        .envs(envs.iter().map(|(name, value)| (name, value)))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{path} failed in a child process:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "{path} did not run in the child:\n{stdout}"
    );
    stdout
}
