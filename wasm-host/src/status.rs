//! Exit statuses and the one-line messages `wasm-host` prints on stderr.
//!
//! A WASI guest can only exit with 0 to 125 (`proc_exit` refuses anything
//! larger), so every status the host itself chooses lies above 125 and can
//! never be mistaken for the guest's own; 2 is clap's usage error, reported
//! before any guest runs.

use std::path::Path;

use host::{CompileLimit, Error, Trap, TrapKind};

/// The command line could not be parsed (clap's own status).
pub const USAGE: u8 = 2;
/// The module could not be loaded or started, or the runtime could not be set up.
pub const LOAD_ERROR: u8 = 126;
/// The guest trapped (like a process aborted by SIGABRT, 128 + 6).
pub const TRAP: u8 = 134;
/// The guest ran past its `--timeout` (like SIGALRM, 128 + 14).
pub const TIMEOUT: u8 = 142;
/// The guest used its whole `--fuel` budget (like SIGXCPU, 128 + 24).
pub const OUT_OF_FUEL: u8 = 152;

/// The `run` exit statuses, as `--help` shows them.
pub const RUN_STATUS_HELP: &str = "\
Exit status of `wasm-host run`:
  0-125  the guest's own: the code it passed to proc_exit, 0 when _start returned
  2      invalid command line
  126    the module could not be loaded or started (file not found, not a wasm
         module, past a compile limit, a proposal not enabled, no `_start`, an
         import this host does not provide, a directory that cannot be granted)
  134    the guest trapped
  142    the guest was stopped by --timeout
  152    the guest ran out of --fuel
Whenever wasm-host itself ends the run, it says why in one line on stderr
(a trap's wasm backtrace and a WAT error's source line follow it).";

/// The status for a guest that ended with `trap`.
pub fn for_trap(trap: &Trap) -> u8 {
    match trap.kind {
        TrapKind::Timeout => TIMEOUT,
        TrapKind::OutOfFuel => OUT_OF_FUEL,
        _ => TRAP,
    }
}

/// Describes a library error in one line that names the module, its
/// causes after it; a WAT error adds the lines of its source excerpt.
/// Names that come from the module (imports, exports) are escaped.
pub fn describe_error(module: &Path, error: &Error) -> String {
    let full = with_causes(error);
    let text = one_line(&full);
    let text = match error {
        Error::CompileLimit { limit, .. } => format!("{text} (raise it with {})", compile_flag(*limit)),
        Error::ProposalDisabled { proposals, .. } => {
            let flags: Vec<String> = proposals.iter().map(|p| format!("-W {p}")).collect();
            format!("{text} (enable it with {})", flags.join(" "))
        }
        Error::ModuleTooLarge { .. } => format!("{text} (raise it with {})", compile_flag(CompileLimit::ModuleBytes)),
        _ if error.module().is_some() => text,
        _ => format!("{}: {text}", module.display()),
    };
    let excerpt = wat_excerpt(&full).map(escape_controls);
    std::iter::once(escape_controls(&text))
        .chain(excerpt)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The source lines a WAT parse error shows under its `--> file:line:col`
/// line (`  |`, ` 5 | (func ...`, `  | ^`); none for any other message.
fn wat_excerpt(message: &str) -> impl Iterator<Item = &str> {
    let mut lines = message.lines().skip_while(|line| !line.trim_start().starts_with("-->"));
    lines.next();
    lines.take_while(|line| line.trim_start().starts_with(|c: char| c == '|' || c.is_ascii_digit()))
}

/// The wasm backtrace of `trap`, as lines to print under its message:
/// the frames Wasmtime captured, control characters escaped (function
/// names come from the module).
pub fn backtrace(trap: &Trap) -> Option<String> {
    let frames: Vec<String> = trap
        .backtrace
        .as_deref()?
        .lines()
        .skip(1)
        .map(escape_controls)
        .collect();
    (!frames.is_empty()).then(|| format!("wasm backtrace:\n{}", frames.join("\n")))
}

pub use host::text::{escape_controls, one_line, with_causes};

/// The flag that raises a compile limit.
fn compile_flag(limit: CompileLimit) -> &'static str {
    match limit {
        CompileLimit::ModuleBytes => "--max-module-size",
        CompileLimit::FunctionBodyBytes => "--max-function-size",
        CompileLimit::FunctionLocals => "--max-function-locals",
        CompileLimit::LocalsTimesBlocks => "--max-locals-times-blocks",
        _ => "--compile-timeout",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_a_module_are_escaped_in_messages() {
        let error = Error::UnknownImport {
            module: "evil.wasm".into(),
            import_module: "env\u{1b}]0;owned\u{7}".into(),
            import_name: "\u{9b}2J".into(),
        };
        let message = describe_error(Path::new("evil.wasm"), &error);
        assert!(!message.chars().any(char::is_control), "{message:?}");
        assert!(message.contains(r"env\u{1b}]0;owned\u{7}::\u{9b}2J"), "{message}");
    }

    #[test]
    fn the_module_is_named_once_whichever_error_it_is() {
        let module = Path::new("m.wasm");
        let names_it = Error::MissingExport {
            module: "m.wasm".into(),
            export: "_start".into(),
        };
        assert_eq!(describe_error(module, &names_it), "m.wasm does not export `_start`");
        let does_not = Error::MemoryOutOfBounds {
            offset: 8,
            len: 4,
            size: 0,
        };
        assert!(describe_error(module, &does_not).starts_with("m.wasm: guest memory"));
    }

    #[test]
    fn host_statuses_are_outside_the_guest_range_and_distinct() {
        let statuses = [USAGE, LOAD_ERROR, TRAP, TIMEOUT, OUT_OF_FUEL];
        for (i, a) in statuses.iter().enumerate() {
            assert!(statuses[i + 1..].iter().all(|b| a != b), "{a} is used twice");
        }
        assert!(statuses.iter().filter(|s| **s != USAGE).all(|s| *s > 125));
    }
}
