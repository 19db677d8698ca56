//! Scheduling: the selected tests on a pool of worker threads, each
//! result handed on as it arrives.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;

use super::report::TestResult;
use super::suite::TestCase;

/// A test picked to run, with its suite and what is expected of it.
pub struct Job<'a> {
    pub suite: &'a str,
    pub suite_dir: &'a Path,
    pub test: &'a TestCase,
    /// The expectation file's reason when the test is expected to fail.
    pub expected_failure: Option<String>,
}

/// Runs `jobs` with `run` on up to `workers` threads, each with a stack of
/// `stack_size` bytes, and hands each result to `on_result` as it arrives.
/// Once a result meets `stop_after`, no other job starts (the worker that
/// ran it decides, so with one worker no job after it runs). Returns the
/// results, and the jobs not started.
pub fn run_all<'a>(
    jobs: Vec<Job<'a>>,
    workers: usize,
    stack_size: usize,
    run: impl Fn(&Job<'a>) -> TestResult + Sync,
    stop_after: impl Fn(&TestResult) -> bool + Sync,
    mut on_result: impl FnMut(&TestResult),
) -> (Vec<TestResult>, Vec<Job<'a>>) {
    let workers = workers.clamp(1, jobs.len().max(1));
    let queue = Mutex::new(VecDeque::from(jobs));
    let stopped = AtomicBool::new(false);
    let (sender, receiver) = mpsc::channel();
    let mut results = Vec::new();
    thread::scope(|scope| {
        for _ in 0..workers {
            let sender = sender.clone();
            let (queue, run, stop_after, stopped) = (&queue, &run, &stop_after, &stopped);
            let worker = move || {
                while !stopped.load(Ordering::SeqCst) {
                    // Taken in a statement of its own, so the lock is released before the test runs.
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                    let Some(job) = next else { return };
                    let result = run(&job);
                    if stop_after(&result) {
                        stopped.store(true, Ordering::SeqCst);
                    }
                    if sender.send(result).is_err() {
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
    let not_started = queue.into_inner().unwrap_or_else(|e| e.into_inner());
    (results, not_started.into())
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use super::*;
    use crate::report::Status;
    use crate::spec::Spec;
    use crate::suite::TestCase;

    fn case(name: &str) -> TestCase {
        TestCase {
            name: name.into(),
            wasm: PathBuf::from(format!("{name}.wasm")),
            spec: Ok(Spec::default()),
            warnings: Vec::new(),
        }
    }

    /// A job of suite `s` for each case.
    fn jobs(cases: &[TestCase]) -> Vec<Job<'_>> {
        let job = |test| Job {
            suite: "s",
            suite_dir: Path::new("/nonexistent-suite"),
            test,
            expected_failure: None,
        };
        cases.iter().map(job).collect()
    }

    #[test]
    fn tests_run_at_the_same_time_on_threads_of_the_stack_asked_for() {
        // Each job waits (up to 10 s) for the others to arrive: all pass only
        // when they run at once.
        let arrived = (Mutex::new(0), std::sync::Condvar::new());
        let cases = [case("a"), case("b"), case("c")];
        let jobs = jobs(&cases);
        let mut seen = 0;
        let (results, not_started) = run_all(
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
            |_| false,
            |_| seen += 1,
        );
        assert_eq!(seen, 3, "every result was handed over as it came");
        assert!(not_started.is_empty());
        assert!(results.iter().all(|r| r.status == Status::Passed), "{results:?}");
    }

    #[test]
    fn no_job_starts_after_a_result_that_stops_the_run() {
        let cases = [case("a"), case("b"), case("c")];
        let jobs = jobs(&cases);
        let run = |job: &Job<'_>| TestResult::skipped(job.suite, &job.test.name, String::new());
        let (results, not_started) = run_all(jobs, 1, 1 << 20, run, |result| result.name == "a", |_| {});
        assert_eq!(results.len(), 1);
        let names: Vec<&str> = not_started.iter().map(|job| job.test.name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
    }
}
