//! `wasm-host run`: one guest, the capabilities its flags grant, its own exit
//! code as ours. Output is streamed as the guest writes it.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use clap::Args;
use host::{RunOutcome, Sandbox, Termination};

use crate::grants::GrantArgs;
use crate::invoke::Failure;
use crate::limits::LimitArgs;
use crate::status;

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

/// Runs the guest and returns the exit status for wasm-host.
pub fn run(args: RunArgs) -> u8 {
    // Clap requires MODULE, so the list is never empty.
    let [module_path, guest_args @ ..] = args.module_and_args.as_slice() else {
        return status::USAGE;
    };
    let module_path = Path::new(module_path);
    let fail = |error: host::Error| {
        eprintln!("wasm-host: error: {}", status::describe_error(module_path, &error));
        status::LOAD_ERROR
    };
    let from_stdin = module_path == Path::new(STDIN);
    let mut limits = args.limits.limits();
    // Streamed output is out as the guest writes it, so the process itself
    // can end a guest that computes past its timeout (see `start_watchdog`),
    // and guests need no epoch checks. Captured output is written at the
    // end, so a --capture run is stopped by the library, through epochs.
    let watchdog = !args.capture;
    let runtime = match watchdog {
        true => args.limits.runtime_without_epochs(),
        false => args.limits.runtime(),
    };
    let loaded = runtime.and_then(|runtime| {
        if from_stdin {
            runtime.load_reader_for(STDIN_NAME, std::io::stdin().lock(), &limits)
        } else {
            runtime.load_file_for(module_path, &limits)
        }
    });
    let module = match loaded {
        Ok(module) => module,
        Err(error) => return fail(error),
    };
    if !args.capture && !args.limits.caps_output() {
        // Streamed output goes to the user's own terminal or pipe, not into
        // wasm-host's memory: all of it, unless --max-output says otherwise.
        limits.max_output_bytes = usize::MAX;
    }
    let timeout = limits.timeout;
    let mut sandbox = match args.grants.apply(Sandbox::new().limits(limits)) {
        Ok(sandbox) => sandbox.args(guest_args.iter().cloned()),
        Err(message) => {
            eprintln!("wasm-host: error: {message}");
            return status::USAGE;
        }
    };
    if !from_stdin {
        // This process ends with its guest: a read stalled in the kernel
        // would hold up its exit with a worker as without one.
        sandbox = sandbox.inherit_stdin_on_guest_thread();
    }
    if !args.capture {
        sandbox = sandbox.inherit_stdout().inherit_stderr();
    }
    // wasmtime-wasi runs its calls on the tokio runtime it finds entered:
    // one of a single worker here spares it starting its own (a worker per
    // core) for one guest, and its timer keeps the watchdog. Only WASI 0.2
    // and 0.3 (sockets, HTTP) use its I/O driver, whose epoll instance and
    // signal pipe a core module's run need not set up.
    let mut tokio = tokio::runtime::Builder::new_multi_thread();
    tokio.worker_threads(1).enable_time();
    if module.is_component() {
        tokio.enable_io();
    }
    let tokio = match tokio.build() {
        Ok(tokio) => tokio,
        Err(error) => {
            eprintln!("wasm-host: error: starting the runtime's worker thread: {error}");
            return status::LOAD_ERROR;
        }
    };
    let _entered = tokio.enter();
    if watchdog && let Some(timeout) = timeout {
        start_watchdog(&tokio, module.name().to_owned(), timeout);
    }
    if let Some(call) = &args.invoke {
        let status = match crate::invoke::invoke(&sandbox, &module, call, guest_args) {
            Ok(results) => {
                print!("{results}");
                0
            }
            Err(Failure::Usage(message)) => {
                eprintln!("wasm-host: error: {}", status::escape_controls(&message));
                status::USAGE
            }
            Err(Failure::Host(error)) => match &error {
                host::Error::Exit { code, .. } => {
                    eprintln!("wasm-host: {}", status::describe_error(module_path, &error));
                    u8::try_from(*code).unwrap_or(status::TRAP)
                }
                host::Error::Trap { trap, .. } => {
                    eprintln!("wasm-host: {}", status::describe_error(module_path, &error));
                    report_backtrace(trap, &args);
                    status::for_trap(trap)
                }
                _ => fail(error),
            },
        };
        exit(status);
    }
    let outcome = match sandbox.run(&module) {
        Ok(outcome) => outcome,
        Err(error) => return fail(error),
    };
    if args.capture {
        write_captured(&outcome);
    }
    report_truncation(module.name(), &outcome);
    exit(match &outcome.termination {
        Termination::Exited(code) => {
            // WASI's proc_exit only accepts 0..=125, so the code always fits.
            u8::try_from(*code).unwrap_or(status::TRAP)
        }
        Termination::Trapped(trap) => {
            eprintln!("wasm-host: {} {outcome}", module.name());
            report_backtrace(trap, &args);
            status::for_trap(trap)
        }
    })
}

/// Ends the process with `status` now, the guest's output all out (streamed
/// output is written through, captured output above, and `exit` flushes
/// what std holds): tearing down the engine, the module's code and the
/// runtime's threads would only cost time.
fn exit(status: u8) -> ! {
    std::process::exit(i32::from(status))
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
        // As `RunOutcome` words a timeout.
        eprintln!("wasm-host: {module} timed out after {timeout:?}");
        // Streamed output is already written; `exit` flushes what std holds.
        exit(status::TIMEOUT);
    });
}

/// Prints the wasm backtrace of a trap (not of a limit the host enforced)
/// under its message, unless --no-backtrace.
fn report_backtrace(trap: &host::Trap, args: &RunArgs) {
    if args.no_backtrace || status::for_trap(trap) != status::TRAP {
        return;
    }
    if let Some(backtrace) = status::backtrace(trap) {
        eprintln!("{backtrace}");
    }
}

/// Writes what a `--capture` run kept.
fn write_captured(outcome: &RunOutcome) {
    // A closed stdout or stderr is the reader's choice; nothing to report to.
    let _ = std::io::stdout().write_all(&outcome.stdout);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().write_all(&outcome.stderr);
}

/// Says which stream, captured or streamed, was cut at --max-output.
pub fn report_truncation(module: &str, outcome: &RunOutcome) {
    for (stream, truncated) in [
        ("stdout", outcome.stdout_truncated),
        ("stderr", outcome.stderr_truncated),
    ] {
        if truncated {
            eprintln!("wasm-host: {module}: {stream} was cut at the --max-output limit");
        }
    }
}

/// The MODULE that means "read the module from stdin".
const STDIN: &str = "-";
/// The name a module read from stdin goes by (messages, default argv[0]).
const STDIN_NAME: &str = "<stdin>";
