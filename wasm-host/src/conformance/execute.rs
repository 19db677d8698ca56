//! Running the selected tests: in this process through the library (one
//! runtime for all), or one process each through a legacy adapter; all at
//! once, each on its own copy of its directories; and checking each
//! operation of the specification against what the guest did.
//!
//! A guest runs to its end in one go: the `write`s between a `run` and its
//! `wait` are its stdin (closed after them), and the `read`s then check its
//! output in order. For a guest whose output depends only on its input,
//! that is the verdict of the reference runner, which interleaves them.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use host::{DirAccess, Limits, Runtime, Sandbox, Termination};

use super::spec::{Operation, Run, Spec};
use super::suite::TestCase;
use super::workspace::Workspace;
use crate::status::{escape_controls, one_line};

/// How each test is run.
pub enum Executor {
    /// Through the library, in this process, sharing one runtime.
    InProcess { runtime: Runtime, limits: Limits },
    /// `PYTHON ADAPTER --test-file ...` per test, as the reference runner
    /// drives a legacy adapter (from the suite directory).
    Adapter {
        python: OsString,
        script: PathBuf,
        timeout: Option<Duration>,
    },
}

/// A test picked to run, with its suite and what is expected of it.
pub struct Job<'a> {
    pub suite: &'a str,
    pub suite_dir: &'a Path,
    pub test: &'a TestCase,
    /// The expectation file's reason when the test is expected to fail.
    pub expected_failure: Option<String>,
}

/// How a test came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
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
    pub suite: String,
    pub name: String,
    pub status: Status,
    /// When it started, from the start of the run.
    pub started: Duration,
    pub duration: Duration,
    /// What the guest wrote (every run of the test, in order).
    pub stdout: String,
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

/// What a run produced, whichever way it was run.
struct Observed {
    ending: Ending,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    stdout_truncated: bool,
    stderr_truncated: bool,
}

enum Ending {
    Exited(i32),
    /// The guest trapped, timed out or was killed.
    Stopped(String),
    /// The guest could not be started at all.
    NotRun(String),
}

/// Runs `jobs` with `run` on up to `workers` threads, each with a stack of
/// `stack_size` bytes, and hands each result to `on_result` as it arrives;
/// returns them all.
pub fn run_all<'a>(
    jobs: Vec<Job<'a>>,
    workers: usize,
    stack_size: usize,
    run: impl Fn(&Job<'a>) -> TestResult + Sync,
    mut on_result: impl FnMut(&TestResult),
) -> Vec<TestResult> {
    let workers = workers.clamp(1, jobs.len().max(1));
    let queue = Mutex::new(VecDeque::from(jobs));
    let (sender, receiver) = mpsc::channel();
    let mut results = Vec::new();
    thread::scope(|scope| {
        for _ in 0..workers {
            let sender = sender.clone();
            let (queue, run) = (&queue, &run);
            let worker = move || {
                loop {
                    // Taken in a statement of its own, so the lock is released before the test runs.
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                    let Some(job) = next else { return };
                    if sender.send(run(&job)).is_err() {
                        return;
                    }
                }
            };
            thread::Builder::new()
                .name("conformance".to_owned())
                .stack_size(stack_size)
                .spawn_scoped(scope, worker)
                .expect("spawning a test worker thread");
        }
        drop(sender);
        for result in receiver {
            on_result(&result);
            results.push(result);
        }
    });
    results
}

/// Runs one test with `executor` and checks it against its specification.
pub fn run_one(executor: &Executor, job: &Job<'_>, run_started: Instant) -> TestResult {
    let started = Instant::now();
    let mut output = (String::new(), String::new());
    let status = match &job.test.spec {
        Ok(spec) => match run_operations(executor, job, spec, &mut output) {
            Ok(failures) if failures.is_empty() => Status::Passed,
            Ok(failures) => Status::Failed(failures),
            Err(error) => Status::Error(vec![error]),
        },
        Err(reason) => Status::Error(vec![reason.clone()]),
    };
    let status = match (&job.expected_failure, status) {
        (None, status) => status,
        (Some(reason), Status::Passed) => Status::UnexpectedPass(reason.clone()),
        (Some(_), Status::Failed(failures) | Status::Error(failures)) => Status::ExpectedFailure(failures),
        (Some(_), status) => status,
    };
    TestResult {
        suite: job.suite.to_owned(),
        name: job.test.name.clone(),
        status,
        started: started.duration_since(run_started),
        duration: started.elapsed(),
        stdout: output.0,
        stderr: output.1,
    }
}

/// Why a test whose specification asks for what this host cannot do is
/// not run, as the reference runner skips a test its runtime cannot run.
pub fn unsupported(spec: &Spec) -> Option<String> {
    if let Some(proposal) = spec.proposals.first() {
        return Some(format!(
            "needs the WASI proposal `{proposal}`, which wasm-host does not offer"
        ));
    }
    if spec.world != super::spec::CLI_COMMAND {
        return Some(format!("WASI world {} unsupported by wasm-host", spec.world));
    }
    if spec.servers {
        return Some("needs HTTP servers (`servers`), which only the http proposal uses".to_owned());
    }
    spec.operations.iter().find_map(|op| match op {
        Operation::Connect { .. } | Operation::Send { .. } | Operation::Recv { .. } => Some(format!(
            "a `{}` operation needs a guest listening on a socket, which WASI preview 1 modules cannot do",
            op.kind()
        )),
        Operation::Request | Operation::Kill => Some(format!(
            "`{}` operations are not supported: a guest runs in this process, to its end",
            op.kind()
        )),
        _ => None,
    })
}

/// Runs each `run` ... `wait` of the specification and checks its
/// operations in order, stopping at the first that fails (as the reference
/// runner does). `Err` when the test could not be run at all.
fn run_operations(
    executor: &Executor,
    job: &Job<'_>,
    spec: &Spec,
    output: &mut (String, String),
) -> Result<Vec<String>, String> {
    let mut workspace = None;
    let mut rest = spec.operations.as_slice();
    while let Some((Operation::Run(run), after)) = rest.split_first() {
        // Validation guarantees a wait after every run.
        let end = after
            .iter()
            .position(|op| matches!(op, Operation::Wait { .. }))
            .unwrap_or(after.len());
        let (steps, next) = after.split_at((end + 1).min(after.len()));
        rest = next;

        let mut preopens = Vec::new();
        for dir in &run.dirs {
            let workspace = match &mut workspace {
                Some(workspace) => workspace,
                None => workspace.insert(Workspace::new().map_err(|e| format!("cannot make a test directory: {e}"))?),
            };
            preopens.push((workspace.copy_in(job.suite_dir, &dir.host)?, dir.guest.clone()));
        }
        let stdin: String = steps
            .iter()
            .filter_map(|op| match op {
                Operation::Write { payload, .. } => Some(payload.as_str()),
                _ => None,
            })
            .collect();
        let observed = executor.execute(job, run, &preopens, stdin.as_bytes());
        if let Ending::NotRun(why) = &observed.ending {
            return Err(format!("could not run: {why}"));
        }
        let failures = check(steps, &observed);
        output.0.push_str(&String::from_utf8_lossy(&observed.stdout));
        output.1.push_str(&String::from_utf8_lossy(&observed.stderr));
        if !failures.is_empty() {
            return Ok(failures);
        }
    }
    Ok(Vec::new())
}

impl Executor {
    fn execute(&self, job: &Job<'_>, run: &Run, preopens: &[(PathBuf, String)], stdin: &[u8]) -> Observed {
        match self {
            Executor::InProcess { runtime, limits } => run_in_process(runtime, limits, job, run, preopens, stdin),
            Executor::Adapter {
                python,
                script,
                timeout,
            } => run_adapter(python, script, *timeout, job, run, preopens, stdin)
                .unwrap_or_else(|e| Observed::not_run(format!("running the adapter: {e}"))),
        }
    }

    /// Says how tests are run, for reports.
    pub fn describe(&self) -> String {
        match self {
            Executor::InProcess { .. } => "in-process".to_owned(),
            Executor::Adapter { script, .. } => format!("adapter {}", script.display()),
        }
    }
}

fn run_in_process(
    runtime: &Runtime,
    limits: &Limits,
    job: &Job<'_>,
    run: &Run,
    preopens: &[(PathBuf, String)],
    stdin: &[u8],
) -> Observed {
    let module = match runtime.load_file_for(&job.test.wasm, limits) {
        Ok(module) => module,
        Err(error) => return Observed::not_run(one_line(&error.to_string())),
    };
    let mut sandbox = Sandbox::new()
        .limits(limits.clone())
        .args(run.args.iter().cloned())
        .envs(run.env.iter().cloned())
        .stdin(stdin);
    for (host, guest) in preopens {
        sandbox = sandbox.dir(host, guest, DirAccess::ReadWrite);
    }
    match sandbox.run(&module) {
        Ok(outcome) => Observed {
            ending: match outcome.termination {
                Termination::Exited(code) => Ending::Exited(code),
                Termination::Trapped(_) => Ending::Stopped(outcome.to_string()),
            },
            stdout: outcome.stdout,
            stderr: outcome.stderr,
            stdout_truncated: outcome.stdout_truncated,
            stderr_truncated: outcome.stderr_truncated,
        },
        Err(error) => Observed::not_run(one_line(&error.to_string())),
    }
}

/// Runs the test through a legacy adapter the way the reference runner
/// does (from the suite directory), each granted directory as
/// `--dir HOST::GUEST` (our adapter's extension of `--dir DIR`).
fn run_adapter(
    python: &OsString,
    script: &Path,
    timeout: Option<Duration>,
    job: &Job<'_>,
    run: &Run,
    preopens: &[(PathBuf, String)],
    stdin: &[u8],
) -> std::io::Result<Observed> {
    let mut command = Command::new(python);
    command
        .arg(script)
        .arg("--test-file")
        .arg(std::path::absolute(&job.test.wasm)?);
    for arg in &run.args {
        command.arg(format!("--arg={arg}"));
    }
    for (host, guest) in preopens {
        let mut dir = OsString::from("--dir=");
        dir.push(host);
        dir.push(format!("::{guest}"));
        command.arg(dir);
    }
    for (name, value) in &run.env {
        command.arg(format!("--env={name}={value}"));
    }
    let mut child = command
        .current_dir(job.suite_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Read both pipes while waiting, so a chatty child never blocks on a full pipe.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    if let Some(mut pipe) = child.stdin.take() {
        // A guest that exits without reading closes the pipe: not an error of the test.
        let _ = pipe.write_all(stdin);
    }
    let started = Instant::now();
    let ending = loop {
        if let Some(status) = child.try_wait()? {
            break match status.code() {
                Some(code) => Ending::Exited(code),
                None => Ending::Stopped(format!("the adapter was killed ({status})")),
            };
        }
        if let Some(limit) = timeout.filter(|t| started.elapsed() > *t) {
            child.kill()?;
            child.wait()?;
            // As `host::RunOutcome` words a guest's timeout in process.
            break Ending::Stopped(format!("timed out after {limit:?}"));
        }
        thread::sleep(Duration::from_millis(5));
    };
    Ok(Observed {
        ending,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        stdout_truncated: false,
        stderr_truncated: false,
    })
}

/// Reads a child's pipe to the end on a thread of its own.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error only ends the output early; the check then reports the difference.
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

impl Observed {
    fn not_run(reason: String) -> Self {
        Observed {
            ending: Ending::NotRun(reason),
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_truncated: false,
            stderr_truncated: false,
        }
    }
}

/// A stream as the reference runner reads it: text with universal
/// newlines (`\r\n` and `\r` read as `\n`), taken a number of characters
/// at a time.
struct Stream {
    text: Vec<char>,
    at: usize,
    truncated: bool,
}

impl Stream {
    fn new(bytes: &[u8], truncated: bool) -> Stream {
        let text = String::from_utf8_lossy(bytes).replace("\r\n", "\n").replace('\r', "\n");
        Stream {
            text: text.chars().collect(),
            at: 0,
            truncated,
        }
    }

    fn take(&mut self, count: usize) -> String {
        let end = (self.at + count).min(self.text.len());
        let taken = self.text[self.at..end].iter().collect();
        self.at = end;
        taken
    }
}

/// Checks the operations after a `run` against what the guest did, in
/// order, up to the first that fails.
fn check(steps: &[Operation], observed: &Observed) -> Vec<String> {
    let mut stdout = Stream::new(&observed.stdout, observed.stdout_truncated);
    let mut stderr = Stream::new(&observed.stderr, observed.stderr_truncated);
    let mut stderr_read = false;
    let mut failures = Vec::new();
    for step in steps {
        match step {
            Operation::Read { id, payload } => {
                let stream = match id.as_str() {
                    "stderr" => {
                        stderr_read = true;
                        &mut stderr
                    }
                    _ => &mut stdout,
                };
                let from = stream.at;
                let got = stream.take(payload.chars().count());
                if let Some(difference) = compare(payload, &got) {
                    let place = if from > 0 {
                        format!(" (after {from} characters)")
                    } else {
                        String::new()
                    };
                    let cut = if stream.truncated {
                        " (cut at the --max-output limit)"
                    } else {
                        ""
                    };
                    failures.push(format!("{id}{place} {difference}{cut}"));
                }
            }
            Operation::Wait { exit_code } => match &observed.ending {
                Ending::Exited(code) if code == exit_code => {}
                Ending::Exited(code) => failures.push(format!("exit code {code}, expected {exit_code}")),
                Ending::Stopped(why) => failures.push(format!("{why}; expected exit code {exit_code}")),
                Ending::NotRun(why) => failures.push(format!("could not run: {why}")),
            },
            _ => {}
        }
        if !failures.is_empty() {
            break;
        }
    }
    // An unexpected ending is easier to understand with what the guest said.
    if !failures.is_empty() && !stderr_read && !observed.stderr.is_empty() {
        failures.push(format!("stderr was {}", excerpt(&observed.stderr, 0)));
    }
    failures
}

/// Where `actual` first departs from `expected`, with both around that point.
fn compare(expected: &str, actual: &str) -> Option<String> {
    if expected == actual {
        return None;
    }
    let (expected, actual) = (expected.as_bytes(), actual.as_bytes());
    let at = expected.iter().zip(actual).take_while(|(a, b)| a == b).count();
    // Start a little before the difference so it is seen in context.
    let from = at.saturating_sub(20);
    Some(format!(
        "differs at byte {at}: got {}, expected {}",
        excerpt(actual, from),
        excerpt(expected, from)
    ))
}

/// Up to 80 bytes of `bytes` from `from`, quoted and escaped, with `…` where cut.
fn excerpt(bytes: &[u8], from: usize) -> String {
    const WIDTH: usize = 80;
    let from = from.min(bytes.len());
    let to = bytes.len().min(from + WIDTH);
    let text = String::from_utf8_lossy(&bytes[from..to]);
    let before = if from > 0 { "…" } else { "" };
    let after = if to < bytes.len() { "…" } else { "" };
    escape_controls(&format!("{before}{text:?}{after}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(code: i32, stdout: &str) -> Observed {
        Observed {
            ending: Ending::Exited(code),
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
            stdout_truncated: false,
            stderr_truncated: false,
        }
    }

    fn read(id: &str, payload: &str) -> Operation {
        Operation::Read {
            id: id.into(),
            payload: payload.into(),
        }
    }

    #[test]
    fn a_matching_run_has_no_failures() {
        let steps = [read("stdout", "hi\n"), Operation::Wait { exit_code: 3 }];
        assert!(check(&steps, &exited(3, "hi\n")).is_empty());
        // Output that is not read is not checked.
        assert!(check(&[Operation::Wait { exit_code: 0 }], &exited(0, "anything")).is_empty());
    }

    #[test]
    fn reads_take_the_stream_in_order_as_the_reference_runner_does() {
        let steps = [
            read("stdout", "one "),
            read("stdout", "two"),
            Operation::Wait { exit_code: 0 },
        ];
        assert!(check(&steps, &exited(0, "one two and more")).is_empty());
        let failures = check(&steps, &exited(0, "one six"));
        assert_eq!(
            failures,
            [r#"stdout (after 4 characters) differs at byte 0: got "six", expected "two""#]
        );
        // Universal newlines, and characters rather than bytes.
        let steps = [read("stdout", "é\nx\n"), Operation::Wait { exit_code: 0 }];
        assert!(check(&steps, &exited(0, "é\r\nx\r")).is_empty());
    }

    #[test]
    fn the_first_unmet_expectation_is_named() {
        let steps = [read("stdout", "hello\n"), Operation::Wait { exit_code: 1 }];
        let failures = check(&steps, &exited(0, "help\n"));
        assert_eq!(
            failures,
            [r#"stdout differs at byte 3: got "help\n", expected "hello\n""#]
        );
        let failures = check(&steps, &exited(0, "hello\n"));
        assert_eq!(failures, ["exit code 0, expected 1"]);
    }

    #[test]
    fn long_output_is_shown_around_the_difference() {
        let expected = format!("{}A{}", "x".repeat(100), "y".repeat(100));
        let actual = format!("{}B{}", "x".repeat(100), "y".repeat(100));
        let message = compare(&expected, &actual).unwrap();
        assert!(
            message.starts_with("differs at byte 100: got …\"xxxxxxxxxxxxxxxxxxxxBy"),
            "{message}"
        );
        assert!(message.ends_with("y\"…"), "{message}");
    }

    #[test]
    fn guest_output_never_reaches_the_terminal_raw() {
        let mut observed = exited(1, "");
        observed.stderr = b"\x1b[2J\x9b31m".to_vec();
        let failures = check(&[Operation::Wait { exit_code: 0 }], &observed);
        let shown = failures.join(" ");
        assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
        assert!(shown.contains(r"\u{1b}[2J"), "{shown}");
    }

    #[test]
    fn tests_needing_what_the_host_lacks_are_named_for_skipping() {
        let spec = |json: &str| super::super::spec::parse(json).unwrap().spec;
        let cases = [
            (r#"{"proposals": ["sockets"]}"#, "WASI proposal `sockets`"),
            (
                r#"{"operations": [], "world": "wasi:http/service"}"#,
                "WASI world wasi:http/service",
            ),
            (
                r#"{"operations": [{"type": "run"}, {"type": "connect"}, {"type": "wait"}]}"#,
                "`connect` operation needs a guest listening",
            ),
            (
                r#"{"operations": [{"type": "run"}, {"type": "kill"}, {"type": "wait"}]}"#,
                "`kill` operations are not supported",
            ),
        ];
        for (json, reason) in cases {
            let why = unsupported(&spec(json)).unwrap_or_default();
            assert!(why.contains(reason), "{json}: {why}");
        }
        assert_eq!(unsupported(&spec(r#"{"root": "x"}"#)), None);
    }

    fn case(name: &str) -> TestCase {
        TestCase {
            name: name.into(),
            wasm: PathBuf::from(format!("{name}.wasm")),
            spec: Ok(Spec::default()),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn tests_run_at_the_same_time_on_threads_of_the_stack_asked_for() {
        // Each job waits (up to 10 s) for the others to arrive: all pass only
        // when they run at once.
        let arrived = (Mutex::new(0), std::sync::Condvar::new());
        let cases = [case("a"), case("b"), case("c")];
        let jobs = cases
            .iter()
            .map(|test| Job {
                suite: "s",
                suite_dir: Path::new("/nonexistent-suite"),
                test,
                expected_failure: None,
            })
            .collect();
        let mut seen = 0;
        let results = run_all(
            jobs,
            3,
            16 << 20,
            |job| {
                // 3 MiB on the stack: more than the default 2 MiB of a thread.
                let big = std::hint::black_box([1u8; 3 << 20]);
                let mut count = arrived.0.lock().unwrap();
                *count += 1;
                arrived.1.notify_all();
                let (count, wait) = arrived
                    .1
                    .wait_timeout_while(count, Duration::from_secs(10), |count| *count < 3)
                    .unwrap();
                drop(count);
                let status = match wait.timed_out() {
                    false => Status::Passed,
                    true => Status::Failed(vec![]),
                };
                let mut result = TestResult::skipped(job.suite, &job.test.name, String::new());
                result.status = status;
                result.duration = Duration::from_nanos(u64::from(big[0]));
                result
            },
            |_| seen += 1,
        );
        assert_eq!(seen, 3, "every result was handed over as it came");
        assert!(results.iter().all(|r| r.status == Status::Passed), "{results:?}");
    }
}
