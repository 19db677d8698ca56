//! The resource-limit flags shared by `run` and `conformance`, turned into
//! the library's `Limits` and, for the stack size, the compile limits and
//! the compiled-module cache, a runtime of its own.
//!
//! Defaults are never restated here: the help text is built from
//! `host::Limits::default()` and `host::RuntimeConfig::default()`.

use std::time::Duration;

use clap::Args;
use host::{CacheMode, CompileLimits, Limits, Runtime, RuntimeConfig};

/// Per-run limits; each one left out keeps the library's default.
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
}

/// A `--timeout` value: a duration, or `none` for no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Timeout(Option<Duration>);

impl LimitArgs {
    /// The library's limits with every flag given applied.
    pub fn limits(&self) -> Limits {
        let defaults = Limits::default();
        Limits {
            timeout: self.timeout.map_or(defaults.timeout, |t| t.0),
            fuel: self.fuel.or(defaults.fuel),
            max_memory_bytes: self.max_memory.unwrap_or(defaults.max_memory_bytes),
            max_output_bytes: self.max_output.unwrap_or(defaults.max_output_bytes),
            max_descriptors: self.max_descriptors.unwrap_or(defaults.max_descriptors),
            ..defaults
        }
    }

    /// True when `--max-output` was given: streamed output is then cut too.
    pub fn caps_output(&self) -> bool {
        self.max_output.is_some()
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
    /// engine when `--max-stack`, `--no-cache` or a compile limit asks for
    /// something else.
    pub fn runtime(&self) -> Result<Runtime, host::Error> {
        let compile_limits = self.compile_limits();
        if self.max_stack.is_none() && !self.no_cache && compile_limits == CompileLimits::default() {
            return Ok(Runtime::shared().clone());
        }
        let defaults = RuntimeConfig::default();
        Runtime::new(&RuntimeConfig {
            max_wasm_stack: self.max_stack(),
            cache: if self.no_cache {
                CacheMode::Disabled
            } else {
                defaults.cache
            },
            compile_limits,
            ..defaults
        })
    }
}

fn timeout_help() -> String {
    let default = Limits::default()
        .timeout
        .map_or_else(|| "none".to_owned(), format_duration);
    format!("Wall-clock limit for the run: `500ms`, `10s`, `2m`, or `none` [default: {default}]")
}

fn bytes_help(what: &str, default: usize) -> String {
    format!(
        "{what}; suffixes K, M, G (powers of 1024) [default: {}]",
        format_bytes(default)
    )
}

fn parse_timeout(text: &str) -> Result<Timeout, String> {
    if text == "none" {
        return Ok(Timeout(None));
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let nanos_per_unit = match unit {
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return Err(format!("`{text}` needs a unit: ms, s, m or h (or `none`)")),
    };
    let number: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration"))?;
    // Whole nanoseconds, so that `500ms` is exactly 500 ms.
    let nanos = (number * nanos_per_unit).round();
    if nanos >= u64::MAX as f64 {
        return Err(format!("`{text}` is too long"));
    }
    Ok(Timeout(Some(Duration::from_nanos(nanos as u64))))
}

fn parse_bytes(text: &str) -> Result<usize, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let shift = match suffix.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KIB" => 10,
        "M" | "MIB" => 20,
        "G" | "GIB" => 30,
        _ => return Err(format!("`{text}`: the suffix must be K, M or G")),
    };
    let number: usize = number.parse().map_err(|_| format!("`{text}` is not a byte count"))?;
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("`{text}` is too large"))
}

fn format_duration(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
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
    timeout.map_or_else(|| "none".to_owned(), format_duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_need_a_unit_or_none() {
        assert_eq!(parse_timeout("500ms"), Ok(Timeout(Some(Duration::from_millis(500)))));
        assert_eq!(parse_timeout("10s"), Ok(Timeout(Some(Duration::from_secs(10)))));
        assert_eq!(parse_timeout("1.5s"), Ok(Timeout(Some(Duration::from_millis(1500)))));
        assert_eq!(parse_timeout("2m"), Ok(Timeout(Some(Duration::from_secs(120)))));
        assert_eq!(parse_timeout("none"), Ok(Timeout(None)));
        assert!(parse_timeout("10").unwrap_err().contains("needs a unit"));
        assert!(parse_timeout("s").is_err());
        assert!(parse_timeout("-1s").is_err());
    }

    #[test]
    fn byte_counts_take_binary_suffixes() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64K"), Ok(64 << 10));
        assert_eq!(parse_bytes("64M"), Ok(64 << 20));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert_eq!(parse_bytes("2MiB"), Ok(2 << 20));
        assert!(parse_bytes("12X").is_err());
        assert!(parse_bytes("M").is_err());
        assert!(parse_bytes("99999999999999999999G").is_err());
    }

    #[test]
    fn defaults_are_shown_the_way_they_are_written() {
        assert_eq!(format_bytes(256 << 20), "256M");
        assert_eq!(format_bytes(1 << 30), "1G");
        assert_eq!(format_bytes(1000), "1000");
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn flags_left_out_keep_the_library_defaults() {
        assert_eq!(LimitArgs::default().limits(), Limits::default());
        let args = LimitArgs {
            timeout: Some(Timeout(None)),
            fuel: Some(7),
            max_memory: Some(1 << 20),
            max_descriptors: Some(8),
            ..LimitArgs::default()
        };
        let limits = args.limits();
        assert_eq!(limits.max_descriptors, 8);
        assert_eq!(limits.timeout, None);
        assert_eq!(limits.fuel, Some(7));
        assert_eq!(limits.max_memory_bytes, 1 << 20);
        assert_eq!(limits.max_output_bytes, Limits::default().max_output_bytes);
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
