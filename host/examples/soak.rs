//! Soak test: runs one guest many times in one process and prints resident
//! memory (VmRSS) at the start, at run 10,000 and at the end, and runs per
//! second. `cargo xtask soak` builds it in release and runs it on
//! `csv_processor`; it fails when memory grew 10% or more from run 10,000
//! to the end, the sign of a per-run leak.
//!
//! Usage: soak GUEST.wasm [RUNS]   (RUNS defaults to 100,000)

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use host::{Runtime, Sandbox};

/// Where the growth is measured from: by then every allocator and cache
/// has reached its steady state.
const BASELINE_RUN: u64 = 10_000;
/// Growth from the baseline to the end that counts as a leak.
const MAX_GROWTH_PERCENT: f64 = 10.0;

fn main() -> ExitCode {
    match soak() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn soak() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().context("usage: soak GUEST.wasm [RUNS]")?;
    let runs: u64 = match args.next() {
        Some(runs) => runs
            .parse()
            .with_context(|| format!("RUNS must be a number, got `{runs}`"))?,
        None => 100_000,
    };
    ensure!(runs >= BASELINE_RUN, "RUNS must be at least {BASELINE_RUN}");
    let module = Runtime::shared().load_file(&path)?;
    let sandbox = Sandbox::new().stdin("1,2,3\n4,5,6\n");

    println!("soak: {path}, {runs} runs");
    let start_rss = rss_kib()?;
    println!("run      0: VmRSS {start_rss} KiB");
    let started = Instant::now();
    let mut baseline_rss = start_rss;
    for run in 1..=runs {
        let outcome = sandbox.run(&module)?;
        if !outcome.success() || outcome.stdout != b"21\n" {
            bail!(
                "run {run} went wrong: {:?}, stdout {:?}",
                outcome.termination,
                outcome.stdout_text()
            );
        }
        if run == BASELINE_RUN {
            baseline_rss = rss_kib()?;
            println!("run {run:>6}: VmRSS {baseline_rss} KiB");
        }
    }
    let elapsed = started.elapsed();
    let end_rss = rss_kib()?;
    let growth = (end_rss as f64 - baseline_rss as f64) * 100.0 / baseline_rss as f64;
    println!("run {runs:>6}: VmRSS {end_rss} KiB");
    println!(
        "{:.0} runs/s ({runs} runs in {:.1} s); VmRSS growth from run {BASELINE_RUN} to run {runs}: {growth:+.2}%",
        runs as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    ensure!(
        growth < MAX_GROWTH_PERCENT,
        "resident memory grew {growth:.2}% after run {BASELINE_RUN}: a leak"
    );
    Ok(())
}

/// This process's resident set size, from /proc/self/status.
fn rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .context("no VmRSS line in /proc/self/status")?;
    line.split_whitespace()
        .nth(1)
        .and_then(|kib| kib.parse().ok())
        .with_context(|| format!("unreadable VmRSS line: {line}"))
}
