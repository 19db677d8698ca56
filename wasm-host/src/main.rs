//! `wasm-host`: run a WebAssembly module or component with exactly the
//! capabilities granted on the command line, serve HTTP with a component,
//! or run whole suites of them in the WASI test suite's format.
//!
//! This is a thin front end: the `host` library loads, sandboxes and runs
//! every guest and classifies how it ended; this binary turns command-line
//! flags into a `Sandbox` and the outcome into an exit status.

mod conformance;
mod grants;
mod invoke;
mod limits;
mod run;
mod serve;
mod status;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Run WebAssembly (WASI preview 1) modules with exactly the capabilities you grant.
#[derive(Parser)]
#[command(name = "wasm-host", version, after_help = format!(
    "{}\n\n`wasm-host conformance --help` describes the suite format and its own statuses.",
    status::RUN_STATUS_HELP
))]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Run(run::RunArgs),
    Serve(serve::ServeArgs),
    Conformance(conformance::ConformanceArgs),
    /// Print a completion script for SHELL, e.g. `wasm-host completions bash > ~/.local/share/bash-completion/completions/wasm-host`
    Completions {
        /// The shell to complete in
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    // Usage errors exit with status 2 and `--help`/`--version` with 0, as clap does.
    let status = match Cli::parse().command {
        Command::Run(args) => run::run(args),
        Command::Serve(args) => serve::serve(args),
        Command::Conformance(args) => conformance::run(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "wasm-host", &mut std::io::stdout());
            0
        }
    };
    ExitCode::from(status)
}
