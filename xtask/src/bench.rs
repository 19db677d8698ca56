//! `cargo xtask bench`: measures what the performance work promises, side by
//! side in one run, and prints a table of medians, spreads and ratios (also
//! written as JSON).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::cmd::{cargo, run};

pub const SUBCOMMAND: crate::Subcommand = crate::Subcommand {
    name: "bench",
    summary: "Measure run cost against bare Wasmtime and the wasmtime CLI, the compile cache, suites",
    help: "\
Usage: cargo xtask bench [--quick] [--wasmtime-only]

Builds in release mode, then measures, each against its baseline in the same run:
  1. one run of csv_processor through the host library vs a minimal hand-written
     Wasmtime embedding (the floor; target: at most 1.2x)
  2. `wasm-host run` as a process vs `wasmtime run` (both with their compile
     caches warm); the wasmtime binary is $WASMTIME, else `wasmtime` on PATH,
     else the row is skipped (`cargo install wasmtime-cli --version 48.0.8 --locked`)
  3. the project's conformance suite through the in-process runner vs one
     process per test through the legacy adapter
  3b. the official WASI test suite's 72 wasm32-wasip1 tests: in process
     (warm compile cache) vs its reference runner with adapters/wasmtime.py
     and the wasmtime CLI above; needs $WASI_TESTSUITE (a checkout of
     WebAssembly/wasi-testsuite, prod/testsuite-base) and $PYTHON (default
     python3) 3.12 or newer with the runner's requirements, else skipped
  4. loading each guest: compile (cold) vs the disk cache vs the memory cache;
     the disk cache's time per module for 100, 1,000 and 10,000 distinct
     modules, cold and warm, with peak memory (flat is the target)
  5. `cargo nextest run -p host` vs `cargo test -p host` on an unchanged tree
  6. real crates' unit tests (regex-syntax's 147 and chrono's 258, the
     versions in Cargo.lock, copied from cargo's registry into target/bench)
     for wasm32-wasip1, through cargo with wasm-host as runner (`wasm-host
     test`: an instance per test, on every core) vs the wasmtime CLI as
     runner (one instance, the tests in turn) vs cargo nextest with the
     wasmtime CLI (a process per test)
Prints the table and writes target/bench/results.json.
--quick takes fewer samples of the slow process-level rows; --wasmtime-only
runs only the rows compared with the wasmtime CLI (2, 3b and 6).
",
    run: run_bench,
};

/// One measured row: its samples in nanoseconds, and the row it is compared to.
struct Row {
    group: &'static str,
    name: String,
    samples_ns: Vec<u64>,
    baseline: Option<String>,
    /// Shown beside the ratio (e.g. peak memory).
    note: Option<String>,
}

fn run_bench(args: &[String]) -> Result<()> {
    let flag = |name: &str| args.iter().any(|arg| arg == name);
    if let Some(unknown) = args
        .iter()
        .find(|arg| !["--quick", "--wasmtime-only"].contains(&arg.as_str()))
    {
        bail!("unknown argument {unknown}; usage: cargo xtask bench [--quick] [--wasmtime-only]");
    }
    let (quick, all) = (flag("--quick"), !flag("--wasmtime-only"));
    let process_samples = if quick { 5 } else { 20 };
    let mut rows = Vec::new();
    if all {
        in_process(&mut rows)?;
    }
    cli_against_wasmtime(&mut rows, process_samples)?;
    if all {
        conformance_suite(&mut rows, if quick { 2 } else { 5 })?;
    }
    official_suite(&mut rows, if quick { 3 } else { 5 })?;
    guest_unit_tests(&mut rows, if quick { 2 } else { 5 })?;
    if all {
        nextest_against_cargo_test(&mut rows, if quick { 1 } else { 3 })?;
    }
    print_table(&rows);
    write_json(&rows)
}

/// Rows 1 and 4, from the `embedding` bench of the host crate.
fn in_process(rows: &mut Vec<Row>) -> Result<()> {
    // The release profile, not `bench`: the same artifacts as the release `wasm-host`.
    let output = cargo(["bench", "--profile", "release", "-p", "host", "--bench", "embedding"])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo bench")?;
    if !output.status.success() {
        bail!("cargo bench -p host --bench embedding failed");
    }
    const FLOOR: &str = "run csv_processor: bare wasmtime, InstancePre + pooling (floor)";
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let name = value["name"].as_str().context("bench line without a name")?.to_owned();
        let samples_ns = value["samples_ns"]
            .as_array()
            .context("bench line without samples")?
            .iter()
            .filter_map(serde_json::Value::as_u64)
            .collect();
        let is_run = name.starts_with("run ");
        let baseline = if let Some(baseline) = value["baseline"].as_str() {
            Some(baseline.to_owned())
        } else if name == FLOOR || name.ends_with(": cold (compile)") {
            None
        } else if is_run {
            Some(FLOOR.to_owned())
        } else {
            name.split_once(": ").map(|(load, _)| format!("{load}: cold (compile)"))
        };
        rows.push(Row {
            group: if is_run {
                "library vs bare wasmtime"
            } else if name.starts_with("cache scaling") {
                "compile cache scaling"
            } else {
                "compile cache"
            },
            name,
            samples_ns,
            baseline,
            note: value["note"].as_str().map(str::to_owned),
        });
    }
    if !rows.iter().any(|row| row.name == FLOOR) {
        bail!("the embedding bench printed no floor row");
    }
    Ok(())
}

/// Row 2: whole processes, `wasm-host run` against `wasmtime run` of the
/// same module, sampled in turn: a small guest with both compile caches
/// warm, a CPU-bound guest, and a large module compiled afresh and then
/// from each cache. Without a wasmtime CLI only wasm-host's rows are kept.
fn cli_against_wasmtime(rows: &mut Vec<Row>, samples: usize) -> Result<()> {
    // The binary alone, its features resolved as `cargo install` resolves
    // them (with the benches, the host's dev-dependencies would add to it).
    run(cargo(["build", "--release", "-p", "wasm-host"]))?;
    let wasmtime = wasmtime_cli();
    if wasmtime.is_none() {
        eprintln!(
            "no wasmtime CLI found: set WASMTIME or put `wasmtime` on PATH \
             (cargo install wasmtime-cli --version 48.0.8 --locked); wasm-host's rows only"
        );
    }
    let cache_config = wasmtime_cache_config()?;
    let wasm_host = installed_wasm_host()?;
    let large = xtask::target_dir().join("bench").join("large.wasm");
    std::fs::write(&large, xtask::large_module::generate(LARGE_MODULE_FUNCTIONS))?;
    let csv = xtask::guests::artifact("csv_processor")?;
    let primes = xtask::guests::artifact("primes")?;
    let cached = |module: &Path, args: &[&str]| -> [Vec<std::ffi::OsString>; 2] {
        let wasmtime = [
            "run".into(),
            "-C".into(),
            format!("cache-config={}", cache_config.display()).into(),
        ];
        let wasm_host = ["run".into()];
        [wasmtime.to_vec(), wasm_host.to_vec()].map(|mut argv: Vec<std::ffi::OsString>| {
            argv.push(module.into());
            argv.extend(args.iter().map(Into::into));
            argv
        })
    };
    let uncached = |module: &Path| -> [Vec<std::ffi::OsString>; 2] {
        [
            vec!["run".into(), "-C".into(), "cache=n".into(), module.into()],
            vec!["run".into(), "--no-cache".into(), module.into()],
        ]
    };
    let cases = [
        ("csv_processor (small guest, caches warm)", cached(&csv, &[]), samples),
        (
            "primes 100,000,000 (CPU-bound, caches warm)",
            cached(&primes, &["100000000"]),
            samples.div_ceil(2),
        ),
        ("large module, cold (no cache)", uncached(&large), samples.div_ceil(2)),
        ("large module, warm (caches warm)", cached(&large, &[]), samples),
    ];
    for (what, [wasmtime_args, wasm_host_args], samples) in cases {
        let baseline = format!("wasmtime run {what}");
        let mut commands = Vec::new();
        if let Some(wasmtime) = &wasmtime {
            let mut command = Command::new(wasmtime);
            command.args(&wasmtime_args);
            commands.push((baseline.clone(), command, None));
        }
        let mut command = Command::new(&wasm_host);
        command.args(&wasm_host_args);
        let compared = wasmtime.as_ref().map(|_| baseline.clone());
        commands.push((format!("wasm-host run {what}"), command, compared));
        side_by_side(rows, "wasm-host vs wasmtime CLI", commands, samples)?;
    }
    Ok(())
}

/// A wasmtime cache configuration that keeps its compile cache in
/// target/bench rather than the user's home.
fn wasmtime_cache_config() -> Result<PathBuf> {
    let dir = xtask::target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("wasmtime-cache.toml");
    std::fs::write(
        &config,
        format!("[cache]\ndirectory = {:?}\n", dir.join("wasmtime-cache")),
    )?;
    Ok(config)
}

/// Generated functions in the large module: about 2.4 MB of code, which
/// Cranelift takes on the order of a second to compile.
const LARGE_MODULE_FUNCTIONS: usize = 20_000;

/// Times `commands` (name, command, baseline row) in turn, `samples` rounds
/// after one warm-up round, so that all see the same machine conditions.
fn side_by_side(
    rows: &mut Vec<Row>,
    group: &'static str,
    mut commands: Vec<(String, Command, Option<String>)>,
    samples: usize,
) -> Result<()> {
    let mut timings = vec![Vec::with_capacity(samples); commands.len()];
    for round in 0..=samples {
        for ((_, command, _), timings) in commands.iter_mut().zip(&mut timings) {
            let elapsed = time_once(command)?;
            if round > 0 {
                timings.push(elapsed);
            }
        }
    }
    for ((name, _, baseline), samples_ns) in commands.into_iter().zip(timings) {
        rows.push(Row {
            group,
            name,
            samples_ns,
            baseline,
            note: None,
        });
    }
    Ok(())
}

/// Times a `baseline` (row name, command) and a command `compared` with it,
/// in turn, as [`side_by_side`] does.
fn against(
    rows: &mut Vec<Row>,
    group: &'static str,
    (baseline_name, baseline): (&str, Command),
    (name, command): (&str, Command),
    samples: usize,
) -> Result<()> {
    let commands = vec![
        (baseline_name.to_owned(), baseline, None),
        (name.to_owned(), command, Some(baseline_name.to_owned())),
    ];
    side_by_side(rows, group, commands, samples)
}

fn wasm_host_release() -> PathBuf {
    xtask::target_dir().join("release").join("wasm-host")
}

/// The release `wasm-host` as `cargo install` leaves it: a copy. The file
/// the linker has just written sits in the page cache in small pages, and
/// each start of it takes more page faults (docs/performance.md) than of
/// the same bytes copied or read back from disk, as the `wasmtime` that
/// `cargo install` copied is.
fn installed_wasm_host() -> Result<PathBuf> {
    let installed = xtask::target_dir().join("bench").join("wasm-host");
    std::fs::create_dir_all(xtask::target_dir().join("bench"))?;
    std::fs::copy(wasm_host_release(), &installed).context("copying the release wasm-host")?;
    Ok(installed)
}

/// Row 3: the suite in one process against one adapter process per test
/// (the way the WASI test suite's own runner drives a runtime).
fn conformance_suite(rows: &mut Vec<Row>, samples: usize) -> Result<()> {
    let suites = xtask::suite::build_into(&xtask::suite::build_dir())?;
    let wasm_host = wasm_host_release();
    let adapter = xtask::project_root()
        .join("tests")
        .join("wasi-testsuite")
        .join("adapter.py");
    let expectations = xtask::suite::source_dir().join("expectations.toml");
    let mut per_process = Command::new(&wasm_host);
    per_process
        .arg("conformance")
        .arg("--adapter")
        .arg(adapter)
        .args(&suites)
        .arg("--expectations")
        .arg(&expectations)
        .env("WASM_HOST", &wasm_host);
    let mut in_process = Command::new(&wasm_host);
    in_process
        .arg("conformance")
        .args(&suites)
        .arg("--expectations")
        .arg(&expectations);
    let group = "conformance suite";
    let baseline = ("conformance suite: legacy adapter, a process per test", per_process);
    let in_process = ("conformance suite: in-process runner", in_process);
    against(rows, group, baseline, in_process, samples)
}

/// Row 3b: the official suite's wasm32-wasip1 tests in process against the
/// reference runner driving the wasmtime CLI, a process per test.
fn official_suite(rows: &mut Vec<Row>, samples: usize) -> Result<()> {
    let Some(checkout) = std::env::var_os("WASI_TESTSUITE").map(PathBuf::from) else {
        eprintln!("$WASI_TESTSUITE is not set; skipping the official suite row");
        return Ok(());
    };
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    let Some(wasmtime) = wasmtime_cli() else {
        eprintln!("no wasmtime CLI; skipping the official suite row");
        return Ok(());
    };
    if !crate::wasi_testsuite::is_python_312(&python) {
        eprintln!(
            "{} is not Python 3.12 or newer; skipping the official suite row",
            python.to_string_lossy()
        );
        return Ok(());
    }
    let suites: Vec<PathBuf> = crate::wasi_testsuite::suite_dirs(&checkout)?
        .into_iter()
        .filter(|dir| dir.ends_with("wasm32-wasip1"))
        .collect();
    let mut reference = Command::new(&python);
    reference
        .arg(checkout.join("test-runner").join("wasi_test_runner.py"))
        .arg("--test-suite")
        .args(&suites)
        .arg("--runtime-adapter")
        .arg(checkout.join("adapters").join("wasmtime.py"))
        .arg("--disable-colors")
        .current_dir(&checkout)
        // The adapter splits $WASMTIME shell-style: the CLI and its cache flag.
        .env(
            "WASMTIME",
            format!(
                "'{}' -C 'cache-config={}'",
                wasmtime.display(),
                wasmtime_cache_config()?.display()
            ),
        )
        .env("PYTHONDONTWRITEBYTECODE", "1");
    // The warm-up round leaves the compile caches warm.
    let mut in_process = Command::new(wasm_host_release());
    in_process.arg("conformance").args(&suites);
    let group = "official WASI test suite";
    let baseline = ("official suite (wasip1): reference runner + wasmtime", reference);
    let in_process = ("official suite in process vs reference runner + wasmtime", in_process);
    against(rows, group, baseline, in_process, samples)
}

/// Row 5: both runners on an unchanged, already-built tree.
fn nextest_against_cargo_test(rows: &mut Vec<Row>, samples: usize) -> Result<()> {
    run(cargo(["test", "-p", "host", "--no-run"]))?;
    rows.push(Row {
        group: "test runners",
        name: "cargo test -p host".to_owned(),
        samples_ns: time_process(&mut cargo(["test", "-p", "host", "--quiet"]), samples)?,
        baseline: None,
        note: None,
    });
    if !cargo(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("cargo-nextest is not installed; skipping that row");
        return Ok(());
    }
    rows.push(Row {
        group: "test runners",
        name: "cargo nextest run -p host".to_owned(),
        samples_ns: time_process(&mut cargo(["nextest", "run", "-p", "host"]), samples)?,
        baseline: Some("cargo test -p host".to_owned()),
        note: None,
    });
    Ok(())
}

/// Row 6's crates, and the libtest arguments each runner is given: chrono's
/// tests of time-zone files it does not ship are skipped by all three.
const UNIT_TEST_CRATES: [(&str, &[&str]); 2] = [("regex-syntax", &[]), ("chrono", &["--skip", "tz_data"])];

/// Row 6: real crates' unit tests built for wasm32-wasip1, run through
/// cargo on built artifacts with each runner in turn.
fn guest_unit_tests(rows: &mut Vec<Row>, samples: usize) -> Result<()> {
    const GROUP: &str = "unit tests as cargo's runner";
    let Some(wasmtime) = wasmtime_cli() else {
        eprintln!("no wasmtime CLI; skipping the unit-test runner row");
        return Ok(());
    };
    // cargo splits a runner from the environment at spaces.
    let wasmtime_runner = format!(
        "{} run -C cache-config={}",
        wasmtime.display(),
        wasmtime_cache_config()?.display()
    );
    let wasm_host_runner = format!("{} test", installed_wasm_host()?.display());
    for (name, libtest_args) in UNIT_TEST_CRATES {
        let manifest = registry_crate_copy(name)?;
        let target = xtask::guests::TARGET;
        let build = |subcommand: &[&str]| {
            let mut command = cargo(subcommand);
            command
                .args(["--offline", "--lib", "--target", target, "--manifest-path"])
                .arg(&manifest);
            command
        };
        let test = |subcommand: &[&str], runner: &str| {
            let mut command = build(subcommand);
            command
                .env(
                    format!("CARGO_TARGET_{}_RUNNER", target.to_uppercase().replace('-', "_")),
                    runner,
                )
                .arg("--")
                .args(libtest_args);
            command
        };
        // Built once, without a runner: cargo refuses an empty one.
        run(build(&["test", "--no-run"]))?;
        let wasmtime_row = format!("{name}'s unit tests: wasmtime as runner (one instance)");
        let wasm_host_row = format!("{name}'s unit tests: wasm-host test (an instance per test)");
        let commands = vec![
            (wasmtime_row.clone(), test(&["test"], &wasmtime_runner), None),
            (
                wasm_host_row.clone(),
                test(&["test"], &wasm_host_runner),
                Some(wasmtime_row),
            ),
            (
                format!("{name}'s unit tests: nextest + wasmtime (a process per test)"),
                test(&["nextest", "run"], &wasmtime_runner),
                Some(wasm_host_row),
            ),
        ];
        side_by_side(rows, GROUP, commands, samples)?;
    }
    Ok(())
}

/// A copy of the registry's source of the dependency `name` (the version in
/// Cargo.lock) in target/bench, a workspace of its own; returns its manifest.
/// Another project's code: copied at bench time, never committed.
fn registry_crate_copy(name: &str) -> Result<PathBuf> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(xtask::project_root().join("Cargo.toml"))
        .exec()
        .context("reading the workspace's metadata")?;
    let package = metadata
        .packages
        .iter()
        .find(|package| package.name.as_str() == name)
        .with_context(|| format!("{name} is not in Cargo.lock"))?;
    let source = package.manifest_path.parent().context("a manifest's folder")?;
    let copy = xtask::target_dir().join("bench").join(name);
    // The build (and the durations `wasm-host test` remembers) stay.
    let target = copy.join("target");
    let kept = xtask::target_dir().join("bench").join(format!("{name}-target"));
    if target.is_dir() {
        std::fs::rename(&target, &kept)?;
    }
    let _ = std::fs::remove_dir_all(&copy);
    run(Command::new("cp").arg("-r").arg(source).arg(&copy))?;
    if kept.is_dir() {
        std::fs::rename(&kept, &target)?;
    }
    let manifest = copy.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)?;
    std::fs::write(&manifest, standalone_manifest(&text) + "\n[workspace]\n")?;
    // Resolved as the workspace resolved it: offline, the registry has no more.
    std::fs::copy(xtask::project_root().join("Cargo.lock"), copy.join("Cargo.lock"))?;
    Ok(manifest)
}

/// A registry manifest without what an offline build of its library's
/// tests cannot resolve: its dev-dependencies, its optional dependencies
/// (regex-syntax's `arbitrary`, chrono's `serde`, ...), and the features'
/// entries that name those (`"dep:serde"`, `"serde?/std"`, `"rkyv"`); the
/// features themselves stay, so none that another names goes missing.
fn standalone_manifest(manifest: &str) -> String {
    let mut tables: Vec<Vec<&str>> = vec![Vec::new()];
    for line in manifest.lines() {
        if line.starts_with('[') {
            tables.push(Vec::new());
        }
        tables.last_mut().expect("one table at least").push(line);
    }
    fn header<'a>(table: &[&'a str]) -> &'a str {
        table.first().copied().unwrap_or_default()
    }
    let dev = |table: &Vec<&str>| header(table).contains("dev-dependencies");
    let optional = |table: &Vec<&str>| {
        header(table).contains("dependencies.") && table.iter().any(|line| line.replace(' ', "") == "optional=true")
    };
    let dropped: Vec<&str> = (tables.iter())
        .filter(|table| optional(table))
        .filter_map(|table| header(table).trim_end_matches(']').rsplit('.').next())
        .collect();
    // A feature entry names a dependency as `dep:NAME`, `NAME/feature`,
    // `NAME?/feature` or (an optional one) plain `NAME`.
    let names_dropped = |entry: &str| {
        let name = entry.trim_start_matches("dep:");
        let name = name.split('/').next().unwrap_or_default().trim_end_matches('?');
        dropped.contains(&name)
    };
    let quoted = |text: &str| -> Vec<String> { text.split('"').skip(1).step_by(2).map(str::to_owned).collect() };
    let mut kept = String::new();
    for table in tables.iter().filter(|table| !dev(table) && !optional(table)) {
        let features = header(table) == "[features]";
        for line in table {
            let line = match line.split_once('=') {
                // `feature = ["entry", ...]` on one line: its entries filtered.
                Some((key, value)) if features && value.contains(']') => {
                    let entries: Vec<String> = (quoted(value).iter())
                        .filter(|entry| !names_dropped(entry))
                        .map(|entry| format!("\"{entry}\""))
                        .collect();
                    format!("{key}= [{}]", entries.join(", "))
                }
                // An entry of an array written one per line.
                None if features && quoted(line).first().is_some_and(|entry| names_dropped(entry)) => continue,
                _ => line.to_string(),
            };
            kept += &line;
            kept += "\n";
        }
    }
    kept
}

/// The wasmtime CLI to compare against, if there is one.
fn wasmtime_cli() -> Option<PathBuf> {
    let candidate = std::env::var_os("WASMTIME").map_or_else(|| PathBuf::from("wasmtime"), PathBuf::from);
    Command::new(&candidate)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        .then_some(candidate)
}

/// Wall-clock time of `samples` runs of `command` (after one warm-up run).
fn time_process(command: &mut Command, samples: usize) -> Result<Vec<u64>> {
    time_once(command)?;
    (0..samples).map(|_| time_once(command)).collect()
}

/// Wall-clock time of one run of `command`, from spawn to exit, with stdin
/// fed from the CSV sample and output discarded.
fn time_once(command: &mut Command) -> Result<u64> {
    let input = b"1,2,3,4,5\n6,7,8,9,10\n";
    let start = Instant::now();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    // A guest that exits without reading its stdin closes the pipe early.
    let _ = std::io::Write::write_all(&mut child.stdin.take().expect("piped"), input);
    let status = child.wait()?;
    let elapsed = start.elapsed().as_nanos() as u64;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(elapsed)
}

fn median(samples: &[u64]) -> u64 {
    percentile(samples, 50)
}

fn percentile(samples: &[u64], percent: usize) -> u64 {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    sorted
        .get((sorted.len().saturating_sub(1)) * percent / 100)
        .copied()
        .unwrap_or(0)
}

fn human(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

fn ratio(row: &Row, rows: &[Row]) -> Option<f64> {
    let baseline = rows.iter().find(|r| Some(&r.name) == row.baseline.as_ref())?;
    Some(median(&row.samples_ns) as f64 / median(&baseline.samples_ns).max(1) as f64)
}

fn print_table(rows: &[Row]) {
    println!(
        "\n| {:<58} | {:>10} | {:>21} | {:>3} | {:<34} |",
        "benchmark", "median", "p10 .. p90", "n", "ratio"
    );
    println!("|{:-<60}|{:->12}|{:->23}|{:->5}|{:-<36}|", "", "", "", "", "");
    for row in rows {
        let spread = format!(
            "{} .. {}",
            human(percentile(&row.samples_ns, 10)),
            human(percentile(&row.samples_ns, 90))
        );
        let ratio = match (ratio(row, rows), &row.baseline) {
            (Some(r), Some(base)) if r < 0.5 => format!("{r:.3}x {} ({:.0}x faster)", short(base), 1.0 / r),
            (Some(r), Some(base)) => format!("{r:.2}x {}", short(base)),
            _ => "baseline".to_owned(),
        };
        let ratio = match &row.note {
            Some(note) => format!("{ratio}; {note}"),
            None => ratio,
        };
        println!(
            "| {:<58} | {:>10} | {:>21} | {:>3} | {:<34} |",
            row.name,
            human(median(&row.samples_ns)),
            spread,
            row.samples_ns.len(),
            ratio
        );
    }
}

/// A baseline's name without its group prefix, for the ratio column.
fn short(name: &str) -> &str {
    name.split_once(": ").map_or(name, |(_, rest)| rest)
}

fn write_json(rows: &[Row]) -> Result<()> {
    let rows: Vec<_> = rows
        .iter()
        .map(|row| {
            json!({
                "group": row.group,
                "name": row.name,
                "median_ns": median(&row.samples_ns),
                "p10_ns": percentile(&row.samples_ns, 10),
                "p90_ns": percentile(&row.samples_ns, 90),
                "samples": row.samples_ns.len(),
                "baseline": row.baseline,
                "note": row.note,
                "ratio": ratio(row, rows),
                "samples_ns": row.samples_ns,
            })
        })
        .collect();
    let dir = xtask::target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json!({ "rows": rows }))?)?;
    println!("\nwritten to {}", relative(&path));
    Ok(())
}

fn relative(path: &Path) -> String {
    path.strip_prefix(xtask::project_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standalone_manifest_keeps_no_optional_or_dev_dependency_nor_a_feature_entry_naming_one() {
        let manifest = "\
[package]
name = \"c\"

[features]
clock = [
    \"winapi\",
    \"iana-time-zone\",
    \"now\",
]
now = [\"std\"]
serde = [\"dep:serde\", \"iana-time-zone?/serde\", \"std\"]
std = []

[dependencies.iana-time-zone]
version = \"0.1\"
optional = true

[dependencies.memchr]
version = \"2\"

[dependencies.serde]
version = \"1\"
optional = true

[dev-dependencies.bincode]
version = \"1\"

[target.'cfg(windows)'.dependencies.winapi]
version = \"0.3\"
";
        let expected = "\
[package]
name = \"c\"

[features]
clock = [
    \"winapi\",
    \"now\",
]
now = [\"std\"]
serde = [\"std\"]
std = []

[dependencies.memchr]
version = \"2\"

[target.'cfg(windows)'.dependencies.winapi]
version = \"0.3\"
";
        assert_eq!(standalone_manifest(manifest), expected);
    }
}
