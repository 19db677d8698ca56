//! What a run produced: how it ended, what it printed, what it logged.
//!
//! [`classify`] is the one place where a Wasmtime error becomes a typed
//! ending; the library, the command line and the tests all go through it.

use std::fmt;
use std::time::Duration;

/// The kinds of trap a guest can hit, as far as a host needs to tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TrapKind {
    /// A load or store outside linear memory.
    MemoryOutOfBounds,
    /// A wasm `unreachable` instruction (what a Rust panic becomes).
    Unreachable,
    /// The wasm call stack went past the engine's `max_wasm_stack`.
    StackOverflow,
    /// Integer division or remainder by zero.
    IntegerDivideByZero,
    /// Signed integer overflow in division, or an invalid float-to-int conversion.
    IntegerOverflow,
    /// `call_indirect` hit a null entry, an index past the table, or a function of another type.
    IndirectCall,
    /// The run went past its wall-clock timeout and was interrupted.
    Timeout,
    /// The run used its whole fuel budget.
    OutOfFuel,
    /// A host function refused the call (for example `host.log` given a
    /// pointer outside memory) or a WASI call failed fatally.
    HostError,
    /// Any other trap.
    Other,
}

impl TrapKind {
    /// A short, stable name, used by the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TrapKind::MemoryOutOfBounds => "memory out of bounds",
            TrapKind::Unreachable => "unreachable",
            TrapKind::StackOverflow => "stack overflow",
            TrapKind::IntegerDivideByZero => "integer divide by zero",
            TrapKind::IntegerOverflow => "integer overflow",
            TrapKind::IndirectCall => "indirect call mismatch",
            TrapKind::Timeout => "timeout",
            TrapKind::OutOfFuel => "out of fuel",
            TrapKind::HostError => "host error",
            TrapKind::Other => "trap",
        }
    }

    /// The kind of a trap Wasmtime raised.
    fn of(trap: wasmtime::Trap) -> TrapKind {
        use wasmtime::Trap as T;
        match trap {
            T::MemoryOutOfBounds | T::HeapMisaligned => TrapKind::MemoryOutOfBounds,
            T::UnreachableCodeReached => TrapKind::Unreachable,
            T::StackOverflow => TrapKind::StackOverflow,
            T::IntegerDivisionByZero => TrapKind::IntegerDivideByZero,
            T::IntegerOverflow | T::BadConversionToInteger => TrapKind::IntegerOverflow,
            T::BadSignature | T::IndirectCallToNull | T::TableOutOfBounds => TrapKind::IndirectCall,
            T::Interrupt => TrapKind::Timeout,
            T::OutOfFuel => TrapKind::OutOfFuel,
            _ => TrapKind::Other,
        }
    }
}

impl fmt::Display for TrapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified trap: its kind and Wasmtime's own message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trap {
    /// What went wrong, for matching.
    pub kind: TrapKind,
    /// The root cause, as Wasmtime words it (e.g. "wasm trap: out of bounds memory access").
    pub message: String,
    /// The wasm backtrace at the trap, when Wasmtime captured one.
    pub backtrace: Option<String>,
}

/// The one wording of a trap ending, shared by every front end: `timed
/// out`, `ran out of fuel`, or `trapped: KIND: MESSAGE`.
impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TrapKind::Timeout => f.write_str("timed out"),
            TrapKind::OutOfFuel => f.write_str("ran out of fuel"),
            kind => write!(f, "trapped: {kind}: {}", self.message),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Termination {
    /// The guest returned from `_start` (code 0) or called `proc_exit(code)`.
    Exited(i32),
    /// The guest trapped, timed out, ran out of fuel or a host call failed.
    Trapped(Trap),
}

/// Everything a run of a command-style guest produced.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunOutcome {
    /// How the run ended.
    pub termination: Termination,
    /// Captured standard output (empty when stdout was inherited or went to a writer).
    pub stdout: Vec<u8>,
    /// Captured standard error (empty when stderr was inherited or went to a writer).
    pub stderr: Vec<u8>,
    /// True when the guest wrote more to stdout than the limit kept.
    pub stdout_truncated: bool,
    /// True when the guest wrote more to stderr than the limit kept.
    pub stderr_truncated: bool,
    /// Messages the guest sent through the `host.log` import, in order.
    pub host_log: Vec<String>,
    /// True when `host.log` messages went past [`crate::Limits::max_log_bytes`]
    /// and were cut.
    pub host_log_truncated: bool,
    /// Fuel the run consumed (roughly, wasm instructions executed), or
    /// `None` when the run had no fuel budget: only runs with one are
    /// compiled with fuel instrumentation, so others are not metered.
    pub fuel_consumed: Option<u64>,
    /// Wall-clock time from instantiation to the end of the run.
    pub duration: Duration,
    /// The run's timeout ([`crate::Limits::timeout`]), which a timed-out
    /// run names.
    pub timeout: Option<Duration>,
}

/// How the run ended, in the one wording every front end and report uses:
/// `exited with code 3`, `timed out after 2s`, `ran out of fuel after
/// 1000000 units`, `trapped: unreachable: wasm trap: ...`.
impl fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ending {
            termination: &self.termination,
            timeout: self.timeout,
            fuel_consumed: self.fuel_consumed,
        }
        .fmt(f)
    }
}

/// An ending worded as [`RunOutcome`] words it, for endings that have no
/// outcome of their own (a request to an HTTP service).
pub(crate) struct Ending<'a> {
    pub(crate) termination: &'a Termination,
    pub(crate) timeout: Option<Duration>,
    pub(crate) fuel_consumed: Option<u64>,
}

impl fmt::Display for Ending<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let trap = match self.termination {
            Termination::Exited(code) => return write!(f, "exited with code {code}"),
            Termination::Trapped(trap) => trap,
        };
        write!(f, "{trap}")?;
        match (trap.kind, self.timeout, self.fuel_consumed) {
            (TrapKind::Timeout, Some(timeout), _) => write!(f, " after {timeout:?}"),
            (TrapKind::OutOfFuel, _, Some(fuel)) => write!(f, " after {fuel} units"),
            _ => Ok(()),
        }
    }
}

impl RunOutcome {
    /// The exit code, or `None` when the guest trapped.
    pub fn exit_code(&self) -> Option<i32> {
        match self.termination {
            Termination::Exited(code) => Some(code),
            Termination::Trapped(_) => None,
        }
    }

    /// The trap, when the guest trapped.
    pub fn trap(&self) -> Option<&Trap> {
        match &self.termination {
            Termination::Trapped(trap) => Some(trap),
            Termination::Exited(_) => None,
        }
    }

    /// True when the guest exited with code 0.
    pub fn success(&self) -> bool {
        self.termination == Termination::Exited(0)
    }

    /// Captured stdout as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Captured stderr as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// True when `error` is the guest's own ending (a trap or an exit), not a
/// failure of the host to set it up.
pub(crate) fn ended_by_guest(error: &wasmtime::Error) -> bool {
    error.is::<wasmtime::Trap>() || error.is::<wasmtime_wasi::I32Exit>()
}

/// Turns the error a guest call ended with into how the guest ended.
pub(crate) fn classify(error: wasmtime::Error) -> Termination {
    if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return Termination::Exited(exit.0);
    }
    let kind = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => TrapKind::of(*trap),
        None => TrapKind::HostError,
    };
    Termination::Trapped(Trap {
        kind,
        message: error.root_cause().to_string(),
        backtrace: error.downcast_ref::<wasmtime::WasmBacktrace>().map(backtrace_text),
    })
}

/// Wasmtime's rendering of `backtrace` (its `Display`: a heading, each
/// frame's lines, perhaps a note), which the CLI prints and the test
/// runner reads line by line, with every name the module gave (its own,
/// its functions', its debug info's symbols and files) escaped: a name
/// holding a line break would start a line of its own, a frame or a
/// line of a test report forged by the module.
fn backtrace_text(backtrace: &wasmtime::WasmBacktrace) -> String {
    use std::fmt::Write;
    use wasmtime_environ::{demangle_function_name, demangle_function_name_or_index};

    let escaped = |write: &dyn Fn(&mut String) -> fmt::Result| {
        let mut name = String::new();
        let _ = write(&mut name);
        crate::text::escape_controls(&name)
    };
    let mut text = String::from("error while executing at wasm backtrace:");
    for (i, frame) in backtrace.frames().iter().enumerate() {
        let _ = write!(text, "\n  {i:>3}: ");
        if let Some(offset) = frame.module_offset() {
            let _ = write!(text, "{offset:#8x} - ");
        }
        let function =
            || escaped(&|out| demangle_function_name_or_index(out, frame.func_name(), frame.func_index() as usize));
        if frame.symbols().is_empty() {
            let module = crate::text::escape_controls(frame.module().name().unwrap_or("<unknown>"));
            let _ = write!(text, "{module}!{}", function());
        }
        for (i, symbol) in frame.symbols().iter().enumerate() {
            if i > 0 {
                text.push_str("\n                - ");
            }
            match symbol.name() {
                Some(name) => text.push_str(&escaped(&|out| demangle_function_name(out, name))),
                None if i == 0 => text.push_str(&function()),
                None => text.push_str("<inlined function>"),
            }
            if let Some(file) = symbol.file() {
                let _ = write!(text, "\n                    at {}", crate::text::escape_controls(file));
                if let Some(line) = symbol.line() {
                    let _ = write!(text, ":{line}");
                    if let Some(column) = symbol.column() {
                        let _ = write!(text, ":{column}");
                    }
                }
            }
        }
    }
    // Wasmtime's own note, when it gives one (whether it does is its own).
    const NOTE: &str =
        "note: using the `WASMTIME_BACKTRACE_DETAILS=1` environment variable may show more debugging information";
    if backtrace.to_string().ends_with(NOTE) {
        let _ = write!(text, "\n{NOTE}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(termination: Termination, timeout: Option<Duration>, fuel_consumed: Option<u64>) -> String {
        RunOutcome {
            termination,
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            host_log: Vec::new(),
            host_log_truncated: false,
            fuel_consumed,
            duration: Duration::from_millis(301),
            timeout,
        }
        .to_string()
    }

    fn trap(kind: TrapKind, message: &str) -> Termination {
        Termination::Trapped(Trap {
            kind,
            message: message.into(),
            backtrace: None,
        })
    }

    #[test]
    fn each_ending_has_one_wording_naming_the_limit_it_hit() {
        assert_eq!(ended(Termination::Exited(3), None, None), "exited with code 3");
        let timeout = Some(Duration::from_millis(300));
        let interrupt = trap(TrapKind::Timeout, "wasm trap: interrupt");
        assert_eq!(ended(interrupt.clone(), timeout, None), "timed out after 300ms");
        assert_eq!(ended(interrupt, None, None), "timed out");
        let fuel = trap(TrapKind::OutOfFuel, "wasm trap: all fuel consumed");
        assert_eq!(ended(fuel, None, Some(1000)), "ran out of fuel after 1000 units");
        let unreachable = trap(TrapKind::Unreachable, "wasm trap: unreachable");
        assert_eq!(
            ended(unreachable, timeout, None),
            "trapped: unreachable: wasm trap: unreachable"
        );
    }

    /// The error of calling `run` in `wat`, with its wasm backtrace.
    fn trapped(wat: &str) -> wasmtime::Error {
        trapped_in(&wasmtime::Engine::default(), &wat::parse_str(wat).unwrap())
    }

    /// The error of calling `run` in `wasm` compiled by `engine`.
    fn trapped_in(engine: &wasmtime::Engine, wasm: &[u8]) -> wasmtime::Error {
        let module = wasmtime::Module::new(engine, wasm).unwrap();
        let mut store = wasmtime::Store::new(engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let run = instance.get_typed_func::<(), ()>(&mut store, "run").unwrap();
        run.call(&mut store, ()).unwrap_err()
    }

    #[test]
    fn a_backtrace_reads_as_wasmtimes_with_the_modules_names_escaped() {
        let plain = trapped(r#"(module $m (func $inner (unreachable)) (func (export "run") (call $inner)))"#);
        let shown = plain.downcast_ref::<wasmtime::WasmBacktrace>().unwrap().to_string();
        let Termination::Trapped(trap) = classify(plain) else {
            panic!()
        };
        assert_eq!(trap.backtrace.as_deref(), Some(shown.as_str()));

        let hostile = trapped(
            r#"(module $"m\n" (func $"inner\nforged\u{1b}[31m" (unreachable)) (func (export "run") (call 0)))"#,
        );
        let Termination::Trapped(trap) = classify(hostile) else {
            panic!()
        };
        let backtrace = trap.backtrace.unwrap();
        assert_eq!(backtrace.lines().count(), 3, "{backtrace}");
        assert!(
            backtrace.contains(r"m\n!inner\nforged\u{1b}[31m") && !backtrace.contains('\u{1b}'),
            "{backtrace}"
        );
    }

    /// `wasm` with a custom section `name` holding `data` after the others.
    fn with_section(mut wasm: Vec<u8>, name: &str, data: &[u8]) -> Vec<u8> {
        let mut payload = vec![u8::try_from(name.len()).unwrap()];
        payload.extend(name.as_bytes());
        payload.extend(data);
        wasm.push(0);
        let mut size = payload.len();
        while size >= 0x80 {
            wasm.push(0x80 | (size & 0x7f) as u8);
            size >>= 7;
        }
        wasm.push(size as u8);
        wasm.extend(payload);
        wasm
    }

    /// DWARF (version 4) for a module of one function: `names` nested,
    /// the first its subprogram and each next one inlined into the one
    /// before, each named or not, every one covering all the code.
    fn dwarf(names: &[Option<&str>]) -> [(&'static str, Vec<u8>); 2] {
        // Each abbreviation: code, tag, has children, (attribute, form)s.
        let abbrev = vec![
            1, 0x11, 1, 0x11, 0x01, 0x12, 0x06, 0, 0, // compile unit: low_pc, high_pc
            2, 0x2e, 1, 0x03, 0x08, 0x11, 0x01, 0x12, 0x06, 0, 0, // subprogram: name, low_pc, high_pc
            3, 0x2e, 1, 0x11, 0x01, 0x12, 0x06, 0, 0, // subprogram without a name
            4, 0x1d, 1, 0x03, 0x08, 0x11, 0x01, 0x12, 0x06, 0, 0, // inlined subroutine: name, ...
            5, 0x1d, 1, 0x11, 0x01, 0x12, 0x06, 0, 0, // inlined subroutine without a name
            0,
        ];
        let everything = |die: &mut Vec<u8>| {
            die.extend(0u32.to_le_bytes());
            die.extend(0x10000u32.to_le_bytes());
        };
        let mut dies = vec![1];
        everything(&mut dies);
        for (depth, name) in names.iter().enumerate() {
            let inlined = if depth == 0 { 0 } else { 2 };
            match name {
                Some(name) => {
                    dies.push(2 + inlined);
                    dies.extend(name.as_bytes());
                    dies.push(0);
                }
                None => dies.push(3 + inlined),
            }
            everything(&mut dies);
        }
        // The end of each one's children, the unit's last.
        dies.extend(vec![0; names.len() + 1]);
        // After the length: version 4, abbreviations at 0, 4-byte addresses.
        let mut info = u32::try_from(dies.len() + 7).unwrap().to_le_bytes().to_vec();
        info.extend(4u16.to_le_bytes());
        info.extend(0u32.to_le_bytes());
        info.push(4);
        info.extend(dies);
        [(".debug_abbrev", abbrev), (".debug_info", info)]
    }

    /// A module whose `run` traps at once, with `dwarf(names)`.
    fn run_with_dwarf(names: &[Option<&str>]) -> Vec<u8> {
        let mut wasm = wat::parse_str(r#"(module (func $run (export "run") (unreachable)))"#).unwrap();
        for (name, data) in dwarf(names) {
            wasm = with_section(wasm, name, &data);
        }
        wasm
    }

    /// With the module's DWARF read (WASMTIME_BACKTRACE_DETAILS), a frame
    /// shows each function inlined into it on a line of its own, and one
    /// the DWARF leaves unnamed as Wasmtime names it: by its wasm name
    /// where it is the frame's innermost, `<inlined function>` elsewhere.
    #[test]
    fn a_backtrace_with_inlined_functions_reads_as_wasmtimes() {
        let mut config = wasmtime::Config::new();
        config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable);
        let engine = wasmtime::Engine::new(&config).unwrap();
        let inlined = [None, Some("inner")].map(|innermost| [Some("outer"), None, innermost]);
        for (names, frame) in [
            (
                &inlined[0][..],
                "run\n                - <inlined function>\n                - outer",
            ),
            (
                &inlined[1][..],
                "inner\n                - <inlined function>\n                - outer",
            ),
        ] {
            let error = trapped_in(&engine, &run_with_dwarf(names));
            let shown = error.downcast_ref::<wasmtime::WasmBacktrace>().unwrap().to_string();
            assert!(shown.ends_with(&format!(" - {frame}")), "{names:?}: {shown}");
            let Termination::Trapped(trap) = classify(error) else {
                panic!()
            };
            assert_eq!(trap.backtrace.as_deref(), Some(shown.as_str()), "{names:?}");
        }
        // The DWARF's names are the module's too.
        let hostile = run_with_dwarf(&[Some("outer\nforged\u{1b}"), Some("inner\n")]);
        let Termination::Trapped(trap) = classify(trapped_in(&engine, &hostile)) else {
            panic!()
        };
        let backtrace = trap.backtrace.unwrap();
        assert_eq!(backtrace.lines().count(), 3, "{backtrace}");
        assert!(
            backtrace.ends_with(" - inner\\n\n                - outer\\nforged\\u{1b}"),
            "{backtrace}"
        );
    }
}
