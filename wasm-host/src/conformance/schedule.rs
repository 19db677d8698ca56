//! Scheduling: the selected tests on a pool of worker threads, each
//! result handed on as it arrives.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread;

use super::execute::{Job, TestResult};

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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use super::*;
    use crate::conformance::execute::Status;
    use crate::conformance::spec::Spec;
    use crate::conformance::suite::TestCase;

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
