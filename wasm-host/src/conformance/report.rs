//! What a conformance run reports: a line per failure and a summary on the
//! console, and on request a JSON report and a JUnit XML file.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use super::execute::{Status, TestResult};

/// Counts of a run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Summary {
    pub fn of<'a>(results: impl IntoIterator<Item = &'a TestResult>) -> Summary {
        let mut summary = Summary::default();
        for result in results {
            match result.status {
                Status::Passed => summary.passed += 1,
                Status::Failed(_) => summary.failed += 1,
                Status::Skipped(_) => summary.skipped += 1,
            }
        }
        summary
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

/// The console line for a failed test, `None` for any other.
pub fn failure_line(result: &TestResult) -> Option<String> {
    match &result.status {
        Status::Failed(failures) => Some(format!(
            "FAIL {}/{}: {}",
            result.suite,
            result.name,
            failures.join("; ")
        )),
        Status::Passed | Status::Skipped(_) => None,
    }
}

/// The JSON report: the runtime, the totals, then every test.
#[derive(Serialize)]
struct JsonReport<'a> {
    runtime: &'static str,
    version: &'static str,
    executor: &'a str,
    passed: usize,
    failed: usize,
    skipped: usize,
    duration_ms: f64,
    tests: Vec<JsonTest<'a>>,
}

#[derive(Serialize)]
struct JsonTest<'a> {
    suite: &'a str,
    name: &'a str,
    status: &'static str,
    duration_ms: f64,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    failures: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    skip_reason: Option<&'a str>,
}

/// Every test with its status, failures or skip reason, and duration.
pub fn write_json(path: &Path, results: &[TestResult], executor: &str, duration: Duration) -> Result<()> {
    let summary = Summary::of(results);
    let report = JsonReport {
        runtime: "wasm-host",
        version: env!("CARGO_PKG_VERSION"),
        executor,
        passed: summary.passed,
        failed: summary.failed,
        skipped: summary.skipped,
        duration_ms: millis(duration),
        tests: results
            .iter()
            .map(|result| JsonTest {
                suite: &result.suite,
                name: &result.name,
                status: status_name(&result.status),
                duration_ms: millis(result.duration),
                failures: match &result.status {
                    Status::Failed(failures) => failures,
                    _ => &[],
                },
                skip_reason: match &result.status {
                    Status::Skipped(reason) => Some(reason),
                    _ => None,
                },
            })
            .collect(),
    };
    let text = serde_json::to_string_pretty(&report).context("encoding the JSON report")?;
    fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// A JUnit XML file: one `<testsuite>` per suite, in the order given.
pub fn write_junit(path: &Path, suites: &[&str], results: &[TestResult], duration: Duration) -> Result<()> {
    let total = Summary::of(results);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        r#"<testsuites name="wasm-host conformance" tests="{}" failures="{}" skipped="{}" time="{:.3}">"#,
        results.len(),
        total.failed,
        total.skipped,
        duration.as_secs_f64()
    );
    for suite in suites {
        let cases: Vec<&TestResult> = results.iter().filter(|r| r.suite == *suite).collect();
        let counts = Summary::of(cases.iter().copied());
        let time = cases.iter().map(|r| r.duration).sum::<Duration>().as_secs_f64();
        let _ = writeln!(
            xml,
            r#"  <testsuite name="{}" tests="{}" failures="{}" skipped="{}" time="{time:.3}">"#,
            escape(suite),
            cases.len(),
            counts.failed,
            counts.skipped
        );
        for case in cases {
            let _ = write!(
                xml,
                r#"    <testcase classname="{}" name="{}" time="{:.3}""#,
                escape(suite),
                escape(&case.name),
                case.duration.as_secs_f64()
            );
            match &case.status {
                Status::Passed => xml.push_str("/>\n"),
                Status::Failed(failures) => {
                    let _ = writeln!(
                        xml,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        escape(&failures[0]),
                        escape(&failures.join("\n"))
                    );
                }
                Status::Skipped(reason) => {
                    let _ = writeln!(
                        xml,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        escape(reason)
                    );
                }
            }
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    fs::write(path, xml).with_context(|| format!("writing {}", path.display()))
}

fn status_name(status: &Status) -> &'static str {
    match status {
        Status::Passed => "passed",
        Status::Failed(_) => "failed",
        Status::Skipped(_) => "skipped",
    }
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

/// Text safe inside an XML attribute or element; characters XML 1.0
/// cannot hold at all become U+FFFD.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\n' => escaped.push_str("&#10;"),
            '\t' | '\r' => escaped.push(c),
            c if (c as u32) < 0x20 => escaped.push('\u{FFFD}'),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, status: Status) -> TestResult {
        TestResult {
            suite: "s".into(),
            name: name.into(),
            status,
            duration: Duration::from_millis(2),
        }
    }

    #[test]
    fn the_summary_mentions_skips_only_when_there_are_some() {
        let mut results = vec![
            result("a", Status::Passed),
            result("b", Status::Failed(vec!["exit code 1, expected 0".into()])),
        ];
        assert_eq!(Summary::of(&results).to_string(), "1 passed, 1 failed");
        results.push(result("c", Status::Skipped("slow".into())));
        assert_eq!(Summary::of(&results).to_string(), "1 passed, 1 failed, 1 skipped");
    }

    #[test]
    fn a_failure_line_names_the_test_and_every_reason() {
        let failed = result("b", Status::Failed(vec!["one".into(), "two".into()]));
        assert_eq!(failure_line(&failed).as_deref(), Some("FAIL s/b: one; two"));
        assert_eq!(failure_line(&result("a", Status::Passed)), None);
    }

    #[test]
    fn xml_escaping_covers_markup_and_control_characters() {
        assert_eq!(
            escape(r#"<a href="x">&</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(escape("bell\u{7}"), "bell\u{FFFD}");
    }
}
