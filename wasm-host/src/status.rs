//! Exit statuses and the one-line messages `wasm-host` prints on stderr:
//! every command returns its status or a [`Failure`], and [`report`] alone
//! turns a failure into its message and status.
//!
//! A WASI guest can only exit with 0 to 125 (`proc_exit` refuses anything
//! larger), so every status the host itself chooses lies above 125 and can
//! never be mistaken for the guest's own; 2 is clap's usage error, reported
//! before any guest runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use host::{CompileLimit, Error, RunOutcome, Trap, TrapKind};

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

/// Why a command did not end as it meant to, each said and given its
/// status by [`report`].
#[derive(Debug)]
pub enum Failure {
    /// The command line asks for what cannot be done (status 2): a
    /// variable granted by name that wasm-host does not have, an `--invoke`
    /// call that does not fit its export, a `-W` key `--adapter` cannot honour.
    Usage(String),
    /// The library could not load, start or run `module` (the path as
    /// given) (126).
    Load { module: PathBuf, error: Error },
    /// Anything else that kept the command from running (126): the
    /// runtime's thread, the signals, the listening socket, a suite, a report.
    Setup(anyhow::Error),
    /// The guest trapped or passed a limit the host enforces (134, 142 or
    /// 152): `message` says which, the wasm backtrace follows a trap when
    /// `backtrace` is set.
    Trapped {
        message: String,
        trap: Trap,
        backtrace: bool,
    },
    /// `--invoke`'s call ended in `proc_exit`: its code is the status.
    Exited { message: String, code: i32 },
    /// `run`'s watchdog found the guest computing past its timeout (142).
    TimedOut { module: String, timeout: Duration },
}

impl Failure {
    /// A library error loading or running `module` (the path as given).
    pub fn load(module: &Path) -> impl Fn(Error) -> Failure + '_ {
        |error| Failure::Load {
            module: module.to_owned(),
            error,
        }
    }

    /// A run that ended in a trap, worded as the outcome words it.
    pub fn trapped(module: &str, outcome: &RunOutcome, trap: &Trap, backtrace: bool) -> Failure {
        Failure::Trapped {
            message: format!("{module} {outcome}"),
            trap: trap.clone(),
            backtrace,
        }
    }

    pub fn status(&self) -> u8 {
        match self {
            Failure::Usage(_) => USAGE,
            Failure::Load { .. } | Failure::Setup(_) => LOAD_ERROR,
            Failure::Trapped { trap, .. } => for_trap(trap),
            // WASI's proc_exit only accepts 0..=125, so the code always fits.
            Failure::Exited { code, .. } => u8::try_from(*code).unwrap_or(TRAP),
            Failure::TimedOut { .. } => TIMEOUT,
        }
    }

    /// What wasm-host says on stderr, one line (a trap's backtrace and a
    /// WAT error's source lines after it).
    pub fn message(&self) -> String {
        match self {
            Failure::Usage(message) => format!("wasm-host: error: {}", escape_controls(message)),
            Failure::Load { module, error } => format!("wasm-host: error: {}", describe_error(module, error)),
            Failure::Setup(error) => format!("wasm-host: error: {}", escape_controls(&format!("{error:#}"))),
            Failure::Trapped {
                message,
                trap,
                backtrace,
            } => {
                // The frames of a trap, not of a limit the host enforced.
                let frames = (*backtrace && for_trap(trap) == TRAP)
                    .then(|| self::backtrace(trap))
                    .flatten();
                std::iter::once(format!("wasm-host: {message}"))
                    .chain(frames)
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            Failure::Exited { message, .. } => format!("wasm-host: {message}"),
            // As `RunOutcome` words a timeout.
            Failure::TimedOut { module, timeout } => format!("wasm-host: {module} timed out after {timeout:?}"),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Setup(error)
    }
}

/// The exit status of a command that `ended` so, its failure said on stderr.
pub fn report(ended: Result<u8, Failure>) -> u8 {
    match ended {
        Ok(status) => status,
        Err(failure) => {
            // Not eprintln!: with stderr closed there is nowhere left to say it.
            let _ = writeln!(std::io::stderr().lock(), "{}", failure.message());
            failure.status()
        }
    }
}

/// Says which stream, captured or streamed, was cut at --max-output (a
/// notice: the guest is not failed for it).
pub fn report_truncation(module: &str, outcome: &RunOutcome) {
    for note in truncation_notes(module, outcome) {
        eprintln!("{note}");
    }
}

/// A line for each stream of `outcome` cut at --max-output, `subject` (a
/// module, a test) escaped.
pub fn truncation_notes(subject: &str, outcome: &RunOutcome) -> Vec<String> {
    [
        ("stdout", outcome.stdout_truncated),
        ("stderr", outcome.stderr_truncated),
    ]
    .into_iter()
    .filter(|(_, truncated)| *truncated)
    .map(|(stream, _)| {
        escape_controls(&format!(
            "wasm-host: {subject}: {stream} was cut at the --max-output limit"
        ))
    })
    .collect()
}

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
    fn each_failure_is_said_in_one_line_with_its_status() {
        let said = |failure: Failure| (failure.message(), failure.status());
        assert_eq!(
            said(Failure::TimedOut {
                module: "m.wasm".into(),
                timeout: std::time::Duration::from_secs(1),
            }),
            ("wasm-host: m.wasm timed out after 1s".into(), TIMEOUT)
        );
        assert_eq!(
            said(Failure::Usage("--env X: X is not set".into())),
            ("wasm-host: error: --env X: X is not set".into(), USAGE)
        );
        assert_eq!(
            said(Failure::Setup(
                anyhow::anyhow!("refused").context("cannot listen on 1.2.3.4:5")
            )),
            (
                "wasm-host: error: cannot listen on 1.2.3.4:5: refused".into(),
                LOAD_ERROR
            )
        );
        assert_eq!(
            said(Failure::Exited {
                message: "m.wasm exited with 7".into(),
                code: 7,
            }),
            ("wasm-host: m.wasm exited with 7".into(), 7)
        );
        let load = Failure::Load {
            module: "m.wasm".into(),
            error: Error::MissingExport {
                module: "m.wasm".into(),
                export: "_start".into(),
            },
        };
        assert_eq!(
            said(load),
            ("wasm-host: error: m.wasm does not export `_start`".into(), LOAD_ERROR)
        );
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
