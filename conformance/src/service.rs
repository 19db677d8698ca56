//! A test of the `wasi:http/service` world: the guest served in this
//! process on a loopback port (`Sandbox::serve_http`), as the reference
//! runner has `wasmtime serve --addr=127.0.0.1:0` serve it; each `request`
//! sent to it and judged ([`super::request`]); `kill` stops it, as a
//! signal stops `wasmtime serve`: SIGINT gracefully (the exit code is the
//! service's, 0), any other signal that ends a process with the code
//! Python reports for it (`-N`); `wait` judges that code.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use host::{GuestModule, HttpService, Sandbox};

use super::check::{Ending, Observed, stderr_note, wait_failure};
use super::request;
use super::spec::{Operation, Signal};
use host::text::one_line;

/// Serves `module` under `sandbox` while `steps` (the operations after its
/// `run`, up to its `wait`) talk to it, each request within `timeout` (the
/// one each request has in the service); returns what it did and the
/// failures, the first unmet expectation and what the guest said.
pub fn run(
    sandbox: Sandbox,
    module: &GuestModule,
    steps: &[Operation],
    timeout: Option<Duration>,
) -> (Observed, Vec<String>) {
    let served = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot listen on loopback: {e}"))
        .and_then(|listener| {
            sandbox
                .serve_http(module, listener)
                .map_err(|e| one_line(&host::text::with_causes(&e)))
        });
    let service = match served {
        Ok(service) => service,
        Err(why) => return (Observed::not_run(why), Vec::new()),
    };
    // As `wasmtime serve` prints it on its first line of stderr.
    let url = format!("http://{}/", service.local_addr());
    let mut state = State::Serving(service);
    let mut failures = Vec::new();
    for step in steps {
        let failure = match step {
            Operation::Request(request) => {
                let deadline = timeout.map(|timeout| Instant::now() + timeout);
                request::judge(&url, request, request::limit(deadline))
            }
            Operation::Kill(signal) => {
                // A signal to a process that has ended does nothing.
                state = match state {
                    State::Serving(service) => {
                        let (ending, observed) = stop(service, *signal);
                        State::Stopped(ending, observed)
                    }
                    stopped => stopped,
                };
                None
            }
            Operation::Wait { exit_code } => match &state {
                State::Stopped(ending, _) => wait_failure(*exit_code, ending),
                State::Serving(_) => Some(
                    "`wait` on a service that was not killed: it serves until killed, so the wait times out".to_owned(),
                ),
            },
            // Not run in this world (`Executor::unsupported`).
            _ => None,
        };
        if let Some(failure) = failure {
            failures.push(failure);
            break;
        }
    }
    let (ending, mut observed) = match state {
        State::Serving(service) => stop(service, Signal::INT),
        State::Stopped(ending, observed) => (ending, observed),
    };
    observed.ending = ending;
    stderr_note(&mut failures, false, &observed.stderr.bytes);
    (observed, failures)
}

/// A service serving, or stopped: how it ended, and what it wrote.
enum State {
    Serving(HttpService),
    Stopped(Ending, Observed),
}

/// Stops `service` as `signal` would stop `wasmtime serve`: how it ended,
/// and what it wrote.
fn stop(service: HttpService, signal: Signal) -> (Ending, Observed) {
    let observed = Observed::of(service.shutdown());
    let ending = match (signal == Signal::INT, &observed.ending) {
        // Only SIGINT is handled (wasmtime serve's ctrl-c): a graceful stop.
        (true, ending) | (false, ending @ Ending::NotRun(_)) => ending.clone(),
        // Any other signal that ends a process: Python's returncode.
        (false, _) => Ending::Exited(-signal.number),
    };
    (ending, observed)
}
