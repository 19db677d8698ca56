//! `cargo xtask wasi-testsuite PATH`: the official WASI test suite, from a
//! checkout the user has, run in process by `wasm-host conformance` and,
//! when Python 3.12 or newer is there, by the suite's own `run-tests` with
//! our `wasm_host.py`; both with the project's expectation file, and their
//! verdicts compared test by test.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::cmd::run;

pub const SUBCOMMAND: crate::Subcommand = crate::Subcommand {
    name: "wasi-testsuite",
    summary: "Run the official WASI test suite (a checkout you have) in process and under its own runner",
    help: "\
Usage: cargo xtask wasi-testsuite PATH

PATH is a checkout of WebAssembly/wasi-testsuite (branch prod/testsuite-base,
the prebuilt suite). Never committed here.
1. builds wasm-host (cargo build -p wasm-host)
2. wasm-host conformance on every PATH/tests/*/testsuite/wasm32-* folder,
   with tests/wasi-testsuite/expectations.toml, writing
   target/wasi-testsuite/in-process.json and junit.xml
3. when $PYTHON (default python3) is 3.12 or newer: PATH/run-tests with
   tests/wasi-testsuite/wasm_host.py and the same expectations, writing
   target/wasi-testsuite/reference.json (the runner's requirements must be
   installed: python3 -m pip install -r PATH/test-runner/requirements.txt);
   then the two verdicts of every test are compared
Exits non-zero if a test fails, or if the two runners disagree.
",
    run: run_wasi_testsuite,
};

fn run_wasi_testsuite(args: &[String]) -> Result<()> {
    let [path] = args else {
        bail!("usage: cargo xtask wasi-testsuite PATH (a checkout of WebAssembly/wasi-testsuite)");
    };
    let checkout = std::path::absolute(path).with_context(|| format!("locating {path}"))?;
    let suites = suite_dirs(&checkout)?;
    let wasm_host = crate::conformance::build_wasm_host()?;
    let out = xtask::target_dir().join("wasi-testsuite");
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let in_process = out.join("in-process.json");
    run(crate::conformance::in_process(
        &wasm_host,
        &suites,
        &expectations(),
        &in_process,
    ))?;

    let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    if !is_python_312(&python) {
        eprintln!(
            "{} is not Python 3.12 or newer: the reference runner is not run (set $PYTHON)",
            python.to_string_lossy()
        );
        return Ok(());
    }
    let reference = out.join("reference.json");
    run(reference_command(&python, &checkout, &wasm_host, &reference))?;
    compare(&read_outcomes(&in_process)?, &read_outcomes(&reference)?)
}

/// The project's expectation file for the official suite.
pub fn expectations() -> PathBuf {
    xtask::project_root()
        .join("tests")
        .join("wasi-testsuite")
        .join("expectations.toml")
}

/// `PATH/run-tests` with our module adapter, from the checkout (as its
/// README runs it), with $WASM_HOST naming the binary.
pub fn reference_command(python: &OsString, checkout: &Path, wasm_host: &Path, json: &Path) -> Command {
    let adapter = xtask::project_root()
        .join("tests")
        .join("wasi-testsuite")
        .join("wasm_host.py");
    let mut command = Command::new(python);
    command
        .arg(checkout.join("run-tests"))
        .arg("--runtime-adapter")
        .arg(adapter)
        .arg("--expectations")
        .arg(expectations())
        .arg("--json-output-location")
        .arg(json)
        .arg("--disable-colors")
        .current_dir(checkout)
        .env("WASM_HOST", wasm_host)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    command
}

/// Every `tests/*/testsuite/wasm32-*` folder of the checkout that holds tests.
pub fn suite_dirs(checkout: &Path) -> Result<Vec<PathBuf>> {
    let tests = checkout.join("tests");
    let mut suites = Vec::new();
    for language in sorted_dirs(&tests)? {
        let testsuite = language.join("testsuite");
        if !testsuite.is_dir() {
            continue;
        }
        for suite in sorted_dirs(&testsuite)? {
            let named = suite
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("wasm32-"));
            let has_tests =
                fs::read_dir(&suite)?.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "wasm")));
            if named && has_tests {
                suites.push(suite);
            }
        }
    }
    if suites.is_empty() {
        bail!(
            "no tests/*/testsuite/wasm32-*/ folder with *.wasm under {}: is it a checkout of \
             WebAssembly/wasi-testsuite's prod/testsuite-base branch?",
            checkout.display()
        );
    }
    Ok(suites)
}

fn sorted_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Whether `python` runs and is 3.12 or newer (the reference runner needs it).
pub fn is_python_312(python: &OsString) -> bool {
    Command::new(python)
        .args(["-c", "import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `(suite, test) -> outcome` from a JSON report in the reference runner's shape.
fn read_outcomes(path: &Path) -> Result<BTreeMap<(String, String), String>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let report: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut outcomes = BTreeMap::new();
    for suite in report["results"].as_array().into_iter().flatten() {
        let name = suite["name"].as_str().unwrap_or_default();
        for test in suite["tests"].as_array().into_iter().flatten() {
            let key = (name.to_owned(), test["name"].as_str().unwrap_or_default().to_owned());
            outcomes.insert(key, test["outcome"].as_str().unwrap_or_default().to_owned());
        }
    }
    Ok(outcomes)
}

fn compare(ours: &BTreeMap<(String, String), String>, reference: &BTreeMap<(String, String), String>) -> Result<()> {
    let mut differences = Vec::new();
    for key in ours.keys().chain(reference.keys()) {
        let (a, b) = (ours.get(key), reference.get(key));
        if a != b && !differences.iter().any(|(k, _, _)| k == key) {
            differences.push((key.clone(), a, b));
        }
    }
    for ((suite, test), a, b) in &differences {
        eprintln!(
            "{suite}/{test}: in process {}, reference runner {}",
            a.map_or("absent", String::as_str),
            b.map_or("absent", String::as_str)
        );
    }
    if !differences.is_empty() {
        bail!("the two runners disagree on {} tests", differences.len());
    }
    eprintln!("Same verdict from both runners for all {} tests.", ours.len());
    Ok(())
}
