//! What a test run reports: a line per failure and a summary on the
//! console, and on request a JSON report in the reference runner's shape
//! and a JUnit XML file (written with quick-junit, as cargo-nextest does).
//! `docs/conformance.md` describes every field.
//!
//! Any runner can use it: fill a [`TestResult`] per test (suite, name,
//! [`Status`], timing, captured output) and write the [`Run`].
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use wasm_host_conformance::report::{self, Run, Status, TestResult};
//!
//! let mut result = TestResult::skipped("guests", "hello", String::new());
//! result.status = Status::Failed(vec!["exit code 1, expected 0".into()]);
//! result.stdout = "hello\n".into();
//! let run = Run {
//!     name: "wasm-host test",
//!     suites: &["guests"],
//!     results: &[result],
//!     executor: "in-process",
//!     partition: None,
//!     started: SystemTime::now(),
//!     duration: Duration::from_millis(3),
//! };
//! let dir = tempfile::tempdir()?;
//! report::write_junit(&dir.path().join("junit.xml"), &run)?;
//! let xml = std::fs::read_to_string(dir.path().join("junit.xml"))?;
//! assert!(xml.contains(r#"<testsuites name="wasm-host test" tests="1" failures="1""#), "{xml}");
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use quick_xml::events::{BytesStart, Event};
use serde::Serialize;

use host::text::escape_controls;

/// How a test came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Every expectation was met.
    Passed,
    /// An expectation was not met: each, in one line.
    Failed(Vec<String>),
    /// The test could not be run as specified (an invalid specification, a
    /// directory outside the suite, a module that does not load).
    Error(Vec<String>),
    /// Not run, and why.
    Skipped(String),
    /// Failed, as the expectation file said it would (counted as passed).
    ExpectedFailure(Vec<String>),
    /// Passed although the expectation file said it would fail (counted as failed).
    UnexpectedPass(String),
}

/// One test's result.
#[derive(Debug, Clone)]
pub struct TestResult {
    /// The suite it belongs to: a `<testsuite>` in JUnit, a `results` entry in JSON.
    pub suite: String,
    /// The test's name within its suite.
    pub name: String,
    /// How it came out.
    pub status: Status,
    /// When it started, from the start of the run.
    pub started: Duration,
    /// How long it ran.
    pub duration: Duration,
    /// What the guest wrote to stdout (every run of the test, in order).
    pub stdout: String,
    /// What the guest wrote to stderr.
    pub stderr: String,
}

impl TestResult {
    /// A test that is not run.
    pub fn skipped(suite: &str, test: &str, reason: String) -> TestResult {
        TestResult {
            suite: suite.to_owned(),
            name: test.to_owned(),
            status: Status::Skipped(reason),
            started: Duration::ZERO,
            duration: Duration::ZERO,
            stdout: String::new(),
            stderr: String::new(),
        }
    }
}

/// Counts of a run. `passed` includes the expected failures, `failed` the
/// errors and unexpected passes, as the reference runner counts them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Passed, or failed as expected.
    pub passed: usize,
    /// Failed, could not run, or passed unexpectedly.
    pub failed: usize,
    /// Not run.
    pub skipped: usize,
    /// Failed as the expectation file said (counted in `passed` too).
    pub expected_failures: usize,
    /// Passed although expected to fail (counted in `failed` too).
    pub unexpected_passes: usize,
    /// Tests that could not be run (counted in `failed` too).
    pub errors: usize,
}

impl Summary {
    /// The counts of `results`.
    pub fn of<'a>(results: impl IntoIterator<Item = &'a TestResult>) -> Summary {
        let mut summary = Summary::default();
        for result in results {
            match result.status {
                Status::Passed => summary.passed += 1,
                Status::Failed(_) => summary.failed += 1,
                Status::Error(_) => {
                    summary.failed += 1;
                    summary.errors += 1;
                }
                Status::Skipped(_) => summary.skipped += 1,
                Status::ExpectedFailure(_) => {
                    summary.passed += 1;
                    summary.expected_failures += 1;
                }
                Status::UnexpectedPass(_) => {
                    summary.failed += 1;
                    summary.unexpected_passes += 1;
                }
            }
        }
        summary
    }

    /// `N failed as expected, N passed unexpectedly`, when any did.
    pub fn expectations_line(&self) -> Option<String> {
        (self.expected_failures + self.unexpected_passes > 0).then(|| {
            format!(
                "{} failed as expected, {} passed but were expected to fail",
                self.expected_failures, self.unexpected_passes
            )
        })
    }
}

/// `N passed, N failed`, plus `, N skipped` when any were.
impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)?;
        if self.skipped > 0 {
            write!(f, ", {} skipped", self.skipped)?;
        }
        Ok(())
    }
}

/// The console line for a test that fails the run, `None` for any other.
/// Control characters (from suite or test names, or guest output) are escaped.
pub fn failure_line(result: &TestResult) -> Option<String> {
    let line = match &result.status {
        Status::Failed(failures) | Status::Error(failures) => {
            format!("FAIL {}/{}: {}", result.suite, result.name, failures.join("; "))
        }
        Status::UnexpectedPass(reason) => format!(
            "XPASS {}/{}: passed but was expected to fail ({reason}): update the expectation file",
            result.suite, result.name
        ),
        _ => return None,
    };
    Some(escape_controls(&line))
}

/// Whether a test of this status fails the run (and counts as failed).
pub fn fails_the_run(status: &Status) -> bool {
    matches!(status, Status::Failed(_) | Status::Error(_) | Status::UnexpectedPass(_))
}

/// The reference runner's outcome names.
pub fn outcome(status: &Status) -> &'static str {
    match status {
        Status::Passed => "pass",
        Status::Failed(_) | Status::Error(_) => "fail",
        Status::Skipped(_) => "skip",
        Status::ExpectedFailure(_) => "xfail",
        Status::UnexpectedPass(_) => "xpass",
    }
}

fn failures(status: &Status) -> &[String] {
    match status {
        Status::Failed(failures) | Status::Error(failures) | Status::ExpectedFailure(failures) => failures,
        _ => &[],
    }
}

/// A run, as the reports need it.
pub struct Run<'a> {
    /// The run's name (JUnit's `<testsuites name>`), e.g. `wasm-host conformance`.
    pub name: &'a str,
    /// Suite names in the order given.
    pub suites: &'a [&'a str],
    /// Every result, sorted by suite and test.
    pub results: &'a [TestResult],
    /// How the tests ran (`in-process`, `adapter PATH`), in the JSON report.
    pub executor: &'a str,
    /// `hash:K/N` or `count:K/N` when the run is one partition.
    pub partition: Option<String>,
    /// When the run started.
    pub started: SystemTime,
    /// How long the whole run took.
    pub duration: Duration,
}

impl Run<'_> {
    fn suite_results<'s>(&'s self, suite: &'s str) -> impl Iterator<Item = &'s TestResult> + 's {
        self.results.iter().filter(move |r| r.suite == suite)
    }

    /// From the first of the suite's tests starting to the last ending
    /// (tests run at once, so this is less than the sum of their times).
    fn suite_time(&self, suite: &str) -> Duration {
        let ran = || {
            self.suite_results(suite)
                .filter(|r| !matches!(r.status, Status::Skipped(_)))
        };
        let first = ran().map(|r| r.started).min().unwrap_or_default();
        let last = ran().map(|r| r.started + r.duration).max().unwrap_or_default();
        (last - first).min(self.duration)
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    execution: JsonExecution,
    results: Vec<JsonSuite<'a>>,
}

#[derive(Serialize)]
struct JsonExecution {
    start_timestamp: String,
    finish_timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    partition: Option<String>,
}

#[derive(Serialize)]
struct JsonSuite<'a> {
    name: &'a str,
    runtime: JsonRuntime<'a>,
    duration_s: f64,
    failed: usize,
    skipped: usize,
    passed: usize,
    xfailed: usize,
    xpassed: usize,
    tests: Vec<JsonTest<'a>>,
}

#[derive(Serialize)]
struct JsonRuntime<'a> {
    name: &'static str,
    version: &'static str,
    executor: &'a str,
}

#[derive(Serialize)]
struct JsonTest<'a> {
    name: &'a str,
    executed: bool,
    outcome: &'static str,
    duration_s: f64,
    failures: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

fn timestamp(time: SystemTime) -> String {
    DateTime::<Utc>::from(time).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The JSON report: the reference runner's `execution` and `results`
/// (one entry per suite), with a few fields of ours.
pub fn write_json(path: &Path, run: &Run<'_>) -> Result<()> {
    let results = run
        .suites
        .iter()
        .map(|suite| {
            let counts = Summary::of(run.suite_results(suite));
            JsonSuite {
                name: suite,
                runtime: JsonRuntime {
                    name: "wasm-host",
                    version: env!("CARGO_PKG_VERSION"),
                    executor: run.executor,
                },
                duration_s: run.suite_time(suite).as_secs_f64(),
                failed: counts.failed,
                skipped: counts.skipped,
                passed: counts.passed,
                xfailed: counts.expected_failures,
                xpassed: counts.unexpected_passes,
                tests: run
                    .suite_results(suite)
                    .map(|result| JsonTest {
                        name: &result.name,
                        executed: !matches!(result.status, Status::Skipped(_)),
                        outcome: outcome(&result.status),
                        duration_s: result.duration.as_secs_f64(),
                        failures: failures(&result.status),
                        reason: match &result.status {
                            Status::Skipped(reason) | Status::UnexpectedPass(reason) => Some(reason),
                            _ => None,
                        },
                    })
                    .collect(),
            }
        })
        .collect();
    let report = JsonReport {
        execution: JsonExecution {
            start_timestamp: timestamp(run.started),
            finish_timestamp: timestamp(run.started + run.duration),
            partition: run.partition.clone(),
        },
        results,
    };
    let text = serde_json::to_string_pretty(&report).context("encoding the JSON report")?;
    replace(path, (text + "\n").as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// Writes `contents` to a new file beside `path`, then moves it over
/// `path`: a link at `path` (a guest may have planted one, where a report
/// goes into a directory it was granted) is replaced, not written through.
fn replace(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(name);
    let written = (fs::File::options().write(true).create_new(true).open(&temporary))
        .and_then(|mut file| std::io::Write::write_all(&mut file, contents))
        .and_then(|()| fs::rename(&temporary, path));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

/// A JUnit XML file: one `<testsuite>` per suite, in the order given,
/// valid against the schema Jenkins' xunit plugin checks (`junit-10.xsd`).
/// An expected failure is a passed test case, as the console and the JSON
/// report count it; its suite's properties name it (`xfail`).
pub fn write_junit(path: &Path, run: &Run<'_>) -> Result<()> {
    let started = DateTime::<Utc>::from(run.started).fixed_offset();
    // No timestamp on <testsuites>: junit-10.xsd allows it on <testsuite> only.
    let mut report = Report::new(run.name);
    report.set_time(run.duration);
    for suite in run.suites {
        let mut junit_suite = TestSuite::new(*suite);
        junit_suite.set_timestamp(started).set_time(run.suite_time(suite));
        if let Some(partition) = &run.partition {
            junit_suite.add_property(("partition", partition.as_str()));
        }
        for result in run.suite_results(suite) {
            if let Status::ExpectedFailure(failures) = &result.status {
                let failed = format!("{}: failed as expected: {}", result.name, failures.join("; "));
                junit_suite.add_property(("xfail", failed.as_str()));
            }
            let mut case = TestCase::new(result.name.as_str(), junit_status(&result.status));
            case.set_classname(*suite).set_time(result.duration);
            if !result.stdout.is_empty() {
                case.set_system_out(result.stdout.as_str());
            }
            if !result.stderr.is_empty() {
                case.set_system_err(result.stderr.as_str());
            }
            junit_suite.add_test_case(case);
        }
        report.add_test_suite(junit_suite);
    }
    let write = || -> Result<()> {
        let xml = without_total_skipped(&report.to_string()?)?;
        replace(path, &xml)?;
        Ok(())
    };
    write().with_context(|| format!("writing {}", path.display()))
}

/// `xml` without the `skipped` quick-junit always writes on `<testsuites>`,
/// which junit-10.xsd does not allow there (each `<testsuite>` keeps its own).
fn without_total_skipped(xml: &str) -> Result<Vec<u8>> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut writer = quick_xml::Writer::new(Vec::new());
    loop {
        match reader.read_event()? {
            Event::Eof => return Ok(writer.into_inner()),
            Event::Start(tag) if tag.name().as_ref() == b"testsuites" => {
                let mut kept = BytesStart::new("testsuites");
                for attribute in tag.attributes() {
                    let attribute = attribute?;
                    if attribute.key.as_ref() != b"skipped" {
                        kept.push_attribute(attribute);
                    }
                }
                writer.write_event(Event::Start(kept))?;
            }
            event => writer.write_event(event)?,
        }
    }
}

/// A failure is an unmet expectation, an error a test that could not be run;
/// an expected failure passed (it did what the expectation file says).
fn junit_status(status: &Status) -> TestCaseStatus {
    let non_success = |kind, kind_name: &str, messages: &[String]| {
        let mut status = TestCaseStatus::non_success(kind);
        status
            .set_type(kind_name)
            .set_message(messages.first().map_or("", String::as_str))
            .set_description(messages.join("\n"));
        status
    };
    match status {
        Status::Passed | Status::ExpectedFailure(_) => TestCaseStatus::success(),
        Status::Failed(failures) => non_success(NonSuccessKind::Failure, "expectation mismatch", failures),
        Status::Error(failures) => non_success(NonSuccessKind::Error, "not run", failures),
        Status::UnexpectedPass(reason) => non_success(
            NonSuccessKind::Failure,
            "unexpected pass",
            &[format!("passed but was expected to fail ({reason})")],
        ),
        Status::Skipped(reason) => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(reason.as_str());
            status
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, status: Status) -> TestResult {
        let mut result = TestResult::skipped("s", name, String::new());
        result.status = status;
        result.duration = Duration::from_millis(2);
        result
    }

    #[test]
    fn the_summary_counts_as_the_reference_runner_does() {
        let mut results = vec![
            result("a", Status::Passed),
            result("b", Status::Failed(vec!["exit code 1, expected 0".into()])),
        ];
        assert_eq!(Summary::of(&results).to_string(), "1 passed, 1 failed");
        assert_eq!(Summary::of(&results).expectations_line(), None);
        results.push(result("c", Status::Skipped("slow".into())));
        results.push(result("d", Status::ExpectedFailure(vec!["x".into()])));
        results.push(result("e", Status::UnexpectedPass("bug 1".into())));
        results.push(result("f", Status::Error(vec!["invalid f.json".into()])));
        let summary = Summary::of(&results);
        assert_eq!(summary.to_string(), "2 passed, 3 failed, 1 skipped");
        assert_eq!(
            summary.expectations_line().as_deref(),
            Some("1 failed as expected, 1 passed but were expected to fail")
        );
    }

    #[test]
    fn a_failure_line_names_the_test_and_every_reason_escaped() {
        let failed = result("b\u{1b}[1m", Status::Failed(vec!["one".into(), "two".into()]));
        assert_eq!(failure_line(&failed).as_deref(), Some(r"FAIL s/b\u{1b}[1m: one; two"));
        let stale = result("e", Status::UnexpectedPass("bug 1".into()));
        assert_eq!(
            failure_line(&stale).as_deref(),
            Some("XPASS s/e: passed but was expected to fail (bug 1): update the expectation file")
        );
        assert_eq!(failure_line(&result("a", Status::Passed)), None);
        assert_eq!(failure_line(&result("d", Status::ExpectedFailure(vec![]))), None);
    }
}
