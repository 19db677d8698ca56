//! What a run shows while it goes, on stderr (stdout keeps the failures
//! and the summary): on a terminal a live bar (tests done of all, failures,
//! time); elsewhere, as in a CI log, a line per finished test, as
//! cargo-nextest prints; nothing with `-q`.

use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::report;
use super::report::TestResult;
use host::text::escape_controls;

/// How progress is shown.
pub struct Progress {
    shown: Shown,
    total: usize,
    done: usize,
    failed: usize,
}

enum Shown {
    Nothing,
    Bar(ProgressBar),
    Lines,
}

impl Progress {
    /// Progress of `total` tests: a bar when stderr is a terminal, lines
    /// when it is not, nothing when `quiet`.
    pub fn new(total: usize, quiet: bool) -> Progress {
        let shown = match (quiet, io::stderr().is_terminal()) {
            (true, _) => Shown::Nothing,
            (false, true) => {
                let bar = ProgressBar::new(total as u64).with_style(
                    ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {msg}")
                        .expect("a constant template")
                        .progress_chars("=> "),
                );
                // Shown at once, and the clock moves while the first tests compile.
                bar.tick();
                bar.enable_steady_tick(Duration::from_millis(200));
                Shown::Bar(bar)
            }
            (false, false) => Shown::Lines,
        };
        Progress {
            shown,
            total,
            done: 0,
            failed: 0,
        }
    }

    /// Shows that `result` has finished; `print` writes the run's own
    /// lines for it (on stdout), which the bar steps aside for.
    pub fn finished(&mut self, result: &TestResult, print: impl FnOnce()) {
        self.done += 1;
        if report::fails_the_run(&result.status) {
            self.failed += 1;
        }
        match &self.shown {
            Shown::Nothing => print(),
            Shown::Bar(bar) => {
                bar.suspend(print);
                bar.set_message(format!("{} failed", self.failed));
                bar.inc(1);
            }
            Shown::Lines => {
                print();
                let width = self.total.to_string().len();
                let line = format!(
                    "[{:>width$}/{}] {:<5} {:>7.3}s {}/{}",
                    self.done,
                    self.total,
                    report::outcome(&result.status).to_uppercase(),
                    result.duration.as_secs_f64(),
                    result.suite,
                    result.name,
                );
                // Nowhere left to show progress when stderr is closed.
                let _ = writeln!(io::stderr().lock(), "{}", escape_controls(&line));
            }
        }
    }

    /// The run is over: the bar goes, leaving the summary alone.
    pub fn finish(self) {
        if let Shown::Bar(bar) = self.shown {
            bar.finish_and_clear();
        }
    }
}
