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
         module, past a compile limit, no `_start`, an import this host does
         not provide, a directory that cannot be granted)
  134    the guest trapped
  142    the guest was stopped by --timeout
  152    the guest ran out of --fuel
Whenever wasm-host itself ends the run, it says why in one line on stderr.";

/// The status for a guest that ended with `trap`.
pub fn for_trap(trap: &Trap) -> u8 {
    match trap.kind {
        TrapKind::Timeout => TIMEOUT,
        TrapKind::OutOfFuel => OUT_OF_FUEL,
        _ => TRAP,
    }
}

/// Describes a library error in one line that names the module. Names
/// that come from the module (imports, exports) are escaped.
pub fn describe_error(module: &Path, error: &Error) -> String {
    let text = one_line(&error.to_string());
    let text = match error {
        Error::CompileLimit { limit, .. } => format!("{text} (raise it with {})", compile_flag(*limit)),
        Error::ModuleTooLarge { .. } => format!("{text} (raise it with {})", compile_flag(CompileLimit::ModuleBytes)),
        _ if error.module().is_some() => text,
        _ => format!("{}: {text}", module.display()),
    };
    escape_controls(&text)
}

/// `text` with every control character written as an escape (`\u{1b}`), so
/// that names from a module or a suite, and a guest's output, cannot move
/// the cursor or change the colours of the terminal wasm-host prints to.
pub fn escape_controls(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect()
}

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

/// Folds a multi-line compiler message into one line, dropping the source
/// excerpt a WAT parse error carries under its `--> file:line:col` line.
pub fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with('|'))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wat_parse_error_keeps_its_message_and_location_only() {
        let message = "expected `(`\n     --> <anon>:1:1\n      |\n    1 | hello\n      | ^";
        assert_eq!(one_line(message), "expected `(` --> <anon>:1:1");
        assert_eq!(one_line("already one line"), "already one line");
    }

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
