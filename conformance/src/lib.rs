//! The conformance runner behind `wasm-host conformance`: runs suites in
//! the WASI test suite's format in this process (or each test through a
//! legacy adapter), all tests at once, and judges and reports them as the
//! reference runner (`wasi-testsuite/test-runner`) does. [`report`] writes
//! its JUnit and JSON reports, and those of any other test runner.

mod adapter;
mod check;
pub mod execute;
mod expectations;
mod in_process;
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
use std::str::FromStr;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};

pub use execute::Executor;
use expectations::Expectations;
use host::text::escape_controls;
use progress::Progress;
use report::{Status, Summary, TestResult};
use schedule::Job;
use select::Filter;
pub use select::Partition;
use suite::{Suite, remove_cleanup_files};

/// WASI versions whose tests this host runs: preview 1 modules, and
/// components of WASI 0.2 or 0.3.
const SUPPORTED_WASI_VERSIONS: &[&str] = &[suite::DEFAULT_WASI_VERSION, "wasm32-wasip2", "wasm32-wasip3"];

/// What to run and how to report it: the `wasm-host conformance` command
/// line, every choice made (the executor is passed beside it).
#[derive(Debug, Default)]
pub struct Options {
    /// Suite directories.
    pub dirs: Vec<PathBuf>,
    /// Tests to run at once; `None`: the number of CPUs.
    pub jobs: Option<NonZeroUsize>,
    /// Run only the tests matching one of these globs (see [`parse_filter`]).
    pub filter: Vec<String>,
    /// Run only this partition of the selected tests.
    pub partition: Option<Partition>,
    /// Expectation files (TOML, or a JSON skip list).
    pub expectations: Vec<PathBuf>,
    /// Where to write the JSON report.
    pub json_report: Option<PathBuf>,
    /// Where to write the JUnit XML report.
    pub junit: Option<PathBuf>,
    /// Print the selected tests instead of running them.
    pub list: bool,
    /// Start no test after the first that fails the run.
    pub fail_fast: bool,
    /// What a run that selects no test does.
    pub no_tests: NoTests,
    /// No progress on stderr.
    pub quiet: bool,
    /// The largest wasm call stack a guest may use, in bytes.
    pub max_stack: usize,
}

/// What a run that selects no test does, as cargo-nextest's `--no-tests`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NoTests {
    /// Counts as a pass.
    Pass,
    /// Passes with a warning on stderr.
    Warn,
    /// Fails ([`Verdict::NoTests`]).
    #[default]
    Fail,
}

impl NoTests {
    /// The values of `--no-tests`, in the order help shows them.
    pub const NAMES: [&str; 3] = ["pass", "warn", "fail"];
}

impl FromStr for NoTests {
    type Err = String;

    fn from_str(name: &str) -> Result<NoTests, String> {
        match name {
            "pass" => Ok(NoTests::Pass),
            "warn" => Ok(NoTests::Warn),
            "fail" => Ok(NoTests::Fail),
            _ => Err(format!("expected one of {}", NoTests::NAMES.join(", "))),
        }
    }
}

/// How a run that could be carried out came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No test failed (or `--list` printed the selection).
    Passed,
    /// A test failed the run.
    Failed,
    /// No test was selected, and [`NoTests::Fail`] says that fails.
    NoTests,
}

/// A `--filter` pattern that compiles, so that a bad one is a usage error.
pub fn parse_filter(pattern: &str) -> Result<String, String> {
    Filter::new(&[pattern.to_owned()])
        .map(|_| pattern.to_owned())
        .map_err(|error| error.to_string())
}

/// Runs the suites with `executor`: `Err` when they could not be run (a
/// directory without tests, an unreadable expectation file, a report that
/// cannot be written).
pub fn run(options: &Options, executor: Executor) -> Result<Verdict> {
    let mut console = Console::default();
    Ok(match run_suites(options, &executor, &mut console)? {
        Some(summary) if summary.failed == 0 => Verdict::Passed,
        Some(_) => Verdict::Failed,
        None => Verdict::NoTests,
    })
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
fn run_suites(args: &Options, executor: &Executor, console: &mut Console) -> Result<Option<Summary>> {
    let started = Instant::now();
    let started_at = SystemTime::now();
    let suites = args
        .dirs
        .iter()
        .map(|dir| Suite::load(dir))
        .collect::<Result<Vec<_>>>()?;
    let expectations = Expectations::read(&args.expectations)?;
    let filter = Filter::new(&args.filter).context("invalid --filter")?;

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
            let skip = expected.skip.or_else(|| skip_reason(executor, suite, test));
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
    let stack_size = args.max_stack + (2 << 20);
    let run = |job: &Job<'_>| execute::run_one(executor, job, started);
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
        name: "wasm-host conformance",
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
        if let Status::Skipped(reason) = &result.status {
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
