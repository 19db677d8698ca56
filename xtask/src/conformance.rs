//! `cargo xtask conformance`: the command-line runner end to end. Builds
//! `wasm-host` and the project's conformance suite, runs the suite in
//! process and once more through the legacy adapter (a process per test),
//! then runs the adapters' Python tests. Part of `cargo xtask test`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cmd::run;

pub const SUBCOMMAND: crate::Subcommand = crate::Subcommand {
    name: "conformance",
    summary: "Build wasm-host and the conformance suite, run it in process and through the adapters",
    help: "\
Usage: cargo xtask conformance [--partition KIND:K/N]

1. builds the wasm-host binary (cargo build -p wasm-host)
2. builds the suites of tests/conformance/ into target/conformance/
3. wasm-host conformance on them, with tests/conformance/expectations.toml,
   writing target/conformance/report.json and target/conformance/junit.xml
4. the same suites through tests/wasi-testsuite/adapter.py, a process per test
5. the Python tests of both adapters (python3 -m unittest, in tests/wasi-testsuite;
   $WASM_HOST_HTTP_COMPONENT names guests/http_component built, for serving)
$PYTHON overrides the python3 used. Exits non-zero if any step fails.
`cargo xtask test` runs these steps after the Rust tests.
With --partition (hash:K/N or count:K/N, as cargo-nextest names them), only
steps 1 to 3, on that partition of the tests: N jobs together run them all
(the CI workflow's conformance-partitions job; merge their report.json files
with tests/wasi-testsuite/merge-reports.jq).
",
    run: run_conformance,
};

fn run_conformance(args: &[String]) -> Result<()> {
    match args {
        [] => run_all(),
        [flag, partition] if flag == "--partition" => run_partition(partition),
        _ => bail!("usage: cargo xtask conformance [--partition KIND:K/N]"),
    }
}

/// Steps 1 to 3 for one partition of the suites (`hash:K/N` or `count:K/N`),
/// as one job of a CI matrix runs them.
fn run_partition(partition: &str) -> Result<()> {
    let wasm_host = build_wasm_host()?;
    let build_dir = xtask::suite::build_dir();
    let suites = xtask::suite::build_into(&build_dir)?;
    let expectations = xtask::suite::source_dir().join("expectations.toml");
    let mut command = in_process(&wasm_host, &suites, &expectations, &build_dir.join("report.json"));
    run(command.args(["--partition", partition]))
}

/// `wasm-host conformance` on `suites` with an expectation file, writing its
/// JSON report to `json` and its JUnit report beside it (`junit.xml`).
pub fn in_process(wasm_host: &Path, suites: &[PathBuf], expectations: &Path, json: &Path) -> Command {
    let mut command = Command::new(wasm_host);
    command
        .arg("conformance")
        .args(suites)
        .arg("--expectations")
        .arg(expectations)
        .arg("--json-report")
        .arg(json)
        .arg("--junit")
        .arg(json.with_file_name("junit.xml"));
    command
}

/// Every step above, stopping at the first failure.
pub fn run_all() -> Result<()> {
    let wasm_host = build_wasm_host()?;
    let build_dir = xtask::suite::build_dir();
    let suites = xtask::suite::build_into(&build_dir)?;
    let adapters = xtask::project_root().join("tests").join("wasi-testsuite");
    let expectations = xtask::suite::source_dir().join("expectations.toml");

    run(in_process(
        &wasm_host,
        &suites,
        &expectations,
        &build_dir.join("report.json"),
    ))?;
    run(Command::new(&wasm_host)
        .arg("conformance")
        .arg("--adapter")
        .arg(adapters.join("adapter.py"))
        .args(&suites)
        .arg("--expectations")
        .arg(&expectations)
        .env("WASM_HOST", &wasm_host))?;
    run(Command::new(python())
        .args(["-m", "unittest", "discover", "--start-directory"])
        .arg(&adapters)
        .args(["--pattern", "test_*.py"])
        .current_dir(&adapters)
        .env("WASM_HOST", &wasm_host)
        .env("WASM_HOST_HTTP_COMPONENT", xtask::guests::component("http_component")?)
        // Keep __pycache__ out of the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1"))
}

/// Builds `wasm-host` (debug, like the tests) and returns its path.
pub fn build_wasm_host() -> Result<PathBuf> {
    eprintln!("$ cargo build -p wasm-host --bin wasm-host");
    let built = escargot::CargoBuild::new()
        .manifest_path(xtask::project_root().join("Cargo.toml"))
        .package("wasm-host")
        .bin("wasm-host")
        .run()
        .context("building wasm-host")?;
    let path = built.path();
    if !Path::new(path).is_file() {
        bail!("cargo reported {} but it is not there", path.display());
    }
    Ok(path.to_owned())
}

fn python() -> OsString {
    std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into())
}
