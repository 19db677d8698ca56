//! The sandbox's fuzzing property, in one place for both the libFuzzer
//! target (`fuzz/`) and the bounded, seeded run in `cargo xtask test`
//! (`host/tests/all/fuzz_property.rs`). Only built with the `fuzzing` feature.
//!
//! From arbitrary bytes, [`check`] generates a valid module with
//! `wasm-smith` (or, for some inputs, takes the bytes as a module as they
//! are), runs it under tight [`limits`] with WASI and `host.log` available,
//! and reports a [`Violation`] when the host misbehaves: a call that outlives
//! its timeout, or linear memory past the limit. A host panic is not caught
//! here: it fails the fuzzer or the test, which is the point.

use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use arbitrary::Unstructured;

use crate::{CacheMode, Error, Limits, Runtime, RuntimeConfig, Sandbox, Termination};

/// Wall-clock budget of each call into a fuzzed module.
pub const TIMEOUT: Duration = Duration::from_millis(50);

/// How long past [`TIMEOUT`] a call may take before it counts as a hang.
/// Interruption itself takes one epoch tick; the rest absorbs a loaded
/// machine and an unoptimised build. The host's tests allow the same for
/// every timeout they check.
pub const HANG_SLACK: Duration = Duration::from_secs(5);

/// Largest linear memory a fuzzed module may have: 16 pages.
pub const MAX_MEMORY_BYTES: usize = 1 << 20;

/// The imports a generated module may use: WASI calls that take guest
/// pointers, the sleep the host must bound, and `host.log`.
const AVAILABLE_IMPORTS: &str = r#"
    (module
      (import "host" "log" (func (param i32 i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_read" (func (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "poll_oneoff" (func (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32)))
      (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "args_sizes_get" (func (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "environ_get" (func (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_prestat_get" (func (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_open"
        (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))))"#;

/// The limits every fuzzed module runs under: [`TIMEOUT`],
/// [`MAX_MEMORY_BYTES`], small output and log caps, and `fuel` when the
/// input asks for a deterministic budget.
pub fn limits(fuel: Option<u64>) -> Limits {
    Limits {
        timeout: Some(TIMEOUT),
        fuel,
        max_memory_bytes: MAX_MEMORY_BYTES,
        max_table_elements: 1000,
        max_output_bytes: 4096,
        max_log_bytes: 4096,
        max_descriptors: 64,
        max_resources: 256,
        max_host_memory_bytes: 1 << 20,
    }
}

/// What happened to one input, when the host behaved.
#[derive(Debug)]
pub enum Checked {
    /// The bytes were refused as a module, with a typed error.
    Invalid(Error),
    /// The module compiled but could not be instantiated or had no usable
    /// `_start` (a typed error: memory over the limit, a start function
    /// that trapped, a missing import).
    NotStarted(Error),
    /// `_start` ran and ended this way.
    Ran(Termination),
}

/// The host broke the sandbox's promise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Violation {}

/// Runs the property on one input (see the module docs).
pub fn check(data: &[u8]) -> Result<Checked, Violation> {
    let mut u = Unstructured::new(data);
    // One input in sixteen is tried as a module as it is, so the fuzzer
    // also mutates raw bytes through the loader.
    let raw = u.ratio(1, 16).unwrap_or(false);
    let fuel = fuel(&mut u);
    let bytes = if raw {
        u.take_rest().to_vec()
    } else {
        match generate(&mut u, Some(AVAILABLE_IMPORTS), "_start") {
            Ok(bytes) => bytes,
            Err(_) => return Ok(too_short()),
        }
    };
    let limits = limits(fuel);
    let module = match runtime().load_bytes_for("fuzzed", &bytes, &limits) {
        Ok(module) => module,
        Err(error) if raw => return Ok(Checked::Invalid(error)),
        // A refusal the compile limits explain is the host behaving.
        Err(error @ Error::CompileLimit { .. }) => return Ok(Checked::Invalid(error)),
        Err(error) => return Err(Violation(format!("a valid generated module was refused: {error}"))),
    };
    let sandbox = Sandbox::new().limits(limits).stdin("fuzzed stdin\n");

    let started = Instant::now();
    let instantiated = sandbox.instantiate(&module);
    within_timeout("instantiation", started)?;
    let mut guest = match instantiated {
        Ok(guest) => guest,
        Err(error) => return Ok(Checked::NotStarted(error)),
    };

    let started = Instant::now();
    let called = guest.call::<(), ()>("_start", ());
    within_timeout("_start", started)?;

    let peak = guest.peak_memory_bytes();
    if peak > MAX_MEMORY_BYTES {
        return Err(Violation(format!(
            "memory reached {peak} bytes, past the {MAX_MEMORY_BYTES}-byte limit"
        )));
    }
    if let Ok(size) = guest.memory_size()
        && size > MAX_MEMORY_BYTES as u64
    {
        return Err(Violation(format!(
            "memory is {size} bytes, past the {MAX_MEMORY_BYTES}-byte limit"
        )));
    }
    Ok(match called {
        Ok(()) => Checked::Ran(Termination::Exited(0)),
        Err(Error::Exit { code, .. }) => Checked::Ran(Termination::Exited(code)),
        Err(Error::Trap { trap, .. }) => Checked::Ran(Termination::Trapped(trap)),
        Err(other) => Checked::NotStarted(other),
    })
}

/// The property for components: a generated core module (no imports, a
/// `run` export), wrapped in a component that lifts `run`, instantiated
/// and called through [`crate::ComponentInstance::call_values`] under the
/// same limits. The same violations count: a call past its timeout, memory
/// past its limit.
pub fn check_component(data: &[u8]) -> Result<Checked, Violation> {
    let mut u = Unstructured::new(data);
    let fuel = fuel(&mut u);
    let core = match generate(&mut u, None, "run") {
        Ok(bytes) => bytes,
        Err(_) => return Ok(too_short()),
    };
    let limits = limits(fuel);
    let component = match runtime().load_bytes_for("fuzzed-component", lift_run(&core), &limits) {
        Ok(component) => component,
        Err(error @ Error::CompileLimit { .. }) => return Ok(Checked::Invalid(error)),
        Err(error) => return Err(Violation(format!("a valid generated component was refused: {error}"))),
    };
    let sandbox = Sandbox::new().limits(limits);

    let started = Instant::now();
    let instantiated = sandbox.instantiate_component(&component);
    within_timeout("instantiation", started)?;
    let mut guest = match instantiated {
        Ok(guest) => guest,
        Err(Error::Trap { trap, .. }) => return Ok(Checked::Ran(Termination::Trapped(trap))),
        Err(error) => return Ok(Checked::NotStarted(error)),
    };
    let started = Instant::now();
    let called = guest.call_values("run", &[]);
    within_timeout("run", started)?;

    let peak = guest.peak_memory_bytes();
    if peak > MAX_MEMORY_BYTES {
        return Err(Violation(format!(
            "memory reached {peak} bytes, past the {MAX_MEMORY_BYTES}-byte limit"
        )));
    }
    Ok(match called {
        Ok(_) => Checked::Ran(Termination::Exited(0)),
        Err(Error::Trap { trap, .. }) => Checked::Ran(Termination::Trapped(trap)),
        Err(other) => Checked::NotStarted(other),
    })
}

/// A fuel budget for three inputs in four, so runs are also cut by fuel.
fn fuel(u: &mut Unstructured<'_>) -> Option<u64> {
    match u.ratio(3, 4) {
        Ok(true) => Some(u.int_in_range(0..=2_000_000).unwrap_or(0)),
        _ => None,
    }
}

/// Not enough input to finish a module: nothing to check.
fn too_short() -> Checked {
    Checked::Invalid(Error::invalid_module("fuzzed", "input too short to generate a module"))
}

/// A component around the core module `core`, exporting its `run`
/// function lifted as `run: func()`.
fn lift_run(core: &[u8]) -> Vec<u8> {
    use wasm_encoder::{ComponentBuilder, ComponentExportKind, ExportKind, ModuleArg};
    let mut component = ComponentBuilder::default();
    let module = component.core_module_raw(None, core);
    let instance = component.core_instantiate(None, module, std::iter::empty::<(&str, ModuleArg)>());
    let run = component.core_alias_export(None, instance, "run", ExportKind::Func);
    let (ty, mut encoder) = component.type_function(None);
    encoder
        .params(std::iter::empty::<(&str, wasm_encoder::ComponentValType)>())
        .result(None);
    let lifted = component.lift_func(None, run, ty, []);
    component.export("run", ComponentExportKind::Func, lifted, None);
    component.finish()
}

/// The engine fuzzed modules run on: the default configuration, but no
/// compiled-module cache, which would keep every module ever generated.
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let config = RuntimeConfig {
            cache: CacheMode::Disabled,
            ..RuntimeConfig::default()
        };
        Runtime::new(&config).expect("the fuzzing engine configuration is valid")
    })
}

fn within_timeout(what: &str, started: Instant) -> Result<(), Violation> {
    let took = started.elapsed();
    if took > TIMEOUT + HANG_SLACK {
        return Err(Violation(format!("{what} took {took:?}, past the {TIMEOUT:?} timeout")));
    }
    Ok(())
}

/// A valid module from `u`: wasm-smith with the proposals this engine
/// runs (no reference types, GC, exceptions, threads or memory64), the
/// `imports` given, and the exports a WASI command has (`entry` and a memory), with a
/// memory of up to 20 pages (some over the limit, so that instantiation
/// refuses them).
fn generate(u: &mut Unstructured<'_>, imports: Option<&str>, entry: &str) -> arbitrary::Result<Vec<u8>> {
    let pages = u.int_in_range(0..=20)?;
    let exports = format!(r#"(module (func (export "{entry}")) (memory (export "memory") {pages}))"#);
    let wat_bytes = |text: &str| wat::parse_str(text).expect("the fuzzing templates are valid WAT");
    let config = wasm_smith::Config {
        available_imports: imports.map(wat_bytes),
        // Without a list, wasm-smith invents imports nothing provides.
        max_imports: if imports.is_some() { 100 } else { 0 },
        exports: Some(wat_bytes(&exports)),
        // The exported memory is the only one: a WASI command has one.
        max_memories: 0,
        max_tables: 4,
        max_funcs: 10,
        max_instructions: 300,
        // Some tables over the run's limit of 1000, so that instantiation refuses them.
        max_table_elements: 2000,
        // Execution starts at `_start`, not in a start function.
        allow_start_export: false,
        min_funcs: 1,
        // Reference types bring `externref`, which needs Wasmtime's `gc`
        // feature; this engine is built without it.
        reference_types_enabled: false,
        gc_enabled: false,
        exceptions_enabled: false,
        threads_enabled: false,
        memory64_enabled: false,
        wide_arithmetic_enabled: false,
        custom_page_sizes_enabled: false,
        compact_imports_enabled: false,
        canonicalize_nans: false,
        ..wasm_smith::Config::default()
    };
    Ok(wasm_smith::Module::new(config, u)?.to_bytes())
}
