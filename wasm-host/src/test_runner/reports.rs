//! How a run of `wasm-host test` is reported: on the console as libtest
//! reports, and in the JUnit and JSON reports `conformance` writes.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use conformance::report::{self, Status, TestResult};

use super::libtest::{self, Hue, LibtestArgs, Palette};
use super::{Finished, Plan, Results, Verdict};

/// libtest's console report, pretty or terse.
pub(super) struct Console {
    terse: bool,
    nocapture: bool,
    show_output: bool,
    /// The tests run one at a time: as libtest then does, a test's name
    /// comes before its output (`--nocapture`), not with its verdict.
    one_thread: bool,
    /// Verdicts in libtest's colours, when coloured.
    palette: Option<Palette>,
    /// The tests to report.
    total: usize,
    terse_line: libtest::Terse,
}

impl Console {
    pub(super) fn new(libtest: &LibtestArgs, threads: usize) -> Console {
        Console {
            terse: libtest.terse,
            nocapture: libtest.nocapture,
            show_output: libtest.show_output,
            one_thread: threads == 1,
            palette: (libtest.color)
                .colors(libtest.nocapture, std::io::stdout().is_terminal())
                .then(Palette::of_terminal)
                .flatten(),
            total: 0,
            terse_line: libtest::Terse::default(),
        }
    }

    pub(super) fn start(&mut self, tests: usize) {
        self.total = tests;
        let plural = if tests == 1 { "" } else { "s" };
        println!("\nrunning {tests} test{plural}");
    }

    pub(super) fn finished(&mut self, test: &Finished) {
        let mut out = std::io::stdout().lock();
        let named_first = !self.terse && self.one_thread;
        if named_first {
            let _ = write!(out, "test {} ... ", test.name);
        }
        if self.nocapture {
            // A closed stdout or stderr is the reader's choice; nothing to report to.
            let _ = out.write_all(test.stdout.as_bytes());
            let _ = std::io::stderr().write_all(test.stderr.as_bytes());
            if let Some(reason) = test.reason() {
                eprintln!("{reason}");
            }
        }
        let (word, color) = match (self.terse, &test.verdict) {
            (true, Verdict::Passed) => (".".to_owned(), Hue::Green),
            (true, Verdict::Failed(_)) => ("FAILED".to_owned(), Hue::Red),
            (true, Verdict::Ignored(_)) => ("i".to_owned(), Hue::Yellow),
            (false, Verdict::Passed) => ("ok".to_owned(), Hue::Green),
            (false, Verdict::Failed(_)) => ("FAILED".to_owned(), Hue::Red),
            (false, Verdict::Ignored(None)) => ("ignored".to_owned(), Hue::Yellow),
            (false, Verdict::Ignored(Some(reason))) => (format!("ignored, {reason}"), Hue::Yellow),
        };
        let verdict = Palette::paint(self.palette.as_ref(), &word, color);
        let _ = match (self.terse, &test.verdict) {
            (true, Verdict::Failed(_)) => {
                let end = self.terse_line.failure(self.total).unwrap_or_default();
                writeln!(out, "{end}{} --- {verdict}", test.name)
            }
            (true, _) => {
                let end = self.terse_line.mark(self.total).unwrap_or_default();
                write!(out, "{verdict}{end}")
            }
            (false, _) if named_first => writeln!(out, "{verdict}"),
            (false, _) => writeln!(out, "test {} ... {verdict}", test.name),
        };
        let _ = out.flush();
    }

    /// The sections and the result line, each after a blank line (in the
    /// terse format, after the line of marks).
    pub(super) fn end(&mut self, results: &Results) {
        let with = |wanted: fn(&Verdict) -> bool| -> Vec<&Finished> {
            results.tests.iter().filter(|test| wanted(&test.verdict)).collect()
        };
        if self.show_output {
            self.section("successes", &with(|verdict| matches!(verdict, Verdict::Passed)));
        }
        let failed = with(|verdict| matches!(verdict, Verdict::Failed(_)));
        if !failed.is_empty() {
            self.section("failures", &failed);
        }
        println!(
            "\n{}\n",
            libtest::result_line(&results.counts, results.duration.as_secs_f64(), self.palette.as_ref())
        );
        // libtest's terse format says why when its one test was ignored.
        if let ([test], true) = (&results.tests[..], self.terse)
            && let Verdict::Ignored(Some(reason)) = &test.verdict
        {
            println!("test: {}, ignore_message: {reason}\n", test.name);
        }
    }

    /// libtest's closing list of the tests that passed or failed: each
    /// one's captured output under its name (none under `--nocapture`,
    /// where it came as it was written), then their names, sorted.
    fn section(&self, title: &str, tests: &[&Finished]) {
        println!("\n{title}:");
        let outputs: String = (tests.iter())
            .filter(|_| !self.nocapture)
            .filter_map(|test| {
                let mut output = test.output.clone();
                if let Some(reason) = test.reason() {
                    output += &reason;
                    output.push('\n');
                }
                (!output.is_empty()).then(|| format!("---- {} stdout ----\n{output}\n", test.name))
            })
            .collect();
        if !outputs.is_empty() {
            print!("\n{outputs}");
        }
        println!("\n{title}:");
        let mut names: Vec<&str> = tests.iter().map(|test| test.name.as_str()).collect();
        names.sort_unstable();
        for name in names {
            println!("    {name}");
        }
    }
}

impl Plan {
    /// Writes the reports asked for, through `conformance`'s writers: one
    /// suite, named after the test binary (its crate and cargo's hash).
    pub(super) fn write_reports(&self, results: &Results) -> Result<()> {
        if self.junit.is_none() && self.json_report.is_none() {
            return Ok(());
        }
        let suite = (self.module)
            .file_stem()
            .map_or_else(String::new, |stem| stem.to_string_lossy().into_owned());
        let converted: Vec<TestResult> = results.tests.iter().map(|test| test.as_report(&suite)).collect();
        let run = report::Run {
            name: "wasm-host test",
            suites: &[suite.as_str()],
            results: &converted,
            executor: "wasm-host test",
            partition: None,
            started: results.started,
            duration: results.duration,
        };
        if let Some(path) = &self.junit {
            report::write_junit(path, &run)?;
        }
        if let Some(path) = &self.json_report {
            report::write_json(path, &run)?;
        }
        Ok(())
    }
}

impl Finished {
    fn as_report(&self, suite: &str) -> TestResult {
        let status = match &self.verdict {
            Verdict::Passed => Status::Passed,
            Verdict::Failed(reason) => Status::Failed(vec![reason.clone().unwrap_or_else(|| "failed".to_owned())]),
            Verdict::Ignored(reason) => Status::Skipped(reason.clone().unwrap_or_else(|| "ignored".to_owned())),
        };
        TestResult {
            suite: suite.to_owned(),
            name: self.name.clone(),
            status,
            started: self.started,
            duration: self.duration,
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
        }
    }
}
