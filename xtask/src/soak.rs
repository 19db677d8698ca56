//! `cargo xtask soak`: one guest run 100,000 times in one process, to show
//! that resident memory stays flat (no per-run leak).

use anyhow::{Context, Result, bail};

use crate::cmd::{cargo, run};

pub const SUBCOMMAND: crate::Subcommand = crate::Subcommand {
    name: "soak",
    summary: "Run csv_processor 100,000 times in one process; print resident memory and runs/s",
    help: "\
Usage: cargo xtask soak [--runs N]

Builds the guests and the host's `soak` example (release), then runs
csv_processor N times (default 100,000, at least 10,000) through one
`Sandbox` in one process. Prints VmRSS (from /proc/self/status) at the
start, at run 10,000 and at the end, and the runs per second. Fails if
resident memory grew 10% or more from run 10,000 to the end.
",
    run: run_soak,
};

fn run_soak(args: &[String]) -> Result<()> {
    let runs = match args {
        [] => 100_000,
        [flag, n] if flag == "--runs" => n
            .parse::<u64>()
            .with_context(|| format!("--runs takes a number, got `{n}`"))?,
        _ => bail!("usage: cargo xtask soak [--runs N]"),
    };
    let guest = xtask::guests::artifact("csv_processor")?;
    run(
        cargo(["run", "--release", "--quiet", "-p", "host", "--example", "soak", "--"])
            .arg(guest)
            .arg(runs.to_string()),
    )
}
