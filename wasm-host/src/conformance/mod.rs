//! `wasm-host conformance`: run suites in the WASI test suite's format in
//! this process, all tests at once, and judge and report them as the
//! reference runner (`wasi-testsuite/test-runner`) does.

mod check;
pub mod execute;
mod expectations;
mod live;
mod loopback;
mod progress;
pub mod report;
mod request;
mod schedule;
mod select;
mod servers;
mod service;
mod spec;
mod suite;
mod wire;
mod workspace;

use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use crate::limits::LimitArgs;
use crate::status::{self, escape_controls};
use execute::{Executor, Job, TestResult};
use expectations::Expectations;
use progress::Progress;
use report::Summary;
use select::{Filter, Partition};
use suite::{Suite, remove_cleanup_files};

/// The exit status of a run that selects no test (as cargo-nextest's).
pub const NO_TESTS: u8 = 4;

/// WASI versions whose tests this host runs: preview 1 modules, and
/// components of WASI 0.2 or 0.3.
const SUPPORTED_WASI_VERSIONS: &[&str] = &[suite::DEFAULT_WASI_VERSION, "wasm32-wasip2", "wasm32-wasip3"];

const CONFORMANCE_HELP: &str = "\
Each DIR is a suite in the WASI test suite's format (its doc/specification.md):
every *.wasm directly in it is a test, NAME.json beside it its specification,
either legacy (\"args\", \"env\", \"root\": a directory preopened as the guest's
`/`, \"exit_code\", \"stdout\", \"stderr\"; the older \"dirs\" too) or
operation-based (\"operations\": run, write to stdin, read of stdout/stderr,
wait, connect/send/recv, request, kill; \"proposals\", \"servers\");
manifest.json gives the suite's \"name\" and WASI \"version\" (wasm32-wasip1
modules; wasm32-wasip2 and wasm32-wasip3 components). A guest whose
operations talk to it while it runs (connect, request, a read before a write)
runs live. Tests of other WASI versions, needing a proposal other than
`sockets` (granted on loopback only), or sending a signal (kill) are skipped
with the reason; so is connect/send/recv/request/kill or \"servers\" through
--adapter. A specification
that breaks a validation rule fails its test, naming the rule; unknown fields
are reported on stderr.

All tests run at once, each on its own copy of its directories (on /dev/shm
when there is one); a directory must be inside its suite. *.cleanup files
below DIR (output of earlier runs) are removed before and after the run. Each failure is
printed as `FAIL SUITE/TEST: reasons` as it happens; the last line is
`N passed, N failed` (and `, N skipped`); a test that fails as the
expectation file says counts as passed, on the console and in both reports.
Progress goes to stderr: a live bar on a terminal, else a line per finished
test (`-q`: none).

Exit status: 0 when no test failed, 1 when one did (an expected failure that
passes counts as failed), 2 for an invalid command line, 4 when no test is
selected (unless --no-tests says otherwise), 126 when the suites could not be
run (a DIR without tests, an unreadable expectation file, a report that cannot
be written).";

// Described on `Command::Conformance` in main.rs.
#[derive(Args, Debug)]
#[command(after_help = CONFORMANCE_HELP)]
pub struct ConformanceArgs {
    /// Suite directories (each with *.wasm tests, optional *.json specs and manifest.json)
    #[arg(value_name = "DIR", required = true)]
    dirs: Vec<PathBuf>,

    /// Tests to run at once [default: the number of CPUs]
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<NonZeroUsize>,

    /// Run only the tests whose name or `SUITE/TEST` matches GLOB; without *?[{ a substring (repeatable)
    #[arg(long, value_name = "GLOB", value_parser = parse_glob)]
    filter: Vec<String>,

    /// Run only partition K of N: `hash:K/N` (by name) or `count:K/N` (dealt in turn), as cargo-nextest
    #[arg(long, value_name = "KIND:K/N")]
    partition: Option<Partition>,

    /// Expectation file: the suite's TOML (`[[suite]]`, `[[suite.test]]`, `action = "skip"`, `expected = "fail"`) or a JSON skip list `{"SUITE": {"TEST": "reason"}}` (repeatable)
    #[arg(long, short = 'e', visible_alias = "exclude", value_name = "FILE")]
    expectations: Vec<PathBuf>,

    /// Write every test's outcome, failures and duration as JSON (the reference runner's shape) to FILE
    #[arg(long, value_name = "FILE")]
    json_report: Option<PathBuf>,

    /// Write a JUnit XML report to FILE
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,

    /// Run each test in a process of its own through this legacy adapter script (`$PYTHON`, default python3, runs it) instead of in this process; --timeout then limits each process
    #[arg(long, value_name = "ADAPTER.py", conflicts_with_all = ["fuel", "max_memory", "max_output", "max_stack"])]
    adapter: Option<PathBuf>,

    /// Print the selected tests (`SUITE/TEST`, and why one would be skipped) instead of running them
    #[arg(long)]
    list: bool,

    /// Stop starting tests after the first that fails the run; those not started are reported as skipped
    #[arg(long)]
    fail_fast: bool,

    /// What a run that selects no test does, as cargo-nextest: fail (exit 4), warn (exit 0 with a warning) or pass
    #[arg(long, value_name = "ACTION", default_value = "fail")]
    no_tests: NoTests,

    /// No progress on stderr (failures and the summary are still printed)
    #[arg(long, short = 'q')]
    quiet: bool,

    #[command(flatten)]
    limits: LimitArgs,
}

/// `--no-tests`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum NoTests {
    Pass,
    Warn,
    Fail,
}

/// A `--filter` pattern that compiles, so that a bad one is a usage error.
fn parse_glob(pattern: &str) -> Result<String, globset::Error> {
    Filter::new(&[pattern.to_owned()]).map(|_| pattern.to_owned())
}

/// Runs the suites and returns the exit status.
pub fn run(args: ConformanceArgs) -> u8 {
    let mut console = Console::default();
    match run_suites(&args, &mut console) {
        Ok(Some(summary)) if summary.failed == 0 => 0,
        Ok(Some(_)) => 1,
        Ok(None) => NO_TESTS,
        Err(error) => {
            console.error(&format!("wasm-host: error: {}", escape_controls(&format!("{error:#}"))));
            status::LOAD_ERROR
        }
    }
}

/// Prints lines and stops quietly when the reader goes away (`| head`):
/// the run goes on and its reports are still written.
#[derive(Default)]
struct Console {
    stdout_closed: bool,
}

impl Console {
    fn line(&mut self, text: &str) {
        if !self.stdout_closed {
            self.stdout_closed = writeln!(io::stdout().lock(), "{text}").is_err();
        }
    }

    fn error(&self, text: &str) {
        // Nowhere left to say it when stderr is closed too.
        let _ = writeln!(io::stderr().lock(), "{text}");
    }
}

/// Runs the selected tests; `None` when the selection is empty.
fn run_suites(args: &ConformanceArgs, console: &mut Console) -> Result<Option<Summary>> {
    let started = Instant::now();
    let started_at = SystemTime::now();
    let suites = args
        .dirs
        .iter()
        .map(|dir| Suite::load(dir))
        .collect::<Result<Vec<_>>>()?;
    let expectations = Expectations::read(&args.expectations)?;
    let filter = Filter::new(&args.filter).context("invalid --filter")?;
    let executor = match &args.adapter {
        Some(script) => Executor::Adapter {
            python: std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into()),
            script: std::path::absolute(script).with_context(|| format!("locating {}", script.display()))?,
            timeout: args.limits.limits().timeout,
        },
        None => Executor::InProcess {
            runtime: args.limits.runtime()?,
            limits: args.limits.limits(),
        },
    };

    let mut jobs = Vec::new();
    let mut results = Vec::new();
    let mut matched = 0;
    for suite in &suites {
        for test in &suite.tests {
            if !filter.matches(&suite.name, &test.name) {
                continue;
            }
            matched += 1;
            if args
                .partition
                .is_some_and(|p| !p.takes(matched - 1, &suite.name, &test.name))
            {
                continue;
            }
            for warning in &test.warnings {
                console.error(&escape_controls(&format!(
                    "wasm-host: warning: {}/{}.json: {warning}",
                    suite.name, test.name
                )));
            }
            let expected = expectations.get(&suite.name, &test.name);
            let skip = expected.skip.or_else(|| skip_reason(&executor, suite, test));
            match skip {
                Some(reason) => results.push(TestResult::skipped(&suite.name, &test.name, reason)),
                None => jobs.push(Job {
                    suite: &suite.name,
                    suite_dir: &suite.dir,
                    test,
                    expected_failure: expected.fail,
                }),
            }
        }
    }
    if args.list {
        list(console, &jobs, &results);
        return Ok(Some(Summary::default()));
    }
    if jobs.is_empty() && results.is_empty() {
        let total: usize = suites.iter().map(|s| s.tests.len()).sum();
        let why = match args.partition {
            Some(partition) if matched > 0 => {
                format!("partition {partition} holds none of the {matched} tests selected")
            }
            _ => format!("--filter {:?} matches none of {total} tests", args.filter),
        };
        match args.no_tests {
            NoTests::Fail => {
                console.error(&escape_controls(&format!("wasm-host: error: no test selected: {why}")));
                return Ok(None);
            }
            NoTests::Warn => console.error(&escape_controls(&format!(
                "wasm-host: warning: no test selected: {why}"
            ))),
            NoTests::Pass => {}
        }
    }
    for suite in &suites {
        clean(suite)?;
    }

    let workers = args
        .jobs
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get);
    // The guest runs on the worker's stack: room for --max-stack of wasm, and the host's own frames.
    let stack_size = args.limits.max_stack() + (2 << 20);
    let run = |job: &Job<'_>| execute::run_one(&executor, job, started);
    let mut progress = Progress::new(jobs.len(), args.quiet);
    let stop_after = |result: &TestResult| args.fail_fast && report::fails_the_run(&result.status);
    let (ran, not_started) = schedule::run_all(jobs, workers, stack_size, run, stop_after, |result| {
        progress.finished(result, || {
            if let Some(line) = report::failure_line(result) {
                console.line(&line);
            }
        });
    });
    progress.finish();
    results.extend(ran);
    results.extend(not_started.iter().map(|job| {
        let reason = "not started: --fail-fast stopped the run at the first failure".to_owned();
        TestResult::skipped(job.suite, &job.test.name, reason)
    }));

    for suite in &suites {
        clean(suite)?;
    }
    results.sort_by(|a, b| (&a.suite, &a.name).cmp(&(&b.suite, &b.name)));
    let summary = Summary::of(&results);
    if let Some(line) = summary.expectations_line() {
        console.line(&line);
    }
    console.line(&summary.to_string());
    let names: Vec<&str> = suites.iter().map(|s| s.name.as_str()).collect();
    let executor = executor.describe();
    let run = report::Run {
        suites: &names,
        results: &results,
        executor: &executor,
        partition: args.partition.map(|p| p.to_string()),
        started: started_at,
        duration: started.elapsed(),
    };
    if let Some(path) = &args.json_report {
        report::write_json(path, &run)?;
    }
    if let Some(path) = &args.junit {
        report::write_junit(path, &run)?;
    }
    Ok(Some(summary))
}

/// `--list`: each selected test, and why one that would be skipped is.
fn list(console: &mut Console, jobs: &[Job<'_>], skipped: &[TestResult]) {
    let mut lines: Vec<String> = jobs
        .iter()
        .map(|job| format!("{}/{}", job.suite, job.test.name))
        .collect();
    for result in skipped {
        if let execute::Status::Skipped(reason) = &result.status {
            lines.push(format!("{}/{} (skipped: {reason})", result.suite, result.name));
        }
    }
    lines.sort();
    for line in lines {
        console.line(&escape_controls(&line));
    }
}

/// Why this host does not run `test` at all, if it does not.
fn skip_reason(executor: &Executor, suite: &Suite, test: &suite::TestCase) -> Option<String> {
    if !SUPPORTED_WASI_VERSIONS.contains(&suite.wasi_version.as_str()) {
        return Some(format!(
            "{} tests need WASI 0.3 (asynchronous components), which wasm-host does not offer",
            suite.wasi_version
        ));
    }
    test.spec.as_ref().ok().and_then(|spec| executor.unsupported(spec))
}

fn clean(suite: &Suite) -> Result<()> {
    remove_cleanup_files(&suite.dir).with_context(|| format!("removing *.cleanup files in {}", suite.dir.display()))
}
