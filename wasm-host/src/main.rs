//! `wasm-host`: run a WebAssembly module or component with exactly the
//! capabilities granted on the command line, serve HTTP with a component,
//! or run whole suites of them in the WASI test suite's format.
//!
//! A front end: the `host` library loads, sandboxes and runs every guest
//! and classifies how it ended, the `wasm-host-conformance` library runs
//! suites. Each subcommand is parsed (clap), then planned (`plan`: every
//! decision its options make, taken once), then executed (`execute`),
//! which returns a status or a `status::Failure`; `main` alone turns that
//! into the message and the exit status.

#[cfg(test)]
mod cli_docs;
mod completions;
mod conformance;
mod grants;
mod invoke;
mod limits;
mod run;
mod serve;
mod status;
mod test_runner;
mod wasmtime_options;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Run WebAssembly modules (WASI preview 1) and components (WASI 0.2 and 0.3) with exactly the capabilities you grant.
#[derive(Parser)]
#[command(name = "wasm-host", version, after_help = format!(
    "{}\n\n`wasm-host conformance --help` describes the suite format and its own statuses.",
    status::RUN_STATUS_HELP
))]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Each subcommand's options are built only when it is the one asked for
/// (`defer`): building every option of every subcommand made a small
/// guest's whole `wasm-host run` measurably slower (docs/performance.md).
/// So each subcommand's description is here, where it is set before its
/// options are built.
#[derive(Subcommand)]
#[command(defer = true)]
enum Command {
    /// Run a WASI command, a core module (.wasm or .wat) or a component, with exactly the capabilities granted.
    ///
    /// The guest gets no environment variables, no directories and no arguments
    /// beyond its program name (argv[0], MODULE's file name) unless granted
    /// below. It reads wasm-host's stdin, and its stdout and stderr are streamed
    /// to wasm-host's own as it writes them.
    Run(run::RunArgs),
    /// Serve HTTP with a component exporting wasi:http/handler (WASI 0.3) or wasi:http/incoming-handler (WASI 0.2), as `wasmtime serve` does.
    ///
    /// Each request runs in a fresh instance with exactly the capabilities
    /// granted, and --timeout, --fuel and --max-memory hold per request; a
    /// request the guest does not answer gets status 500 and a line on stderr.
    /// The first line on stderr is `Serving HTTP on http://ADDR/`. SIGINT or
    /// SIGTERM stops accepting, lets requests in flight finish, and exits with
    /// status 0; 126 if the component cannot be served.
    Serve(serve::ServeArgs),
    /// Run test suites in the WASI test suite's format, in this process.
    Conformance(conformance::ConformanceArgs),
    /// Run a test binary as cargo's runner (`runner = "wasm-host test"`): each libtest test alone in a fresh instance, many at once, reported as libtest reports them.
    Test(test_runner::TestArgs),
    /// Print a completion script for SHELL, e.g. `wasm-host completions bash > ~/.local/share/bash-completion/completions/wasm-host`
    Completions {
        /// The shell to complete in
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    // Usage errors exit with status 2 and `--help`/`--version` with 0, as clap does.
    let ended = match Cli::parse().command {
        Command::Run(args) => args.plan().and_then(run::Plan::execute),
        Command::Serve(args) => args.plan().execute(),
        Command::Conformance(args) => args.plan().and_then(conformance::Plan::execute),
        Command::Test(args) => args.plan().and_then(test_runner::Plan::execute),
        Command::Completions { shell } => {
            completions::print(shell, &mut Cli::command());
            Ok(0)
        }
    };
    ExitCode::from(status::report(ended))
}
