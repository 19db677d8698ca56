//! `cargo xtask`: the project's automation. Run `cargo xtask --help`.

mod bench;
mod build_guests;
mod ci;
mod cmd;
mod conformance;
mod fuzz;
mod soak;
mod test;
mod wasi_testsuite;

use std::process::ExitCode;

/// Each subcommand: its name, a one-line summary, its full help, and what runs it.
struct Subcommand {
    name: &'static str,
    summary: &'static str,
    help: &'static str,
    run: fn(&[String]) -> anyhow::Result<()>,
}

const SUBCOMMANDS: &[Subcommand] = &[
    build_guests::SUBCOMMAND,
    test::SUBCOMMAND,
    ci::SUBCOMMAND,
    conformance::SUBCOMMAND,
    wasi_testsuite::SUBCOMMAND,
    bench::SUBCOMMAND,
    fuzz::SUBCOMMAND,
    soak::SUBCOMMAND,
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((name, rest)) = args.split_first() else {
        eprint!("{}", usage());
        return ExitCode::from(2);
    };
    if matches!(name.as_str(), "-h" | "--help" | "help") {
        print!("{}", usage());
        return ExitCode::SUCCESS;
    }
    let Some(subcommand) = SUBCOMMANDS.iter().find(|s| s.name == name) else {
        eprint!("error: unknown subcommand `{name}`\n\n{}", usage());
        return ExitCode::from(2);
    };
    if rest.first().is_some_and(|a| a == "-h" || a == "--help") {
        print!("{}", subcommand.help);
        return ExitCode::SUCCESS;
    }
    match (subcommand.run)(rest) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> String {
    let mut text = String::from("Usage: cargo xtask <SUBCOMMAND> [ARGS...]\n\nSubcommands:\n");
    for subcommand in SUBCOMMANDS {
        text.push_str(&format!("  {:<14}{}\n", subcommand.name, subcommand.summary));
    }
    text.push_str("\nRun `cargo xtask <SUBCOMMAND> --help` for a subcommand's options.\n");
    text
}
