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
    // The widest name and two spaces: no summary runs into its name.
    let width = SUBCOMMANDS.iter().map(|s| s.name.len()).max().unwrap_or(0) + 2;
    for subcommand in SUBCOMMANDS {
        text.push_str(&format!("  {:<width$}{}\n", subcommand.name, subcommand.summary));
    }
    text.push_str("\nRun `cargo xtask <SUBCOMMAND> --help` for a subcommand's options.\n");
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_summary_stands_apart_from_its_name() {
        let usage = super::usage();
        for subcommand in super::SUBCOMMANDS {
            let line = usage
                .lines()
                .find(|line| line.trim_start().starts_with(subcommand.name))
                .expect("every subcommand is listed");
            let gap = &line[line.find(subcommand.name).unwrap() + subcommand.name.len()..];
            assert!(gap.starts_with("  "), "{line:?}");
            assert_eq!(gap.trim_start(), subcommand.summary);
        }
    }
}
