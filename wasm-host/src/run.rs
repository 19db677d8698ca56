//! `wasm-host run`: one guest, the capabilities its flags grant, its own exit
//! code as ours. Output is streamed as the guest writes it.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use host::{GuestModule, Limits, RunOutcome, Sandbox, Termination};

use crate::grants::GrantArgs;
use crate::invoke;
use crate::limits::{LimitArgs, Output, RuntimePlan};
use crate::status::{self, Failure};

// Described on `Command::Run` in main.rs.
#[derive(Args, Debug)]
#[command(
    override_usage = "wasm-host run [OPTIONS] <MODULE> [ARGS]...",
    after_help = status::RUN_STATUS_HELP
)]
pub struct RunArgs {
    #[command(flatten)]
    grants: GrantArgs,

    /// Collect stdout and stderr in memory, each capped by --max-output, and write them out when the guest ends, instead of streaming them
    #[arg(long)]
    capture: bool,

    /// Call this export instead of running the guest as a command, and print its results: for a component a WAVE call such as 'process("abc")' (`iface.func(...)` for a function of an exported interface), for a core module the export's name, its numeric arguments given as ARGS
    #[arg(long, value_name = "CALL")]
    invoke: Option<String>,

    #[command(flatten)]
    limits: LimitArgs,

    /// Print no wasm backtrace after a trap (the frames Wasmtime captured, named from the module's name section; WASMTIME_BACKTRACE_DETAILS=1 adds file and line from DWARF)
    #[arg(long)]
    no_backtrace: bool,

    /// The module to run (a WebAssembly binary or WAT text exporting `_start`, or a component exporting wasi:cli/run; `-` reads it from stdin, and the guest's stdin is then empty), then the guest's arguments: everything after MODULE goes to the guest, options included
    #[arg(value_name = "MODULE", required = true, num_args = 1.., trailing_var_arg = true)]
    module_and_args: Vec<String>,
}

impl RunArgs {
    /// Every decision the options make, taken once, before anything is loaded.
    pub fn plan(self) -> Result<Plan, Failure> {
        let Some((module, args)) = self.module_and_args.split_first() else {
            return Err(Failure::Usage("no MODULE given".to_owned()));
        };
        // Streamed output is out as the guest writes it, so the process
        // itself can end a guest that computes past its timeout (see
        // `start_watchdog`), and guests need no epoch checks. Captured
        // output is written at the end, so a --capture run is stopped by
        // the library, through epochs.
        let (output, runtime) = match self.capture {
            true => (Output::Captured, self.limits.runtime()),
            false => (Output::Streamed, self.limits.runtime_without_epochs()),
        };
        let limits = self.limits.limits(output);
        let source = match module.as_str() {
            STDIN => Source::Stdin,
            _ => Source::File,
        };
        Ok(Plan {
            module: PathBuf::from(module),
            args: args.to_vec(),
            source,
            watchdog: limits.timeout.filter(|_| output == Output::Streamed),
            limits,
            runtime,
            output,
            grants: self.grants,
            invoke: self.invoke,
            backtrace: !self.no_backtrace,
        })
    }
}

/// What `run` does, decided from its options.
pub struct Plan {
    /// MODULE as given (`-` for stdin), as messages name it.
    module: PathBuf,
    /// The guest's arguments after MODULE.
    args: Vec<String>,
    /// Where the module comes from, which decides the guest's stdin.
    source: Source,
    grants: GrantArgs,
    limits: Limits,
    runtime: RuntimePlan,
    output: Output,
    /// When the process ends the guest itself (streamed output): its timeout.
    watchdog: Option<Duration>,
    invoke: Option<String>,
    /// Print a trap's wasm backtrace (not --no-backtrace).
    backtrace: bool,
}

/// Where the module is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A file: the guest reads wasm-host's stdin, on its own thread.
    File,
    /// wasm-host's stdin (MODULE `-`): the guest's stdin is then empty.
    Stdin,
}

impl Plan {
    /// Runs the guest, or calls its export, and returns the status: the
    /// guest's own exit code, or why it ended otherwise.
    pub fn execute(self) -> Result<u8, Failure> {
        let load = Failure::load(&self.module);
        let runtime = self.runtime.build().map_err(&load)?;
        let module = match self.source {
            Source::Stdin => runtime.load_reader_for(STDIN_NAME, std::io::stdin().lock(), &self.limits),
            Source::File => runtime.load_file_for(&self.module, &self.limits),
        }
        .map_err(&load)?;
        let mut sandbox = self.grants.sandbox(&self.limits)?.args(self.args.iter().cloned());
        if self.source == Source::File {
            // This process ends with its guest: a read stalled in the kernel
            // would hold up its exit with a worker as without one.
            sandbox = sandbox.inherit_stdin_on_guest_thread();
        }
        if self.output == Output::Streamed {
            sandbox = sandbox.inherit_stdout().inherit_stderr();
        }
        let tokio = worker(&module)
            .context("starting the runtime's worker thread")
            .map_err(Failure::Setup)?;
        let ended = {
            let _entered = tokio.enter();
            if let Some(timeout) = self.watchdog {
                start_watchdog(&tokio, module.name().to_owned(), timeout);
            }
            match &self.invoke {
                Some(call) => self.invoke(&sandbox, &module, call),
                None => self.run(sandbox, &module),
            }
        };
        // The process ends as soon as `main` has said how the guest ended,
        // its output all out (streamed output is written through, captured
        // output by `run`, and the exit flushes what std holds): tearing
        // down the tokio runtime's thread, the engine and the module's code
        // would only cost time, and dropping the tokio runtime would wait
        // for any blocking task wasmtime-wasi left in it (a read that
        // never ends, of a guest stopped at its timeout).
        std::mem::forget((tokio, runtime, module));
        ended
    }

    fn run(&self, sandbox: Sandbox, module: &GuestModule) -> Result<u8, Failure> {
        let outcome = sandbox.run(module).map_err(Failure::load(&self.module))?;
        if self.output == Output::Captured {
            write_captured(&outcome);
        }
        status::report_truncation(module.name(), &outcome);
        match &outcome.termination {
            // WASI's proc_exit only accepts 0..=125, so the code always fits.
            Termination::Exited(code) => Ok(u8::try_from(*code).unwrap_or(status::TRAP)),
            Termination::Trapped(trap) => Err(Failure::trapped(module.name(), &outcome, trap, self.backtrace)),
        }
    }

    fn invoke(&self, sandbox: &Sandbox, module: &GuestModule, call: &str) -> Result<u8, Failure> {
        match invoke::invoke(sandbox, module, call, &self.args) {
            Ok(results) => {
                print!("{results}");
                Ok(0)
            }
            Err(invoke::InvokeError::Usage(message)) => Err(Failure::Usage(message)),
            Err(invoke::InvokeError::Host(error)) => Err(match &error {
                host::Error::Exit { code, .. } => Failure::Exited {
                    message: status::describe_error(&self.module, &error),
                    code: *code,
                },
                host::Error::Trap { trap, .. } => Failure::Trapped {
                    message: status::describe_error(&self.module, &error),
                    trap: trap.clone(),
                    backtrace: self.backtrace,
                },
                _ => Failure::load(&self.module)(error),
            }),
        }
    }
}

/// A tokio runtime of one worker: wasmtime-wasi runs its calls on the one
/// it finds entered, and this one spares it starting its own (a worker per
/// core) for one guest; its timer keeps the watchdog. Only WASI 0.2 and
/// 0.3 (sockets, HTTP) use its I/O driver, whose epoll instance and signal
/// pipe a core module's run need not set up.
fn worker(module: &GuestModule) -> std::io::Result<tokio::runtime::Runtime> {
    let mut tokio = tokio::runtime::Builder::new_multi_thread();
    tokio.worker_threads(1).enable_time();
    if module.is_component() {
        tokio.enable_io();
    }
    tokio.build()
}

/// Ends the process as a timeout (the same message and status as the
/// library's) if the guest still runs `timeout` (and a grace) from now: its
/// engine compiles no epoch checks, which slow a tight loop
/// (docs/performance.md), so nothing else could stop a guest that only computes. A guest
/// waiting in a host call is ended by the library at the deadline itself,
/// before this fires. It waits on `tokio`'s worker, not the guest's thread.
fn start_watchdog(tokio: &tokio::runtime::Runtime, module: String, timeout: Duration) {
    const GRACE: Duration = Duration::from_millis(100);
    tokio.spawn(async move {
        tokio::time::sleep(timeout.saturating_add(GRACE)).await;
        // From this thread, since the guest's may never return: the one
        // place besides `main` that reports a failure. Streamed output is
        // already written; `exit` flushes what std holds.
        let status = status::report(Err(Failure::TimedOut { module, timeout }));
        std::process::exit(i32::from(status))
    });
}

/// Writes what a `--capture` run kept.
fn write_captured(outcome: &RunOutcome) {
    // A closed stdout or stderr is the reader's choice; nothing to report to.
    let _ = std::io::stdout().write_all(&outcome.stdout);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().write_all(&outcome.stderr);
}

/// The MODULE that means "read the module from stdin".
const STDIN: &str = "-";
/// The name a module read from stdin goes by (messages, default argv[0]).
const STDIN_NAME: &str = "<stdin>";
