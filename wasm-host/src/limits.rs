//! The resource-limit flags shared by `run`, `serve`, `conformance` and
//! `test`, turned into the library's `Limits` and, for the stack size, the
//! compile limits, the proposals and the compiled-module cache, the
//! runtime to build ([`RuntimePlan`]), built only when the command runs.
//!
//! Defaults are never restated here: the help text is built from
//! `host::Limits::default()` and `host::RuntimeConfig::default()`.

use std::collections::BTreeSet;
use std::time::Duration;

use clap::Args;
use host::{CacheMode, CompileLimits, Limits, Pooling, Proposal, Runtime, RuntimeConfig};

use crate::wasmtime_options::{self, Keys, WasmOption};

// Per-run limits; each one left out keeps the library's default. (Not a
// doc comment: clap would take it for the description of each subcommand
// that flattens these options.)
#[derive(Args, Debug, Clone, Default)]
pub struct LimitArgs {
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout, help = timeout_help())]
    timeout: Option<Timeout>,

    /// Instruction budget: past it the guest stops as out of fuel [default: unlimited]
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,

    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, help = bytes_help(
        "Largest linear memory; memory.grow past it fails inside the guest",
        Limits::default().max_memory_bytes,
    ))]
    max_memory: Option<usize>,

    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, help = bytes_help(
        "Bytes of stdout, and separately of stderr, let through; the rest is dropped and wasm-host says so. The default applies to --capture; streamed output is cut only when this is given",
        Limits::default().max_output_bytes,
    ))]
    max_output: Option<usize>,

    #[arg(long, value_name = "N", help = format!(
        "Descriptors a guest may hold open at once, its standard streams and granted directories included; past it path_open fails with EMFILE [default: {}]",
        Limits::default().max_descriptors,
    ))]
    max_descriptors: Option<usize>,

    #[arg(long, value_name = "N", help = format!(
        "Handles a guest may hold at once (files, streams, pollables, sockets; all of a component's); the call that would take one more traps [default: {}]",
        Limits::default().max_resources,
    ))]
    max_resources: Option<usize>,

    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, help = bytes_help(
        "Host memory a guest may fill outside its linear memory (HTTP bodies written and not yet sent, outgoing connections); a write past it fails",
        Limits::default().max_host_memory_bytes,
    ))]
    max_host_memory: Option<usize>,

    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, help = bytes_help(
        "Largest wasm call stack; deeper recursion traps as a stack overflow",
        RuntimeConfig::default().max_wasm_stack,
    ))]
    max_stack: Option<usize>,

    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, help = bytes_help(
        "Largest module wasm-host agrees to compile",
        CompileLimits::default().max_module_bytes,
    ))]
    max_module_size: Option<usize>,

    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, help = bytes_help(
        "Largest function body wasm-host agrees to compile",
        CompileLimits::default().max_function_body_bytes,
    ))]
    max_function_size: Option<usize>,

    #[arg(long, value_name = "N", help = format!(
        "Most locals one function may declare to be compiled [default: {}]",
        CompileLimits::default().max_function_locals,
    ))]
    max_function_locals: Option<u64>,

    #[arg(long, value_name = "N", help = format!(
        "Most locals times blocks in one function, what compile time grows with [default: {}]",
        CompileLimits::default().max_locals_times_blocks,
    ))]
    max_locals_times_blocks: Option<u64>,

    #[arg(long, value_name = "DURATION", value_parser = parse_timeout, help = format!(
        "Longest a module's compile may take: `30s`, `2m`, or `none` [default: {}]",
        describe_timeout(CompileLimits::default().timeout),
    ))]
    compile_timeout: Option<Timeout>,

    /// Compile modules afresh instead of taking them from the compiled-module
    /// cache (the same as WASM_HOST_CACHE=off; WASM_HOST_CACHE_DIR moves the cache,
    /// WASM_HOST_CACHE_MAX_MIB bounds its size on disk, default 1024)
    #[arg(long)]
    no_cache: bool,

    #[arg(short = 'W', value_name = "KEY[=VAL],...", value_parser = wasmtime_options::parse_wasm, help = format!(
        "wasmtime's wasm options (comma-separated, repeatable): timeout, fuel and max-memory-size as --timeout, --fuel and --max-memory (which win when both are given), and the WebAssembly proposals a guest may use, each off unless named: {}",
        wasmtime_options::WASM_KEYS,
    ))]
    wasm: Vec<Keys<WasmOption>>,
}

/// A `--timeout` value: a duration, or `none` for no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Timeout(Option<Duration>);

/// Where a guest's stdout and stderr go, which decides what `--max-output`
/// left out means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Kept in memory (`run --capture`, `conformance`, each test of
    /// `test`): cut at the library's default unless `--max-output` says.
    Captured,
    /// Written to wasm-host's own as the guest writes them, to the user's
    /// terminal or pipe rather than into memory: whole, unless
    /// `--max-output` is given.
    Streamed,
}

/// The runtime a command loads its guests with, decided from the flags;
/// [`RuntimePlan::build`] makes it when the command runs.
#[derive(Debug, Clone)]
pub enum RuntimePlan {
    /// The process's shared runtime: no flag asks for another engine.
    Shared,
    /// An engine of its own, with this configuration.
    Own(RuntimeConfig),
}

impl RuntimePlan {
    pub fn build(&self) -> Result<Runtime, host::Error> {
        match self {
            RuntimePlan::Shared => Ok(Runtime::shared().clone()),
            RuntimePlan::Own(config) => Runtime::new(config),
        }
    }

    /// This plan with `frames` kept of a trap's backtrace: an engine of
    /// its own unless that is the default.
    pub fn backtrace_frames(self, frames: usize) -> RuntimePlan {
        match self {
            RuntimePlan::Shared if frames == RuntimeConfig::default().backtrace_frames => RuntimePlan::Shared,
            RuntimePlan::Shared => RuntimePlan::Own(RuntimeConfig::default().backtrace_frames(frames)),
            RuntimePlan::Own(config) => RuntimePlan::Own(config.backtrace_frames(frames)),
        }
    }
}

impl LimitArgs {
    /// The library's limits with every flag given applied, for output
    /// that goes where `output` says.
    pub fn limits(&self, output: Output) -> Limits {
        self.limits_over(Limits::default(), output)
    }

    /// `base` with every flag given applied: a limit no flag names keeps
    /// `base`'s value (a package's own, for `wasm-host test`).
    pub fn limits_over(&self, base: Limits, output: Output) -> Limits {
        let defaults = base.clone();
        let max_output = match (self.max_output, output) {
            (Some(bytes), _) => bytes,
            (None, Output::Captured) => defaults.max_output_bytes,
            (None, Output::Streamed) => usize::MAX,
        };
        base.timeout(match self.timeout {
            Some(Timeout(timeout)) => timeout,
            None => {
                (self.wasm_last(|o| if let WasmOption::Timeout(t) = o { Some(*t) } else { None })).or(defaults.timeout)
            }
        })
        .fuel(
            (self.fuel)
                .or(self.wasm_last(|o| if let WasmOption::Fuel(f) = o { Some(*f) } else { None }))
                .or(defaults.fuel),
        )
        .max_memory_bytes(
            (self.max_memory)
                .or(self.wasm_last(|o| {
                    if let WasmOption::MaxMemorySize(b) = o {
                        Some(*b)
                    } else {
                        None
                    }
                }))
                .unwrap_or(defaults.max_memory_bytes),
        )
        .max_output_bytes(max_output)
        .max_descriptors(self.max_descriptors.unwrap_or(defaults.max_descriptors))
        .max_resources(self.max_resources.unwrap_or(defaults.max_resources))
        .max_host_memory_bytes(self.max_host_memory.unwrap_or(defaults.max_host_memory_bytes))
    }

    /// The `-W` keys given, in order (a later one overrides an earlier one).
    fn wasm(&self) -> impl DoubleEndedIterator<Item = &WasmOption> {
        self.wasm.iter().flat_map(|keys| &keys.0)
    }

    /// The value of the last `-W` key `pick` takes.
    fn wasm_last<T>(&self, pick: impl Fn(&WasmOption) -> Option<T>) -> Option<T> {
        self.wasm().rev().find_map(pick)
    }

    /// The proposals `-W` enables, each as its last mention says.
    fn proposals(&self) -> BTreeSet<Proposal> {
        let mut proposals = BTreeSet::new();
        for option in self.wasm() {
            if let WasmOption::Proposal(proposal, on) = option {
                match on {
                    true => proposals.insert(*proposal),
                    false => proposals.remove(proposal),
                };
            }
        }
        proposals
    }

    /// The `-W` keys given that limit the guest's instance itself (fuel,
    /// linear memory), which a test run through `conformance --adapter`, in
    /// a process of its own, cannot honour.
    pub fn wasm_instance_limits(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.wasm().filter_map(|option| match option {
            WasmOption::Fuel(_) => Some("fuel"),
            WasmOption::MaxMemorySize(_) => Some("max-memory-size"),
            _ => None,
        })
    }

    /// The largest wasm call stack a run may use (`--max-stack` or the default).
    pub fn max_stack(&self) -> usize {
        self.max_stack.unwrap_or(RuntimeConfig::default().max_wasm_stack)
    }

    /// The compile limits with every flag given applied.
    pub fn compile_limits(&self) -> CompileLimits {
        let defaults = CompileLimits::default();
        CompileLimits {
            max_module_bytes: self.max_module_size.unwrap_or(defaults.max_module_bytes),
            max_function_body_bytes: self.max_function_size.unwrap_or(defaults.max_function_body_bytes),
            max_function_locals: self.max_function_locals.unwrap_or(defaults.max_function_locals),
            max_locals_times_blocks: self.max_locals_times_blocks.unwrap_or(defaults.max_locals_times_blocks),
            timeout: self.compile_timeout.map_or(defaults.timeout, |t| t.0),
        }
    }

    /// The runtime to load modules with: the shared one, or one with its own
    /// engine when `--max-stack`, `--no-cache`, a compile limit or a
    /// proposal asks for something else.
    pub fn runtime(&self) -> RuntimePlan {
        if self.max_stack.is_none()
            && !self.no_cache
            && self.compile_limits() == CompileLimits::default()
            && self.proposals().is_empty()
        {
            return RuntimePlan::Shared;
        }
        RuntimePlan::Own(self.runtime_config())
    }

    /// A runtime whose guests carry no epoch checks, for a caller that keeps
    /// the timeout of computing guests itself (`wasm-host run` ends its
    /// process at the deadline), and that runs one guest: reserving a pool
    /// of slots costs more than mapping one instance.
    pub fn runtime_without_epochs(&self) -> RuntimePlan {
        RuntimePlan::Own(self.runtime_config().epoch_interruption(false).pooling(None))
    }

    /// A runtime whose guests carry no epoch checks, their instances from
    /// the pool: for `wasm-host test`, which runs many guests and keeps the
    /// timeout of those that compute itself.
    pub fn pooled_runtime_without_epochs(&self) -> RuntimePlan {
        // One module's tests, instance after instance in the same few
        // slots: what each wrote is reset in place, not faulted in again.
        let pooling = Pooling {
            keep_resident_bytes: 4 << 20,
            ..Pooling::default()
        };
        RuntimePlan::Own(self.runtime_config().epoch_interruption(false).pooling(Some(pooling)))
    }

    fn runtime_config(&self) -> RuntimeConfig {
        let defaults = RuntimeConfig::default();
        let cache = if self.no_cache {
            CacheMode::Disabled
        } else {
            defaults.cache.clone()
        };
        defaults
            .max_wasm_stack(self.max_stack())
            .cache(cache)
            .compile_limits(self.compile_limits())
            .proposals(self.proposals())
    }
}

/// What `--timeout` accepts, for its help and its errors.
const DURATIONS: &str = "a duration such as `500ms`, `10s`, `1m30s` or `2h`, or `none`";

/// What the byte-count flags accept, for their help and their errors.
const SIZES: &str = "a byte count such as `4096`, `64K`, `10MB` or `1.5G` \
    (K, M, G, T and KB, KiB, ... are all powers of 1024)";

fn timeout_help() -> String {
    let default = describe_timeout(Limits::default().timeout);
    format!("Wall-clock limit for the run: {DURATIONS} [default: {default}]")
}

fn bytes_help(what: &str, default: usize) -> String {
    format!("{what}: {SIZES} [default: {}]", format_bytes(default))
}

fn parse_timeout(text: &str) -> Result<Timeout, String> {
    if text == "none" {
        return Ok(Timeout(None));
    }
    humantime::parse_duration(text)
        .map(|duration| Timeout(Some(duration)))
        .map_err(|error| format!("`{text}`: {error}; expected {DURATIONS}"))
}

pub fn parse_bytes(text: &str) -> Result<usize, String> {
    parse_size::Config::new()
        .with_binary()
        .parse_size(text)
        .map_err(|error| error.to_string())
        .and_then(|bytes| usize::try_from(bytes).map_err(|_| "too large".to_owned()))
        .map_err(|error| format!("`{text}`: {error}; expected {SIZES}"))
}

/// Bytes with the largest suffix that divides them exactly.
pub fn format_bytes(bytes: usize) -> String {
    [(30, "G"), (20, "M"), (10, "K")]
        .into_iter()
        .find(|(shift, _)| bytes != 0 && bytes.is_multiple_of(1 << shift))
        .map_or_else(
            || bytes.to_string(),
            |(shift, suffix)| format!("{}{suffix}", bytes >> shift),
        )
}

/// A duration as `--timeout` would accept it.
pub fn describe_timeout(timeout: Option<Duration>) -> String {
    timeout.map_or_else(|| "none".to_owned(), |t| humantime::format_duration(t).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_humantime_durations_or_none() {
        let ok = |text| parse_timeout(text).unwrap().0;
        assert_eq!(ok("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(ok("10s"), Some(Duration::from_secs(10)));
        assert_eq!(ok("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(ok("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(ok("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(ok("none"), None);
        for bad in ["10", "s", "-1s", "10 parsecs", ""] {
            let error = parse_timeout(bad).unwrap_err();
            assert!(error.contains("expected a duration such as"), "{bad}: {error}");
        }
    }

    #[test]
    fn byte_counts_take_units_all_powers_of_1024() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64K"), Ok(64 << 10));
        assert_eq!(parse_bytes("64M"), Ok(64 << 20));
        assert_eq!(parse_bytes("10MB"), Ok(10 << 20));
        assert_eq!(parse_bytes("2MiB"), Ok(2 << 20));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert_eq!(parse_bytes("1.5G"), Ok(3 << 29));
        for bad in ["12X", "M", "-1K", "99999999999999999999G", ""] {
            let error = parse_bytes(bad).unwrap_err();
            assert!(error.contains("expected a byte count such as"), "{bad}: {error}");
        }
    }

    #[test]
    fn defaults_are_shown_the_way_they_are_written() {
        assert_eq!(format_bytes(256 << 20), "256M");
        assert_eq!(format_bytes(1 << 30), "1G");
        assert_eq!(format_bytes(1000), "1000");
        assert_eq!(describe_timeout(Some(Duration::from_secs(10))), "10s");
        assert_eq!(describe_timeout(Some(Duration::from_millis(250))), "250ms");
        assert_eq!(describe_timeout(Some(Duration::from_secs(90))), "1m 30s");
        assert_eq!(describe_timeout(None), "none");
        for shown in ["10s", "250ms", "1m 30s", "none"] {
            assert!(parse_timeout(shown).is_ok(), "{shown} is shown but refused");
        }
    }

    #[test]
    fn a_flag_given_wins_over_the_base_even_at_the_library_default() {
        let package = Limits::default()
            .timeout(Some(Duration::from_secs(3)))
            .max_memory_bytes(1 << 20);
        let args = LimitArgs {
            timeout: Some(Timeout(Limits::default().timeout)),
            ..LimitArgs::default()
        };
        let limits = args.limits_over(package, Output::Captured);
        assert_eq!(limits.timeout, Limits::default().timeout);
        assert_eq!(limits.max_memory_bytes, 1 << 20);
    }

    #[test]
    fn flags_left_out_keep_the_library_defaults() {
        assert_eq!(LimitArgs::default().limits(Output::Captured), Limits::default());
        let args = LimitArgs {
            timeout: Some(Timeout(None)),
            fuel: Some(7),
            max_memory: Some(1 << 20),
            max_descriptors: Some(8),
            max_resources: Some(9),
            ..LimitArgs::default()
        };
        let limits = args.limits(Output::Captured);
        assert_eq!(limits.max_descriptors, 8);
        assert_eq!(limits.max_resources, 9);
        assert_eq!(limits.timeout, None);
        assert_eq!(limits.fuel, Some(7));
        assert_eq!(limits.max_memory_bytes, 1 << 20);
        assert_eq!(limits.max_output_bytes, Limits::default().max_output_bytes);
    }

    #[test]
    fn streamed_output_is_whole_unless_max_output_is_given() {
        assert_eq!(
            LimitArgs::default().limits(Output::Streamed).max_output_bytes,
            usize::MAX
        );
        let args = LimitArgs {
            max_output: Some(100),
            ..LimitArgs::default()
        };
        assert_eq!(args.limits(Output::Streamed).max_output_bytes, 100);
        assert_eq!(args.limits(Output::Captured).max_output_bytes, 100);
    }

    #[test]
    fn compile_flags_raise_the_compile_limits() {
        assert_eq!(LimitArgs::default().compile_limits(), CompileLimits::default());
        let args = LimitArgs {
            max_module_size: Some(1 << 30),
            max_function_size: Some(8 << 20),
            max_function_locals: Some(50_000),
            max_locals_times_blocks: Some(1 << 40),
            compile_timeout: Some(Timeout(None)),
            ..LimitArgs::default()
        };
        let limits = args.compile_limits();
        assert_eq!(
            (limits.max_module_bytes, limits.max_function_body_bytes),
            (1 << 30, 8 << 20)
        );
        assert_eq!(
            (
                limits.max_function_locals,
                limits.max_locals_times_blocks,
                limits.timeout
            ),
            (50_000, 1 << 40, None)
        );
    }
}
