//! Each guest runs on a worker thread, its timeout kept here where its
//! code has no epoch checks (which slow a test's own
//! code: docs/performance.md): such a run still going at its timeout (and
//! a grace) is reported as timed out, and its worker abandoned to compute
//! on until the process exits, while the other runs go on. A worker whose
//! run ended takes the next: a thread per run mapped and faulted in a
//! stack and a signal stack each time, over a quarter of the runner's
//! system time on short tests (docs/performance.md).

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use host::{GuestModule, RunOutcome, Sandbox};

/// How long past its timeout a run is given to end by itself (a run
/// waiting in a host call is ended by the library at the deadline itself;
/// one compiled with epoch checks, within a tick of it) before it is
/// reported as timed out here. As `wasm-host run`'s watchdog waits.
const GRACE: Duration = Duration::from_millis(100);

/// A guest's stdout or stderr as it writes it, readable while it runs, so
/// that a run abandoned at its timeout still has its output reported.
#[derive(Clone, Default)]
struct Written(Arc<Mutex<Vec<u8>>>);

impl Written {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for Written {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One of a guest's streams: written to its own [`Written`], and to the
/// one its stdout and stderr share, in the order written (libtest's
/// capture).
struct Stream {
    own: Written,
    both: Written,
}

impl Write for Stream {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.own.write_all(bytes)?;
        self.both.write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How a run ended.
#[derive(Debug)]
pub enum Ending {
    /// The guest ended (or could not start: the library's error, worded).
    Ran(Result<RunOutcome, String>),
    /// Still running at its timeout and the grace: its thread is abandoned.
    TimedOut(Duration),
}

/// How a run ended, as [`RunOutcome`] words it: `exited with code 3`,
/// `timed out after 2s`, ...
impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Ran(Ok(outcome)) => outcome.fmt(f),
            Ending::Ran(Err(error)) => f.write_str(error),
            Ending::TimedOut(timeout) => write!(f, "timed out after {timeout:?}"),
        }
    }
}

/// One run's ending, its output, and when it ran.
pub struct Ended {
    /// What [`Runs::start`] was given.
    pub id: usize,
    pub ending: Ending,
    pub stdout: String,
    pub stderr: String,
    /// Its stdout and stderr in one, in the order written.
    pub output: String,
    pub started: Instant,
    pub duration: Duration,
}

/// A run started and not yet reported.
struct InFlight {
    started: Instant,
    /// The timeout kept here.
    timeout: Option<Duration>,
    stdout: Written,
    stderr: Written,
    output: Written,
}

/// A run for a worker: its id, its module and sandbox.
type Job = (usize, GuestModule, Sandbox);

/// What a worker tells when a run ends: which worker it is (`None` when
/// it takes no more runs), the run's id, how it ended.
type Report = (Option<usize>, usize, Result<RunOutcome, String>);

/// The runs in flight, each on a worker thread.
pub struct Runs {
    stack_size: usize,
    in_flight: HashMap<usize, InFlight>,
    /// Each worker's jobs, by its index; dropped with `Runs`, which ends
    /// the idle ones.
    workers: Vec<Sender<Job>>,
    /// The workers waiting for a job.
    idle: Vec<usize>,
    sender: Sender<Report>,
    receiver: Receiver<Report>,
}

impl Runs {
    /// Runs each on a worker thread with a stack of `stack_size`.
    pub fn new(stack_size: usize) -> Runs {
        let (sender, receiver) = mpsc::channel();
        Runs {
            stack_size,
            in_flight: HashMap::new(),
            workers: Vec::new(),
            idle: Vec::new(),
            sender,
            receiver,
        }
    }

    /// How many runs are in flight (an abandoned one no longer is).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Starts `sandbox`'s run of `module` on an idle worker (a new one
    /// if none is), its output kept here, and `timeout` (a guest without
    /// epoch checks is stopped by nothing else; `None` leaves it to the
    /// library, or to none); `id` names it in its [`Ended`].
    pub fn start(
        &mut self,
        id: usize,
        module: &GuestModule,
        sandbox: Sandbox,
        timeout: Option<Duration>,
    ) -> Result<()> {
        let (stdout, stderr, output) = (Written::default(), Written::default(), Written::default());
        let stream = |own: &Written| Stream {
            own: own.clone(),
            both: output.clone(),
        };
        let sandbox = sandbox.stdout_writer(stream(&stdout)).stderr_writer(stream(&stderr));
        let worker = match self.idle.pop() {
            Some(worker) => worker,
            None => self.spawn_worker()?,
        };
        // An idle worker ends only when `Runs` is dropped: it is there to take this.
        (self.workers[worker].send((id, module.clone(), sandbox)))
            .map_err(|_| anyhow::anyhow!("a test thread ended"))?;
        let started = Instant::now();
        let run = InFlight {
            started,
            timeout,
            stdout,
            stderr,
            output,
        };
        self.in_flight.insert(id, run);
        Ok(())
    }

    /// A worker of its own thread, waiting for jobs; returns its index.
    fn spawn_worker(&mut self) -> Result<usize> {
        let (jobs, received) = mpsc::channel::<Job>();
        let (worker, reports) = (self.workers.len(), self.sender.clone());
        let work = move || {
            for (id, module, sandbox) in received {
                let (ran, free) = match panic::catch_unwind(AssertUnwindSafe(|| sandbox.run(&module))) {
                    Ok(ran) => (ran.map_err(|error| error.to_string()), Some(worker)),
                    // A host bug, its message already printed: the run fails
                    // rather than going unreported, and the thread, whose
                    // state the panic may have left half-changed, ends.
                    Err(_) => (Err("wasm-host panicked running it".to_owned()), None),
                };
                // The runner gone: nothing to tell, nothing more to run.
                if reports.send((free, id, ran)).is_err() || free.is_none() {
                    break;
                }
            }
        };
        std::thread::Builder::new()
            .name("test".to_owned())
            .stack_size(self.stack_size)
            .spawn(work)
            .context("starting a test thread")?;
        self.workers.push(jobs);
        Ok(worker)
    }

    /// Waits for the next run to end or to pass its timeout and the grace;
    /// `None` when none is in flight.
    pub fn next(&mut self) -> Option<Ended> {
        while !self.in_flight.is_empty() {
            // The first deadline (none too far off to be an instant).
            let first = (self.in_flight.iter())
                .filter_map(|(&id, run)| {
                    let timeout = run.timeout?;
                    Some((run.started.checked_add(timeout.saturating_add(GRACE))?, id, timeout))
                })
                .min();
            // `self.sender` is held, so the channel is never disconnected.
            let report = match first {
                Some((deadline, id, timeout)) => {
                    match self
                        .receiver
                        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                    {
                        Ok(report) => Ok(report),
                        Err(RecvTimeoutError::Timeout) => Err((id, Ending::TimedOut(timeout))),
                        Err(RecvTimeoutError::Disconnected) => return None,
                    }
                }
                None => Ok(self.receiver.recv().ok()?),
            };
            let (id, ending) = match report {
                Ok((free, id, ran)) => {
                    // Free again, even after its run was reported as timed out.
                    self.idle.extend(free);
                    (id, Ending::Ran(ran))
                }
                Err(timed_out) => timed_out,
            };
            // A run abandoned as timed out may still end, after its report.
            if let Some(run) = self.in_flight.remove(&id) {
                return Some(Ended {
                    id,
                    ending,
                    stdout: run.stdout.text(),
                    stderr: run.stderr.text(),
                    output: run.output.text(),
                    started: run.started,
                    duration: run.started.elapsed(),
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use host::{CacheMode, Runtime, RuntimeConfig, Termination};

    /// Prints `before`, then computes for a second (asking the clock, so
    /// that its thread ends before the test process does).
    const SLOW: &str = r#"(module
        (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 16) "before\n")
        (func (export "_start") (local $end i64)
            (i32.store (i32.const 0) (i32.const 16))
            (i32.store (i32.const 4) (i32.const 7))
            (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
            (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 32)))
            (local.set $end (i64.add (i64.load (i32.const 32)) (i64.const 1000000000)))
            (loop $spin
                (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 32)))
                (br_if $spin (i64.lt_u (i64.load (i32.const 32)) (local.get $end))))))"#;

    /// Ends at once.
    const QUICK: &str = r#"(module (func (export "_start")))"#;

    /// Guests compiled as `wasm-host test` compiles them: no epoch checks.
    fn runtime() -> Runtime {
        let config = RuntimeConfig::default()
            .epoch_interruption(false)
            .cache(CacheMode::InMemory);
        Runtime::new(&config).unwrap()
    }

    #[test]
    fn a_run_past_its_timeout_is_reported_with_its_output_and_the_others_go_on() {
        let runtime = runtime();
        let slow = runtime.load_bytes("slow", SLOW).unwrap();
        let quick = runtime.load_bytes("quick", QUICK).unwrap();
        let timeout = Duration::from_millis(100);
        let mut runs = Runs::new(4 << 20);
        runs.start(0, &slow, Sandbox::new(), Some(timeout)).unwrap();
        // Not watched, so that a loaded machine cannot time it out.
        runs.start(1, &quick, Sandbox::new(), None).unwrap();
        assert_eq!(runs.in_flight(), 2);
        let mut ended: Vec<Ended> = std::iter::from_fn(|| runs.next()).collect();
        ended.sort_by_key(|ended| ended.id);
        let [slow_ended, quick_ended] = &ended[..] else {
            panic!("two runs, two endings: {}", ended.len());
        };
        assert!(
            matches!(&quick_ended.ending, Ending::Ran(Ok(outcome)) if outcome.termination == Termination::Exited(0)),
            "{:?}",
            quick_ended.ending
        );
        assert!(matches!(slow_ended.ending, Ending::TimedOut(t) if t == timeout));
        assert_eq!(slow_ended.ending.to_string(), "timed out after 100ms");
        assert_eq!(slow_ended.stdout, "before\n");
        assert_eq!(runs.in_flight(), 0);
        assert!(runs.next().is_none());
    }

    #[test]
    fn a_worker_takes_run_after_run_but_none_is_queued_behind_an_abandoned_one() {
        let runtime = runtime();
        let slow = runtime.load_bytes("slow", SLOW).unwrap();
        let quick = runtime.load_bytes("quick", QUICK).unwrap();
        let mut runs = Runs::new(4 << 20);
        let run = |runs: &mut Runs, id, module, timeout| {
            runs.start(id, module, Sandbox::new(), timeout).unwrap();
            let ended = runs.next().unwrap();
            assert_eq!(ended.id, id);
            ended.ending
        };
        for id in 0..3 {
            assert!(matches!(run(&mut runs, id, &quick, None), Ending::Ran(Ok(_))));
        }
        assert_eq!(runs.workers.len(), 1, "one worker ran the three, one after another");
        let timeout = Some(Duration::from_millis(100));
        assert!(matches!(run(&mut runs, 3, &slow, timeout), Ending::TimedOut(_)));
        // Its worker computes on: the next run goes to another, at once.
        assert!(matches!(run(&mut runs, 4, &quick, None), Ending::Ran(Ok(_))));
        assert_eq!(runs.workers.len(), 2);
    }

    /// A run that panics (a host bug, here a host function's) fails, and
    /// its worker ends: the next run goes to a new one, and it passes.
    #[test]
    fn a_run_that_panics_fails_and_its_worker_takes_no_other() {
        let runtime = runtime();
        let panics = runtime
            .load_bytes(
                "panics",
                r#"(module
                    (import "env" "bug" (func $bug))
                    (func (export "_start") (call $bug)))"#,
            )
            .unwrap();
        let quick = runtime.load_bytes("quick", QUICK).unwrap();
        let mut runs = Runs::new(4 << 20);
        let buggy = Sandbox::new().host_func("env", "bug", || -> () { panic!("a host bug") });
        runs.start(0, &panics, buggy, None).unwrap();
        let ended = runs.next().unwrap();
        assert!(
            matches!(&ended.ending, Ending::Ran(Err(error)) if error == "wasm-host panicked running it"),
            "{:?}",
            ended.ending
        );
        assert!(runs.idle.is_empty(), "its worker ended");
        runs.start(1, &quick, Sandbox::new(), None).unwrap();
        assert!(matches!(runs.next().unwrap().ending, Ending::Ran(Ok(_))));
        assert_eq!(runs.workers.len(), 2);
    }
}
