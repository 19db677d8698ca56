//! `wasm-host conformance`: run suites in the WASI test suite's format in
//! this process, many tests at once, and report like the reference runner.

mod execute;
mod report;
mod suite;

use std::collections::HashMap;
use std::fs;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use crate::limits::LimitArgs;
use crate::status;
use execute::{Executor, Job, Status, TestResult};
use report::Summary;
use suite::{Suite, remove_cleanup_files};

const CONFORMANCE_HELP: &str = "\
Each DIR is a suite in the WASI test suite's format: every *.wasm directly in
it is a test; NAME.json beside NAME.wasm may give \"args\", \"env\" (an object),
\"dirs\" (preopened read-write under the same name, relative to DIR),
\"exit_code\" (default 0), \"stdout\" and \"stderr\" (compared exactly when
given); manifest.json gives the suite's \"name\". *.cleanup files below DIR
are removed before and after the run, and in a test's dirs around each test.

Tests run in parallel, except that tests preopening the same directory run
one after another. Each failure is printed as `FAIL SUITE/TEST: reasons` as
it happens; the last line is `N passed, N failed` (and `, N skipped`).

Exit status: 0 when no test failed, 1 when one did, 2 for an invalid command
line, 126 when the suites could not be run (a DIR without tests, an
unreadable skip list, a report that cannot be written).";

/// Run test suites in the WASI test suite's format, in this process.
#[derive(Args, Debug)]
#[command(after_help = CONFORMANCE_HELP)]
pub struct ConformanceArgs {
    /// Suite directories (each with *.wasm tests, optional *.json specs and manifest.json)
    #[arg(value_name = "DIR", required = true)]
    dirs: Vec<PathBuf>,

    /// Tests to run at once [default: the number of CPUs]
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<NonZeroUsize>,

    /// Run only the tests whose `SUITE/TEST` name contains PATTERN
    #[arg(long, value_name = "PATTERN")]
    filter: Option<String>,

    /// Skip the tests a skip list names, as the reference runner's --exclude-filter: JSON `{"SUITE": {"TEST": "reason"}}` (repeatable)
    #[arg(long, value_name = "SKIPLIST.json")]
    exclude: Vec<PathBuf>,

    /// Write every test's result, failure reasons and duration as JSON to FILE
    #[arg(long, value_name = "FILE")]
    json_report: Option<PathBuf>,

    /// Write a JUnit XML report to FILE
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,

    /// Run each test in a process of its own through this legacy adapter script (`$PYTHON`, default python3, runs it) instead of in this process; --timeout then limits each process
    #[arg(long, value_name = "ADAPTER.py", conflicts_with_all = ["fuel", "max_memory", "max_output", "max_stack"])]
    adapter: Option<PathBuf>,

    #[command(flatten)]
    limits: LimitArgs,
}

/// Runs the suites and returns the exit status.
pub fn run(args: ConformanceArgs) -> u8 {
    match run_suites(&args) {
        Ok(summary) if summary.failed == 0 => 0,
        Ok(_) => 1,
        Err(error) => {
            eprintln!("wasm-host: error: {error:#}");
            status::LOAD_ERROR
        }
    }
}

fn run_suites(args: &ConformanceArgs) -> Result<Summary> {
    let started = Instant::now();
    let suites = args
        .dirs
        .iter()
        .map(|dir| Suite::load(dir))
        .collect::<Result<Vec<_>>>()?;
    let skip_list = read_skip_lists(&args.exclude)?;
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
    for suite in &suites {
        clean(suite)?;
    }

    let mut jobs = Vec::new();
    let mut results = Vec::new();
    for suite in &suites {
        for test in &suite.tests {
            let selected = args
                .filter
                .as_ref()
                .is_none_or(|pattern| format!("{}/{}", suite.name, test.name).contains(pattern));
            if !selected {
                continue;
            }
            match skip_list.get(&(suite.name.clone(), test.name.clone())) {
                Some(reason) => results.push(TestResult {
                    suite: suite.name.clone(),
                    name: test.name.clone(),
                    status: Status::Skipped(reason.clone()),
                    duration: Default::default(),
                }),
                None => jobs.push(Job {
                    suite: &suite.name,
                    suite_dir: &suite.dir,
                    test,
                }),
            }
        }
    }
    let workers = args
        .jobs
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get);
    let run = |job: &Job<'_>| execute::run_one(&executor, job);
    results.extend(execute::run_all(jobs, workers, run, |result| {
        if let Some(line) = report::failure_line(result) {
            println!("{line}");
        }
    }));

    for suite in &suites {
        clean(suite)?;
    }
    results.sort_by(|a, b| (&a.suite, &a.name).cmp(&(&b.suite, &b.name)));
    let summary = Summary::of(&results);
    println!("{summary}");
    let duration = started.elapsed();
    if let Some(path) = &args.json_report {
        report::write_json(path, &results, &executor.describe(), duration)?;
    }
    if let Some(path) = &args.junit {
        let names: Vec<&str> = suites.iter().map(|s| s.name.as_str()).collect();
        report::write_junit(path, &names, &results, duration)?;
    }
    Ok(summary)
}

fn clean(suite: &Suite) -> Result<()> {
    remove_cleanup_files(&suite.dir).with_context(|| format!("removing *.cleanup files in {}", suite.dir.display()))
}

/// `(suite, test) -> reason` from the skip lists, in the reference runner's format.
fn read_skip_lists(paths: &[PathBuf]) -> Result<HashMap<(String, String), String>> {
    let mut skips = HashMap::new();
    for path in paths {
        let text = fs::read_to_string(path).with_context(|| format!("cannot read skip list {}", path.display()))?;
        let lists: HashMap<String, HashMap<String, String>> = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a skip list ({{\"SUITE\": {{\"TEST\": \"reason\"}}}})",
                path.display()
            )
        })?;
        for (suite, tests) in lists {
            for (test, reason) in tests {
                skips.insert((suite.clone(), test), reason);
            }
        }
    }
    Ok(skips)
}
