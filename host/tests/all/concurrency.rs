//! Many runs at once on many threads, sharing one engine and one compiled
//! module per guest: each run sees only its own stdin, environment and
//! output, even while a neighbour is being timed out.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use host::{Limits, Sandbox, Termination, TrapKind};

use crate::support;

const THREADS: usize = 8;
const RUNS_PER_THREAD: usize = 30;

#[test]
fn concurrent_runs_never_see_each_others_input_or_output() {
    let csv = support::modules::csv_processor();
    let hostile = support::modules::hostile();
    let start = Arc::new(Barrier::new(THREADS + 2)); // the workers, the spinner and this thread

    // A neighbour that keeps getting timed out while the others run.
    let spinner = {
        let (hostile, start) = (hostile.clone(), start.clone());
        std::thread::spawn(move || {
            start.wait();
            let limits = Limits::default().timeout(Some(Duration::from_millis(50)));
            for _ in 0..10 {
                let outcome = Sandbox::new().limits(limits.clone()).arg("loop").run(&hostile).unwrap();
                assert_eq!(outcome.trap().map(|t| t.kind), Some(TrapKind::Timeout));
            }
        })
    };

    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let (csv, hostile, start) = (csv.clone(), hostile.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for run in 0..RUNS_PER_THREAD {
                    let id = thread * 1000 + run;
                    match run % 3 {
                        0 => {
                            let outcome = Sandbox::new().stdin(format!("{id},0\n")).run(&csv).unwrap();
                            assert_eq!(outcome.termination, Termination::Exited(0), "run {id}");
                            assert_eq!(outcome.stdout_text(), format!("{id}\n"), "run {id}");
                            assert_eq!(outcome.stderr_text(), "", "run {id}");
                        }
                        1 => {
                            let outcome = Sandbox::new().stdin(format!("{id},bad{id}\n")).run(&csv).unwrap();
                            assert_eq!(outcome.termination, Termination::Exited(1), "run {id}");
                            assert_eq!(outcome.stdout_text(), "", "run {id}");
                            assert_eq!(
                                outcome.stderr_text(),
                                format!("error: line 1, field 2: \"bad{id}\" is not a number\n"),
                                "run {id}"
                            );
                        }
                        _ => {
                            let outcome = Sandbox::new()
                                .env("RUN", id.to_string())
                                .arg("env")
                                .run(&hostile)
                                .unwrap();
                            assert_eq!(outcome.termination, Termination::Exited(0), "run {id}");
                            assert_eq!(outcome.stdout_text(), format!("RUN={id}\n"), "run {id}");
                        }
                    }
                }
                RUNS_PER_THREAD
            })
        })
        .collect();

    start.wait();
    let completed: usize = workers.into_iter().map(|w| w.join().expect("a worker panicked")).sum();
    spinner.join().expect("the spinning neighbour was timed out every time");
    assert_eq!(completed, THREADS * RUNS_PER_THREAD);
}
