//! Running the selected tests: in this process through the library (one
//! runtime for all), or one process each through a legacy adapter; in
//! parallel, except that tests sharing a preopened directory run one after
//! another; and checking what each produced against its specification.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use host::{DirAccess, Limits, Runtime, Sandbox, Termination};

use super::suite::{Spec, TestCase, remove_cleanup_files};
use crate::limits::describe_timeout;
use crate::status::one_line;

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

/// A test picked to run, with its suite.
pub struct Job<'a> {
    pub suite: &'a str,
    pub suite_dir: &'a Path,
    pub test: &'a TestCase,
}

/// How a test came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Passed,
    /// Every expectation that was not met, each in one line.
    Failed(Vec<String>),
    /// The skip list's reason.
    Skipped(String),
}

/// One test's result.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub suite: String,
    pub name: String,
    pub status: Status,
    pub duration: Duration,
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

/// Runs `jobs` with `run` on up to `workers` threads and hands each result
/// to `on_result` as it arrives; returns them all.
pub fn run_all<'a>(
    jobs: Vec<Job<'a>>,
    workers: usize,
    run: impl Fn(&Job<'a>) -> TestResult + Sync,
    mut on_result: impl FnMut(&TestResult),
) -> Vec<TestResult> {
    let groups = Mutex::new(group_by_shared_dirs(jobs));
    let (sender, receiver) = mpsc::channel();
    let mut results = Vec::new();
    thread::scope(|scope| {
        for _ in 0..workers {
            let sender = sender.clone();
            let (groups, run) = (&groups, &run);
            scope.spawn(move || {
                loop {
                    // Taken in a statement of its own, so the lock is released
                    // before the group runs. The largest groups go first.
                    let next = groups.lock().unwrap_or_else(|e| e.into_inner()).pop();
                    let Some(group) = next else { return };
                    for job in group {
                        if sender.send(run(&job)).is_err() {
                            return;
                        }
                    }
                }
            });
        }
        drop(sender);
        for result in receiver {
            on_result(&result);
            results.push(result);
        }
    });
    results
}

/// Splits the jobs into groups that may run in parallel: two tests that
/// preopen the same directory (directly or through a chain of others) land
/// in one group and run in turn. Sorted smallest first.
fn group_by_shared_dirs(jobs: Vec<Job<'_>>) -> Vec<Vec<Job<'_>>> {
    let mut group_of_dir: HashMap<PathBuf, usize> = HashMap::new();
    // `parent[i]` links group i to the group it was merged into.
    let mut parent: Vec<usize> = (0..jobs.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (i, job) in jobs.iter().enumerate() {
        for dir in job.test.spec.as_ref().map(|s| s.dirs.as_slice()).unwrap_or_default() {
            let path = job.suite_dir.join(dir);
            let key = path.canonicalize().unwrap_or(path);
            match group_of_dir.get(&key) {
                Some(&other) => {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, other));
                    parent[a] = b;
                }
                None => {
                    group_of_dir.insert(key, i);
                }
            }
        }
    }
    let mut groups: HashMap<usize, Vec<Job<'_>>> = HashMap::new();
    for (i, job) in jobs.into_iter().enumerate() {
        groups.entry(root(&mut parent, i)).or_default().push(job);
    }
    let mut groups: Vec<Vec<Job<'_>>> = groups.into_values().collect();
    groups.sort_by_key(Vec::len);
    groups
}

/// Runs one test with `executor` and checks it against its specification.
pub fn run_one(executor: &Executor, job: &Job<'_>) -> TestResult {
    let started = Instant::now();
    let status = match &job.test.spec {
        Ok(spec) => match run_checked(executor, job, spec) {
            Ok(failures) if failures.is_empty() => Status::Passed,
            Ok(failures) => Status::Failed(failures),
            Err(error) => Status::Failed(vec![error]),
        },
        Err(reason) => Status::Failed(vec![reason.clone()]),
    };
    TestResult {
        suite: job.suite.to_owned(),
        name: job.test.name.clone(),
        status,
        duration: started.elapsed(),
    }
}

/// Runs one test between two clean-ups of its directories and checks it.
fn run_checked(executor: &Executor, job: &Job<'_>, spec: &Spec) -> Result<Vec<String>, String> {
    let clean = || {
        for dir in &spec.dirs {
            let path = job.suite_dir.join(dir);
            remove_cleanup_files(&path).map_err(|e| format!("cannot remove *.cleanup in {}: {e}", path.display()))?;
        }
        Ok::<(), String>(())
    };
    clean()?;
    let observed = executor.execute(job, spec);
    clean()?;
    Ok(check(spec, &observed))
}

impl Executor {
    fn execute(&self, job: &Job<'_>, spec: &Spec) -> Observed {
        match self {
            Executor::InProcess { runtime, limits } => run_in_process(runtime, limits, job, spec),
            Executor::Adapter {
                python,
                script,
                timeout,
            } => run_adapter(python, script, *timeout, job, spec)
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

fn run_in_process(runtime: &Runtime, limits: &Limits, job: &Job<'_>, spec: &Spec) -> Observed {
    let module = match runtime.load_file(&job.test.wasm) {
        Ok(module) => module,
        Err(error) => return Observed::not_run(one_line(&error.to_string())),
    };
    let mut sandbox = Sandbox::new().limits(limits.clone()).args(spec.args.iter().cloned());
    for (name, value) in &spec.env {
        sandbox = sandbox.env(name, value);
    }
    for dir in &spec.dirs {
        sandbox = sandbox.dir(job.suite_dir.join(dir), dir, DirAccess::ReadWrite);
    }
    match sandbox.run(&module) {
        Ok(outcome) => Observed {
            ending: match outcome.termination {
                Termination::Exited(code) => Ending::Exited(code),
                Termination::Trapped(trap) => Ending::Stopped(format!("trapped: {trap}")),
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
/// does: from the suite directory, directories by their relative names.
fn run_adapter(
    python: &OsString,
    script: &Path,
    timeout: Option<Duration>,
    job: &Job<'_>,
    spec: &Spec,
) -> std::io::Result<Observed> {
    let mut command = Command::new(python);
    command
        .arg(script)
        .arg("--test-file")
        .arg(std::path::absolute(&job.test.wasm)?);
    for arg in &spec.args {
        command.arg("--arg").arg(arg);
    }
    for dir in &spec.dirs {
        command.arg("--dir").arg(dir);
    }
    for (name, value) in &spec.env {
        command.arg("--env").arg(format!("{name}={value}"));
    }
    let mut child = command
        .current_dir(job.suite_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Read both pipes while waiting, so a chatty child never blocks on a full pipe.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let started = Instant::now();
    let ending = loop {
        if let Some(status) = child.try_wait()? {
            break match status.code() {
                Some(code) => Ending::Exited(code),
                None => Ending::Stopped(format!("the adapter was killed ({status})")),
            };
        }
        if timeout.is_some_and(|t| started.elapsed() > t) {
            child.kill()?;
            child.wait()?;
            break Ending::Stopped(format!("timed out after {}", describe_timeout(timeout)));
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

/// Every way `observed` differs from `spec`, each in one line.
fn check(spec: &Spec, observed: &Observed) -> Vec<String> {
    let mut failures = Vec::new();
    match &observed.ending {
        Ending::Exited(code) if *code == spec.exit_code => {}
        Ending::Exited(code) => failures.push(format!("exit code {code}, expected {}", spec.exit_code)),
        Ending::Stopped(why) => failures.push(format!("{why}; expected exit code {}", spec.exit_code)),
        Ending::NotRun(why) => return vec![format!("could not run: {why}")],
    }
    let streams = [
        ("stdout", &spec.stdout, &observed.stdout, observed.stdout_truncated),
        ("stderr", &spec.stderr, &observed.stderr, observed.stderr_truncated),
    ];
    for (stream, expected, actual, truncated) in streams {
        if let Some(expected) = expected
            && let Some(difference) = compare(expected.as_bytes(), actual)
        {
            let cut = if truncated {
                " (cut at the --max-output limit)"
            } else {
                ""
            };
            failures.push(format!("{stream} {difference}{cut}"));
        }
    }
    // An unexpected ending is easier to understand with what the guest said.
    if !failures.is_empty() && spec.stderr.is_none() && !observed.stderr.is_empty() {
        failures.push(format!("stderr was {}", excerpt(&observed.stderr, 0)));
    }
    failures
}

/// Where `actual` first departs from `expected`, with both around that point.
fn compare(expected: &[u8], actual: &[u8]) -> Option<String> {
    if expected == actual {
        return None;
    }
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
    format!("{before}{text:?}{after}")
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

    #[test]
    fn a_matching_run_has_no_failures() {
        let spec = Spec {
            exit_code: 3,
            stdout: Some("hi\n".into()),
            ..Spec::default()
        };
        assert!(check(&spec, &exited(3, "hi\n")).is_empty());
        // Output that is not specified is not checked.
        assert!(check(&Spec::default(), &exited(0, "anything")).is_empty());
    }

    #[test]
    fn each_unmet_expectation_is_named() {
        let spec = Spec {
            exit_code: 1,
            stdout: Some("hello\n".into()),
            ..Spec::default()
        };
        let failures = check(&spec, &exited(0, "help\n"));
        assert_eq!(
            failures,
            [
                "exit code 0, expected 1",
                r#"stdout differs at byte 3: got "help\n", expected "hello\n""#
            ]
        );
    }

    #[test]
    fn long_output_is_shown_around_the_difference() {
        let expected = format!("{}A{}", "x".repeat(100), "y".repeat(100));
        let actual = format!("{}B{}", "x".repeat(100), "y".repeat(100));
        let message = compare(expected.as_bytes(), actual.as_bytes()).unwrap();
        assert!(
            message.starts_with("differs at byte 100: got …\"xxxxxxxxxxxxxxxxxxxxBy"),
            "{message}"
        );
        assert!(message.ends_with("y\"…"), "{message}");
    }

    #[test]
    fn a_guest_that_could_not_start_says_why() {
        let failures = check(
            &Spec::default(),
            &Observed::not_run("x.wasm does not export `_start`".into()),
        );
        assert_eq!(failures, ["could not run: x.wasm does not export `_start`"]);
    }

    fn case(name: &str, dirs: &[&str]) -> TestCase {
        TestCase {
            name: name.into(),
            wasm: PathBuf::from(format!("{name}.wasm")),
            spec: Ok(Spec {
                dirs: dirs.iter().map(|d| d.to_string()).collect(),
                ..Spec::default()
            }),
        }
    }

    fn jobs(cases: &[TestCase]) -> Vec<Job<'_>> {
        cases
            .iter()
            .map(|test| Job {
                suite: "s",
                suite_dir: Path::new("/nonexistent-suite"),
                test,
            })
            .collect()
    }

    fn result_of(job: &Job<'_>, status: Status) -> TestResult {
        TestResult {
            suite: job.suite.to_owned(),
            name: job.test.name.clone(),
            status,
            duration: Duration::ZERO,
        }
    }

    #[test]
    fn independent_tests_run_at_the_same_time() {
        // Each job waits (up to 10 s) for the other to arrive: both pass only
        // when they run at once.
        let arrived = (Mutex::new(0), std::sync::Condvar::new());
        let cases = [case("a", &["a.dir"]), case("b", &[])];
        let results = run_all(
            jobs(&cases),
            2,
            |job| {
                let mut count = arrived.0.lock().unwrap();
                *count += 1;
                arrived.1.notify_all();
                let (count, wait) = arrived
                    .1
                    .wait_timeout_while(count, Duration::from_secs(10), |count| *count < 2)
                    .unwrap();
                drop(count);
                let met = !wait.timed_out();
                result_of(job, if met { Status::Passed } else { Status::Failed(vec![]) })
            },
            |_| {},
        );
        assert!(results.iter().all(|r| r.status == Status::Passed), "{results:?}");
    }

    #[test]
    fn tests_sharing_a_directory_never_overlap() {
        let running = std::sync::atomic::AtomicUsize::new(0);
        let most = std::sync::atomic::AtomicUsize::new(0);
        let cases = [case("a", &["x.dir"]), case("b", &["x.dir"]), case("c", &["x.dir"])];
        let mut seen = Vec::new();
        let results = run_all(
            jobs(&cases),
            3,
            |job| {
                use std::sync::atomic::Ordering::SeqCst;
                most.fetch_max(running.fetch_add(1, SeqCst) + 1, SeqCst);
                thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, SeqCst);
                result_of(job, Status::Passed)
            },
            |result| seen.push(result.name.clone()),
        );
        assert_eq!(results.len(), 3);
        assert_eq!(seen.len(), 3, "every result was handed over as it came");
        assert_eq!(most.into_inner(), 1, "one at a time");
    }

    #[test]
    fn tests_sharing_a_directory_are_grouped_transitively() {
        let cases = [
            case("a", &["one.dir"]),
            case("b", &["two.dir"]),
            case("c", &["one.dir", "two.dir"]),
            case("d", &[]),
            case("e", &["three.dir"]),
        ];
        let groups: Vec<Vec<&str>> = group_by_shared_dirs(jobs(&cases))
            .iter()
            .map(|g| {
                let mut names: Vec<&str> = g.iter().map(|j| j.test.name.as_str()).collect();
                names.sort();
                names
            })
            .collect();
        assert_eq!(groups.len(), 3, "{groups:?}");
        assert_eq!(groups.last().unwrap(), &["a", "b", "c"], "largest last: {groups:?}");
        assert!(groups.contains(&vec!["d"]) && groups.contains(&vec!["e"]), "{groups:?}");
    }
}
