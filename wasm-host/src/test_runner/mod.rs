//! `wasm-host test`: cargo's target runner for wasm32-wasip1 and
//! wasm32-wasip2 test binaries (`runner = "wasm-host test"`). A libtest
//! harness has its tests listed, then each runs alone in a fresh instance
//! of the module compiled once, many at once, reported as libtest reports
//! them; anything else runs once, as `wasm-host run` would run it.

mod durations;
mod libtest;
mod metadata;
mod reports;
mod runs;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use clap::Args;
use host::{GuestModule, Limits, RunOutcome, Sandbox, Termination};
use memchr::memmem;

use crate::grants::GrantArgs;
use crate::limits::{LimitArgs, Output, RuntimePlan};
use crate::status::{self, Failure};
use durations::Durations;
use libtest::{Backtrace, Counts, LibtestArgs, Selection};
use metadata::TestMetadata;
use reports::Console;
use runs::{Ended, Ending, Runs};

const TEST_HELP: &str = "\
Set it as cargo's runner, in .cargo/config.toml:
    [target.wasm32-wasip1]
    runner = \"wasm-host test\"
    [target.wasm32-wasip2]
    runner = \"wasm-host test\"
or CARGO_TARGET_WASM32_WASIP1_RUNNER=\"wasm-host test\"; options go after
`test` (`runner = \"wasm-host test --timeout 30s\"`), and `cargo test -- ARGS`
reaches the tests.

A libtest harness (found by libtest's entry point in the module's name
section) has its tests listed, then each runs alone in a fresh instance of
the module compiled once, --test-threads at once (default: the CPUs), with
libtest's own report: `test NAME ... ok|FAILED|ignored`, each failure's
output, `test result: ...`. A test that panics, traps or passes its
--timeout fails alone. Filters, --exact, --skip, --ignored,
--include-ignored, --nocapture, --show-output, --test-threads, --color, -q
and --format terse are honoured, as are RUST_TEST_NOCAPTURE,
RUST_TEST_THREADS and RUST_BACKTRACE (a failed test's wasm frames, `1`
those of its own code, `full` all); any other argument (--list, --bench, --format json)
leaves the run to the harness itself in one instance, as does a module
that is no harness, and rustdoc's merged doctests (edition 2024), whose
arguments are compiled in (no --timeout for them: it is each test's);
such a run that traps gets all its frames under RUST_BACKTRACE.
Each test's duration is remembered beside the binary
(BINARY.wasm-host-durations): the next run starts the longest first.

Grants and limits: the options below, and the tested package's
[package.metadata.wasm-host.test] (dirs-ro, dirs, env, timeout, max-memory;
found through CARGO_MANIFEST_DIR, which cargo sets); an option given here
wins over the package's limit. Nothing is granted unless asked for.

Exit status: 0 when every test passed, 101 when one failed (as libtest), 126
when the module cannot be loaded or listed; a run left to the harness exits
as `wasm-host run` does.";

// Described on `Command::Test` in main.rs.
#[derive(Args, Debug)]
#[command(
    override_usage = "wasm-host test [OPTIONS] <MODULE> [LIBTEST ARGS]...",
    after_help = TEST_HELP
)]
pub struct TestArgs {
    #[command(flatten)]
    grants: GrantArgs,

    #[command(flatten)]
    limits: LimitArgs,

    /// Write a JUnit XML report to FILE (the same writer as `conformance`)
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,

    /// Write every test's outcome as JSON (the same writer as `conformance`) to FILE
    #[arg(long, value_name = "FILE")]
    json_report: Option<PathBuf>,

    /// The test binary (.wasm, a module or a component), then libtest's arguments
    #[arg(value_name = "MODULE", required = true, num_args = 1.., trailing_var_arg = true)]
    module_and_args: Vec<String>,
}

/// libtest's status when a test failed.
const FAILED: u8 = 101;

/// The frames of a failed test's backtrace kept when `RUST_BACKTRACE`
/// asks for it: std prints them all natively; a stack overflow has
/// thousands, each captured at the trap.
const BACKTRACE_FRAMES: usize = 1000;

impl TestArgs {
    /// Every decision the options make, taken once, before anything is read.
    pub fn plan(self) -> Result<Plan, Failure> {
        let Some((module, args)) = self.module_and_args.split_first() else {
            return Err(Failure::Usage("no MODULE given".to_owned()));
        };
        // RUST_BACKTRACE asks for a failed test's frames (a harness's test,
        // or a program run whole): enough of them to reach its own code,
        // which a panic's own frames and a test's helpers put past
        // Wasmtime's default twenty.
        let backtrace = Backtrace::of(std::env::var("RUST_BACKTRACE").ok().as_deref());
        let frames = match backtrace {
            Backtrace::Off => host::RuntimeConfig::default().backtrace_frames,
            Backtrace::Short | Backtrace::Full => BACKTRACE_FRAMES,
        };
        Ok(Plan {
            module: PathBuf::from(module),
            libtest: libtest::parse(args).map(|libtest| libtest.with_environment(|name| std::env::var(name).ok())),
            args: args.to_vec(),
            backtrace,
            runtime: self.limits.runtime().backtrace_frames(frames),
            tests_runtime: self.limits.pooled_runtime_without_epochs().backtrace_frames(frames),
            // Each test runs on a worker's stack: room for --max-stack of
            // wasm, and the host's own frames.
            stack_size: self.limits.max_stack() + (2 << 20),
            limits: self.limits,
            grants: self.grants,
            junit: self.junit,
            json_report: self.json_report,
        })
    }
}

/// What `test` does, decided from its options.
pub struct Plan {
    module: PathBuf,
    /// libtest's arguments after MODULE.
    args: Vec<String>,
    /// What RUST_BACKTRACE asks for.
    backtrace: Backtrace,
    /// libtest's reading of them (and of its environment: its error, for
    /// a harness); `None` leaves the run to the harness.
    libtest: Option<Result<LibtestArgs, String>>,
    grants: GrantArgs,
    /// The limit flags, applied over the tested package's own limits when
    /// its manifest is read.
    limits: LimitArgs,
    /// For a run left to the harness, and for the tests that start after
    /// one was abandoned at its timeout: guests compiled with epoch checks.
    runtime: RuntimePlan,
    /// For a harness's tests: guests compiled without epoch checks, which
    /// slow a test's own code (docs/performance.md); a test past its
    /// timeout is reported by `runs` instead.
    tests_runtime: RuntimePlan,
    /// Of each test's thread.
    stack_size: usize,
    junit: Option<PathBuf>,
    json_report: Option<PathBuf>,
}

impl Plan {
    /// Runs the tests, or the module once when it is no harness (or the
    /// arguments are libtest's own to handle), and returns the status.
    pub fn execute(self) -> Result<u8, Failure> {
        let metadata = match std::env::var_os("CARGO_MANIFEST_DIR") {
            Some(dir) => TestMetadata::read(Path::new(&dir))?,
            None => TestMetadata::default(),
        };
        let package = metadata.limits(Limits::default())?;
        // Each test's output is kept, to be reported; a run left to the
        // harness streams it.
        let limits = self.limits.limits_over(package.clone(), Output::Captured);
        // Read as `wasm-host run` reads it: a FIFO or a device refused
        // before a byte is read, no more than the size limit. Loaded from
        // its path, a file the disk cache knows unchanged is not hashed.
        let tests_runtime = self.tests_runtime.build().map_err(Failure::load(&self.module))?;
        let file = (tests_runtime.open_module_file(&self.module)).map_err(Failure::load(&self.module))?;
        let binary = Binary::of(file).with_context(|| format!("reading {}", self.module.display()))?;
        let load =
            |runtime: &host::Runtime| -> Result<GuestModule> { Ok(runtime.load_file_for(&self.module, &limits)?) };
        let sandbox = (self.grants)
            .apply(Sandbox::new().limits(limits.clone()))
            .map_err(anyhow::Error::msg)?;
        let sandbox = metadata.grant(sandbox)?;
        match self.libtest.as_ref().filter(|_| binary == Binary::Harness) {
            Some(libtest) => {
                let libtest = libtest.as_ref().map_err(|refused| Failure::Usage(refused.clone()))?;
                let tests = Tests {
                    module: load(&tests_runtime)?,
                    checked: &|| load(&self.runtime.build()?),
                    sandbox: &sandbox,
                    stack_size: self.stack_size,
                    timeout: limits.timeout,
                    durations: &self.module,
                };
                let results = tests.run(libtest)?;
                self.write_reports(&results)?;
                Ok(results.status())
            }
            None => {
                let module = load(&self.runtime.build().map_err(Failure::load(&self.module))?)?;
                let streamed = self.limits.limits_over(package, Output::Streamed);
                let backtrace = self.backtrace != Backtrace::Off;
                let mut ended = run_whole(&module, &self.module, sandbox.limits(streamed), &self.args, backtrace);
                if let (Binary::MergedDoctests, Err(Failure::Trapped { message, trap, .. })) = (binary, &mut ended) {
                    // Merged doctests are many tests in one instance: one's
                    // trap ends them all, and the timeout, each test's, is
                    // theirs together (one that never ends must still end).
                    message.push_str(match status::for_trap(trap) {
                        status::TIMEOUT => {
                            "; under a runner rustdoc runs a crate's doctests in one instance, so the timeout of \
                             one test is theirs together: raise it (--timeout, or the package's `timeout`) if \
                             they need longer"
                        }
                        _ => {
                            "; under a runner rustdoc runs a crate's doctests in one instance, so this \
                             doctest's trap ended the rest (`cargo test --doc -- --nocapture` shows its panic \
                             message)"
                        }
                    });
                }
                ended
            }
        }
    }
}

/// What a test binary is, read from its bytes, so that no guest runs with
/// arguments it does not expect.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Binary {
    /// A libtest harness: its name section names libtest's entry point,
    /// `test::test_main_static` (cargo's test profiles keep the name
    /// section; a component's core module is in its bytes too). One whose
    /// names were stripped runs as a plain program: its tests then run in
    /// one instance, one after the other.
    Harness,
    /// rustdoc's merged doctests (edition 2024): a harness whose arguments
    /// are compiled in, so it cannot be asked for its list or for one
    /// test. Natively it spawns itself once per doctest; under a runner
    /// rustdoc has it run them all in its one process (instance).
    MergedDoctests,
    Program,
}

impl Binary {
    /// Read through a piece at a time: a test binary is often tens of
    /// megabytes.
    fn of(mut file: impl Read) -> std::io::Result<Binary> {
        const ENTRY: &[u8] = b"test_main_static";
        // What the merged doctests' `main` reads to run one doctest, and
        // the crate rustdoc names their runner (`doctest_runner_2024`) in
        // the name section: the variable alone may be named by any code.
        const DOCTEST_SELECTOR: &[u8] = b"RUSTDOC_DOCTEST_RUN_NB_TEST";
        const DOCTEST_RUNNER: &[u8] = b"doctest_runner_";
        const NAMES: [&[u8]; 3] = [ENTRY, DOCTEST_SELECTOR, DOCTEST_RUNNER];
        let mut buffer = vec![0; 256 << 10];
        // What is kept of each piece for the next: a name split between them.
        let mut kept = 0;
        // The whole file is searched (the doctests' names may come after
        // the entry point): memchr's, a test binary's megabytes in a
        // fraction of a millisecond.
        let finders = NAMES.map(memmem::Finder::new);
        let mut found = [false; NAMES.len()];
        loop {
            let read = match file.read(&mut buffer[kept..]) {
                Ok(0) => return Ok(if found[0] { Binary::Harness } else { Binary::Program }),
                Ok(read) => read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            let filled = kept + read;
            for (found, finder) in found.iter_mut().zip(&finders) {
                *found = *found || finder.find(&buffer[..filled]).is_some();
            }
            if found[1] && found[2] {
                return Ok(Binary::MergedDoctests);
            }
            kept = filled.min(DOCTEST_SELECTOR.len() - 1);
            buffer.copy_within(filled - kept..filled, 0);
        }
    }
}

/// Runs the module once with `args`, as `wasm-host run` does: its streams
/// are ours, its exit code our status; a trap's wasm frames, all of them,
/// when `backtrace`.
fn run_whole(
    module: &GuestModule,
    path: &Path,
    sandbox: Sandbox,
    args: &[String],
    backtrace: bool,
) -> Result<u8, Failure> {
    let sandbox = sandbox
        .args(args.iter().cloned())
        .inherit_stdin()
        .inherit_stdout()
        .inherit_stderr();
    let outcome = sandbox.run(module).map_err(Failure::load(path))?;
    status::report_truncation(module.name(), &outcome);
    match &outcome.termination {
        Termination::Exited(code) => Ok(u8::try_from(*code).unwrap_or(status::TRAP)),
        Termination::Trapped(trap) => Err(Failure::trapped(module.name(), &outcome, trap, backtrace)),
    }
}

/// A harness's tests, each run alone in an instance of its own, on a
/// thread of its own.
struct Tests<'a> {
    /// Compiled without epoch checks: a test past its timeout is reported
    /// as timed out, its thread left computing until the process exits.
    module: GuestModule,
    /// The module compiled with epoch checks, for the tests that start
    /// after one was abandoned so: no more than the tests then in flight
    /// are ever left computing.
    checked: &'a dyn Fn() -> Result<GuestModule>,
    sandbox: &'a Sandbox,
    stack_size: usize,
    /// Each test's and each listing's, kept by the runner for guests of
    /// `module`.
    timeout: Option<Duration>,
    /// The test binary, beside which the tests' durations are remembered
    /// from one run to the next.
    durations: &'a Path,
}

/// How one test ended.
#[derive(Debug)]
enum Verdict {
    Passed,
    /// Why, when more than libtest's own failure: a trap, a timeout, an exit code.
    Failed(Option<String>),
    /// Why, when it says: the reason the `ignore` attribute gives.
    Ignored(Option<String>),
}

/// Why a `#[should_panic]` test is reported as ignored.
const SHOULD_PANIC: &str = "#[should_panic] cannot be checked where a panic aborts (wasm); run it natively";

/// One test's ending, output and timing.
struct Finished {
    name: String,
    verdict: Verdict,
    /// A trapped test's wasm backtrace, as `RUST_BACKTRACE` asks.
    backtrace: Option<String>,
    stdout: String,
    stderr: String,
    /// Both in one, in the order written, as libtest captures them.
    output: String,
    /// From the start of the run.
    started: Duration,
    duration: Duration,
}

/// Every test's ending, and the run's.
struct Results {
    /// In the harness's order.
    tests: Vec<Finished>,
    counts: Counts,
    started: SystemTime,
    duration: Duration,
}

impl Results {
    fn status(&self) -> u8 {
        if self.counts.failed == 0 { 0 } else { FAILED }
    }
}

impl Tests<'_> {
    /// Every test the harness lists, and those of them it marks ignored:
    /// both listings at once, on `runs`' workers.
    fn list(&self, runs: &mut Runs) -> Result<(Vec<String>, Vec<String>)> {
        let listings = [&libtest::LIST[..], &libtest::LIST_IGNORED[..]];
        for (id, args) in listings.iter().enumerate() {
            let sandbox = self.sandbox.clone().args(args.iter().copied());
            runs.start(id, &self.module, sandbox, self.timeout)?;
        }
        let mut listed = [Vec::new(), Vec::new()];
        while let Some(ended) = runs.next() {
            if !matches!(&ended.ending, Ending::Ran(Ok(outcome)) if outcome.success()) {
                // What the guest said of it, as `wasm-host run` would show it.
                let _ = std::io::stderr().write_all(ended.stderr.as_bytes());
                bail!(
                    "listing the tests of {} ({}): {}",
                    self.module.name(),
                    listings[ended.id].join(" "),
                    ended.ending
                );
            }
            if let Ending::Ran(Ok(outcome)) = &ended.ending
                && outcome.stdout_truncated
            {
                bail!(
                    "listing the tests of {}: the list was cut at the --max-output limit (raise it with --max-output)",
                    self.module.name()
                );
            }
            listed[ended.id] = libtest::listed_tests(&ended.stdout);
        }
        let [all, ignored] = listed;
        Ok((all, ignored))
    }

    /// The reasons the harness gives for ignoring `tests` (the `ignore`
    /// attribute's text), by name: one instance asked to run them all, which
    /// libtest reports as ignored without running any. Best effort: a
    /// harness that says nothing of them leaves them without a reason.
    fn ignore_reasons(&self, runs: &mut Runs, tests: &[&String]) -> Result<HashMap<String, String>> {
        if tests.is_empty() {
            return Ok(HashMap::new());
        }
        let args = (["--exact", "--test-threads", "1"].into_iter().map(str::to_owned))
            .chain(tests.iter().map(|name| name.to_string()));
        // An id no test has: were this run abandoned at its timeout, its
        // late ending must not be taken for a test's.
        runs.start(usize::MAX, &self.module, self.sandbox.clone().args(args), self.timeout)?;
        let mut reasons = HashMap::new();
        while let Some(ended) = runs.next() {
            reasons.extend(libtest::ignore_reasons(&ended.stdout));
        }
        Ok(reasons)
    }

    fn run(&self, libtest: &LibtestArgs) -> Result<Results> {
        let started = (SystemTime::now(), Instant::now());
        // Before any guest runs (a listing is one).
        let mut durations = Durations::beside(self.durations);
        let mut runs = Runs::new(self.stack_size);
        let (listed, ignored) = self.list(&mut runs)?;
        let ignored: HashSet<String> = ignored.into_iter().collect();
        let reported_ignored: Vec<&String> = (listed.iter())
            .filter(|name| ignored.contains(*name) && libtest.selects(name) && libtest.runs(true) == Selection::Ignored)
            .collect();
        let mut reasons = self.ignore_reasons(&mut runs, &reported_ignored)?;
        let mut counts = Counts::default();
        let mut tests = Vec::new();
        let mut to_run = Vec::new();
        // Each with the index in `to_run` of the test after it.
        let mut ignored_tests = Vec::new();
        for name in &listed {
            let name = name.clone();
            let selection = match libtest.selects(&name) {
                true => libtest.runs(ignored.contains(&name)),
                false => Selection::FilteredOut,
            };
            match selection {
                Selection::FilteredOut => counts.filtered_out += 1,
                Selection::Ignored => {
                    let reason = reasons.remove(&name);
                    ignored_tests.push((to_run.len(), Finished::ignored(name, reason)));
                }
                Selection::Run => to_run.push(name),
            }
        }
        let threads = libtest
            .test_threads
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get);
        let mut console = Console::new(libtest, threads);
        console.start(ignored_tests.len() + to_run.len());
        // libtest reports an ignored test as its turn comes: on many
        // threads at once, on one in the harness's order, before the test
        // after it starts.
        let mut ignored_tests = ignored_tests.into_iter().peekable();
        let mut report_ignored = |before: usize, console: &mut Console, tests: &mut Vec<Finished>| {
            while let Some((_, test)) = ignored_tests.next_if(|(at, _)| threads > 1 || *at <= before) {
                console.finished(&test);
                tests.push(test);
            }
        };
        report_ignored(0, &mut console, &mut tests);
        // The module the tests still to start run in, and the timeout the
        // runner keeps for them: none once they have epoch checks.
        let (mut module, mut timeout) = (self.module.clone(), self.timeout);
        // Longest first on many threads; on one, the order changes no
        // wall time, and the harness's is the one a reader expects.
        let mut schedule = match threads {
            1 => (0..to_run.len()).collect(),
            _ => durations.schedule(&to_run),
        }
        .into_iter();
        loop {
            while runs.in_flight() < threads
                && let Some(id) = schedule.next()
            {
                report_ignored(id, &mut console, &mut tests);
                let sandbox = self.sandbox.clone().args(libtest::one_test(&to_run[id]));
                runs.start(id, &module, sandbox, timeout)?;
            }
            let Some(ended) = runs.next() else { break };
            let name = &to_run[ended.id];
            if let Ending::TimedOut(_) = ended.ending {
                // Why the rest of the run may be slower: one core fewer.
                let note = format!("wasm-host: {name} computes on past its timeout, left running until the run ends");
                eprintln!("{}", status::escape_controls(&note));
                // The first such: the tests still to start get epoch
                // checks, and the library keeps their timeout.
                if timeout.take().is_some() {
                    module = (self.checked)()?;
                }
            }
            durations.record(name, ended.duration);
            let finished = Finished::new(name.clone(), &ended, started.1, libtest.backtrace);
            console.finished(&finished);
            tests.push(finished);
        }
        report_ignored(to_run.len(), &mut console, &mut tests);
        for test in &tests {
            match test.verdict {
                Verdict::Passed => counts.passed += 1,
                Verdict::Failed(_) => counts.failed += 1,
                Verdict::Ignored(_) => counts.ignored += 1,
            }
        }
        // Best effort: a binary in a directory this user cannot write just
        // runs in listing order next time.
        let _ = durations.write(&listed);
        // The ignored first, then the harness's order.
        let order: HashMap<&str, usize> = (to_run.iter().enumerate())
            .map(|(i, name)| (name.as_str(), i))
            .collect();
        tests.sort_by_key(|test| order.get(test.name.as_str()).copied());
        let results = Results {
            tests,
            counts,
            started: started.0,
            duration: started.1.elapsed(),
        };
        console.end(&results);
        Ok(results)
    }
}

/// A test's verdict from how its run ended, and its own output.
fn judge(ended: &Ended) -> (Verdict, String) {
    let one = libtest::one_test_output(&ended.stdout);
    let verdict = match &ended.ending {
        Ending::Ran(Ok(outcome)) => match outcome.termination {
            Termination::Exited(0) if one.ignored_should_panic => Verdict::Ignored(Some(SHOULD_PANIC.to_owned())),
            Termination::Exited(0) => Verdict::Passed,
            // libtest's own failure (a test that returned an error), reported in the output.
            Termination::Exited(FAILED_CODE) => Verdict::Failed(None),
            // A panic aborts: the trap, the panic message on stderr.
            _ => Verdict::Failed(Some(outcome.to_string())),
        },
        // It could not start, or ran past its timeout.
        ending => Verdict::Failed(Some(ending.to_string())),
    };
    (verdict, one.output.to_owned())
}

/// [`FAILED`] as the exit code a guest returns.
const FAILED_CODE: i32 = FAILED as i32;

impl Finished {
    fn new(name: String, ended: &Ended, run_started: Instant, backtrace: Backtrace) -> Finished {
        let (verdict, stdout) = judge(ended);
        // A trap's frames, not those of a limit the host enforced.
        let backtrace = match &ended.ending {
            Ending::Ran(Ok(RunOutcome {
                termination: Termination::Trapped(trap),
                ..
            })) if status::for_trap(trap) == status::TRAP => {
                trap.backtrace.as_deref().and_then(|frames| backtrace.frames(frames))
            }
            _ => None,
        };
        let mut stderr = ended.stderr.clone();
        let mut output = libtest::one_test_output(&ended.output).output.to_owned();
        // As `wasm-host run` says it: natively libtest keeps it all.
        if let Ending::Ran(Ok(outcome)) = &ended.ending {
            for note in status::truncation_notes(&name, outcome) {
                let note = note + "\n";
                stderr.push_str(&note);
                output.push_str(&note);
            }
        }
        Finished {
            name,
            verdict,
            backtrace,
            stdout,
            stderr,
            output,
            started: ended.started.saturating_duration_since(run_started),
            duration: ended.duration,
        }
    }

    fn ignored(name: String, reason: Option<String>) -> Finished {
        Finished {
            name,
            verdict: Verdict::Ignored(reason),
            backtrace: None,
            stdout: String::new(),
            stderr: String::new(),
            output: String::new(),
            started: Duration::ZERO,
            duration: Duration::ZERO,
        }
    }

    /// What wasm-host says of the failure, escaped for a terminal: its
    /// reason line, as `wasm-host run` words an ending, then the wasm
    /// backtrace when asked for.
    fn reason(&self) -> Option<String> {
        let Verdict::Failed(Some(reason)) = &self.verdict else {
            return None;
        };
        let line = status::escape_controls(&format!("wasm-host: {} {reason}", self.name));
        Some(match &self.backtrace {
            Some(frames) => format!(
                "{line}\n{}",
                frames
                    .lines()
                    .map(status::escape_controls)
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            None => line,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives its bytes `piece` at a time, as a pipe or a slow disk may.
    struct Pieces<'a> {
        bytes: &'a [u8],
        piece: usize,
    }

    impl Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.piece.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_binary_is_known_wherever_its_names_fall_between_reads() {
        let mut bytes = vec![7u8; 600 << 10];
        let entry: &[u8] = b"test_main_static";
        let selector: &[u8] = b"RUSTDOC_DOCTEST_RUN_NB_TEST";
        let runner: &[u8] = b"doctest_runner_";
        let of = |bytes: &[u8], piece| Binary::of(Pieces { bytes, piece }).unwrap();
        let with = |names: &[(usize, &[u8])]| {
            let mut bytes = bytes.clone();
            for (at, name) in names {
                bytes[*at..at + name.len()].copy_from_slice(name);
            }
            bytes
        };
        for at in [0, 5, (256 << 10) - 8, 300 << 10, bytes.len() - 32] {
            let harness = with(&[(at, entry)]);
            // Merged doctests link libtest too, its entry point before or
            // after the others; each name may fall between reads.
            let doctests = [
                with(&[(at, selector), (3000, runner)]),
                with(&[(at, runner), (3000, selector)]),
                with(&[(at, entry), (3000, selector), (4000, runner)]),
            ];
            for piece in [1, 7, 4096, 1 << 20] {
                assert_eq!(of(&harness, piece), Binary::Harness, "at {at}, read {piece} at a time");
                for doctests in &doctests {
                    assert_eq!(
                        of(doctests, piece),
                        Binary::MergedDoctests,
                        "at {at}, read {piece} at a time"
                    );
                }
            }
        }
        bytes[1000..1015].copy_from_slice(&entry[..15]);
        bytes[2000..2026].copy_from_slice(&selector[..26]);
        bytes[3000..3014].copy_from_slice(&runner[..14]);
        assert_eq!(of(&bytes, 5), Binary::Program);
    }

    /// A read the signal interrupted is tried again; any other failure
    /// is the answer, not a binary read from what comes after it.
    #[test]
    fn an_interrupted_read_is_tried_again_and_a_failed_one_is_an_error() {
        struct Failing<'a> {
            first: Option<std::io::ErrorKind>,
            bytes: &'a [u8],
        }
        impl Read for Failing<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if let Some(kind) = self.first.take() {
                    return Err(kind.into());
                }
                self.bytes.read(buf)
            }
        }
        let bytes = b"...test_main_static...";
        let of = |kind| {
            Binary::of(Failing {
                first: Some(kind),
                bytes,
            })
        };
        assert_eq!(of(std::io::ErrorKind::Interrupted).unwrap(), Binary::Harness);
        let error = of(std::io::ErrorKind::PermissionDenied).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::PermissionDenied);
    }

    /// Only rustdoc's runner is merged doctests: a harness whose own code
    /// names the variable rustdoc's runner reads (a tool that runs
    /// doctests, say) is a harness, its tests run one by one.
    #[test]
    fn a_harness_that_names_rustdocs_variable_is_no_merged_doctests() {
        let mut harness = vec![7u8; 4096];
        harness[100..116].copy_from_slice(b"test_main_static");
        harness[1000..1027].copy_from_slice(b"RUSTDOC_DOCTEST_RUN_NB_TEST");
        assert_eq!(Binary::of(&harness[..]).unwrap(), Binary::Harness);
    }
}
