//! Running one test: in this process through the library (one runtime for
//! all, [`super::in_process`]), or in a process of its own through a legacy
//! adapter ([`super::adapter`]), each on its own copy of its directories;
//! [`super::check`] judges what it did.
//!
//! A guest runs to its end in one go where its operations allow: the
//! `write`s between a `run` and its `wait` are its stdin (closed after
//! them), and the `read`s then check its output in order. For a guest
//! whose output depends only on its input, that is the verdict of the
//! reference runner, which interleaves them. Where the operations must talk
//! to the guest while it runs (a server, or a `read` before a `write`), it
//! runs live in this process ([`super::live`]). A test's `servers` listen
//! from its first `run` to its end ([`super::servers`]).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use host::text::one_line;
use host::{Limits, Runtime};

use super::check::{Ending, Observed, check};
use super::report::{Status, TestResult};
use super::schedule::Job;
use super::servers::TestServers;
use super::spec::{CLI_COMMAND, HTTP_SERVICE, Operation, Run, Spec};
use super::workspace::Workspace;
use super::{adapter, in_process, live, service};

/// How each test is run: the one choice the caller makes.
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

/// The proposals a test may need in this process (see [`in_process::sandbox`]); through
/// an adapter, `sockets` only.
const OFFERED_PROPOSALS: &[&str] = &["sockets", "http"];

impl Executor {
    /// Why a test whose specification asks for what this executor cannot
    /// do is not run, as the reference runner skips a test its runtime
    /// cannot run.
    pub fn unsupported(&self, spec: &Spec) -> Option<String> {
        let in_process = matches!(self, Executor::InProcess { .. });
        let offered = if in_process { OFFERED_PROPOSALS } else { &["sockets"] };
        if let Some(proposal) = spec.proposals.iter().find(|p| !offered.contains(&p.as_str())) {
            return Some(format!(
                "needs the WASI proposal `{proposal}`, which wasm-host {} does not offer",
                self.describe()
            ));
        }
        let service = spec.world == HTTP_SERVICE;
        if spec.world != CLI_COMMAND && !(service && in_process) {
            return Some(format!(
                "WASI world {} unsupported by wasm-host {}",
                spec.world,
                self.describe()
            ));
        }
        if !in_process && !spec.servers.is_empty() {
            return Some("needs HTTP servers (`servers`), which only the in-process runner stands up".to_owned());
        }
        spec.operations.iter().find_map(|op| match op {
            Operation::Read { .. }
            | Operation::Write { .. }
            | Operation::Connect { .. }
            | Operation::Send { .. }
            | Operation::Recv { .. }
                if service =>
            {
                Some(format!(
                    "a `{}` operation on an HTTP service: its stdio and its sockets are not the runner's here",
                    op.kind()
                ))
            }
            Operation::Kill(signal) if service && !signal.terminates() => Some(format!(
                "sends {}, which does not end a process: a service stops here only as a signal would stop it",
                signal.name
            )),
            Operation::Kill(signal) if in_process && !service => Some(format!(
                "sends {}, and a command guest running in this process cannot be signalled",
                signal.name
            )),
            Operation::Connect { .. }
            | Operation::Send { .. }
            | Operation::Recv { .. }
            | Operation::Request(_)
            | Operation::Kill(_)
                if !in_process =>
            {
                Some(format!(
                    "a `{}` operation talks to the guest while it runs, which only the in-process runner does",
                    op.kind()
                ))
            }
            _ => None,
        })
    }
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
    let mut servers = None;
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
        let servers = match &mut servers {
            Some(servers) => servers,
            None => servers.insert(
                TestServers::start(&spec.servers).map_err(|e| format!("cannot start the test's HTTP servers: {e}"))?,
            ),
        };
        let run = Run {
            env: with_servers(&run.env, servers.env()),
            ..run.clone()
        };
        let (observed, failures) = executor.execute(job, spec, &run, &preopens, steps);
        if let Ending::NotRun(why) = &observed.ending {
            return Err(format!("could not run: {why}"));
        }
        output.0.push_str(&String::from_utf8_lossy(&observed.stdout.bytes));
        output.1.push_str(&String::from_utf8_lossy(&observed.stderr.bytes));
        if !failures.is_empty() {
            return Ok(failures);
        }
    }
    Ok(Vec::new())
}

/// `env` with each server's variable: replacing one of the same name in
/// place, else after the others (as a Python dict's `update`).
fn with_servers(env: &[(String, String)], servers: &[(String, String)]) -> Vec<(String, String)> {
    let mut env = env.to_vec();
    for (name, addr) in servers {
        match env.iter_mut().find(|(n, _)| n == name) {
            Some(var) => var.1 = addr.clone(),
            None => env.push((name.clone(), addr.clone())),
        }
    }
    env
}

impl Executor {
    /// Runs the guest as `run` says and checks `steps`, the operations up
    /// to its `wait`: what it did, and the failures.
    fn execute(
        &self,
        job: &Job<'_>,
        spec: &Spec,
        run: &Run,
        preopens: &[(PathBuf, String)],
        steps: &[Operation],
    ) -> (Observed, Vec<String>) {
        let stdin: String = steps
            .iter()
            .filter_map(|op| match op {
                Operation::Write { payload, .. } => Some(payload.as_str()),
                _ => None,
            })
            .collect();
        let observed = match self {
            Executor::InProcess { runtime, limits } => {
                let module = match runtime.load_file_for(&job.test.wasm, limits) {
                    Ok(module) => module,
                    Err(error) => {
                        return (
                            Observed::not_run(one_line(&host::text::with_causes(&error))),
                            Vec::new(),
                        );
                    }
                };
                let sandbox = in_process::sandbox(limits, spec, run, preopens);
                if spec.world == HTTP_SERVICE {
                    return service::run(sandbox, &module, steps, limits.timeout);
                }
                if live::needed(steps) {
                    return live::run(sandbox, &module, steps, limits.timeout);
                }
                Observed::of(sandbox.stdin(stdin).run(&module))
            }
            Executor::Adapter {
                python,
                script,
                timeout,
            } => adapter::run(python, script, *timeout, job, run, preopens, stdin.as_bytes())
                .unwrap_or_else(|e| Observed::not_run(format!("running the adapter: {e}"))),
        };
        let failures = check(steps, &observed);
        (observed, failures)
    }

    /// Says how tests are run, for reports.
    pub fn describe(&self) -> String {
        match self {
            Executor::InProcess { .. } => "in-process".to_owned(),
            Executor::Adapter { script, .. } => format!("adapter {}", script.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tests_needing_what_an_executor_lacks_are_named_for_skipping() {
        let spec = |json: &str| super::super::spec::parse(json).unwrap().spec;
        let in_process = Executor::InProcess {
            runtime: Runtime::shared().clone(),
            limits: Limits::default(),
        };
        let adapter = Executor::Adapter {
            python: "python3".into(),
            script: "adapter.py".into(),
            timeout: None,
        };
        let ops = |world: &str, op: &str| {
            format!(r#"{{"world": "{world}", "operations": [{{"type": "run"}}, {op}, {{"type": "wait"}}]}}"#)
        };
        let connect = ops(CLI_COMMAND, r#"{"type": "connect"}"#);
        let kill = ops(CLI_COMMAND, r#"{"type": "kill"}"#);
        let served = ops(
            HTTP_SERVICE,
            r#"{"type": "request"}, {"type": "kill", "signal": "SIGINT"}"#,
        );
        let servers = r#"{"servers": [{"name": "s"}], "operations": []}"#.to_owned();
        let cases = [
            (
                &adapter,
                r#"{"proposals": ["sockets", "http"]}"#.to_owned(),
                "WASI proposal `http`",
            ),
            (&adapter, served.clone(), "WASI world wasi:http/service"),
            (
                &adapter,
                connect.clone(),
                "`connect` operation talks to the guest while it runs",
            ),
            (&adapter, servers.clone(), "needs HTTP servers"),
            (
                &in_process,
                kill,
                "a command guest running in this process cannot be signalled",
            ),
            (
                &in_process,
                ops(HTTP_SERVICE, r#"{"type": "read"}"#),
                "a `read` operation on an HTTP service",
            ),
            (
                &in_process,
                ops(HTTP_SERVICE, r#"{"type": "kill", "signal": "SIGSTOP"}"#),
                "sends SIGSTOP, which does not end a process",
            ),
        ];
        for (executor, json, reason) in cases {
            let why = executor.unsupported(&spec(&json)).unwrap_or_default();
            assert!(why.contains(reason), "{json}: {why}");
        }
        let http = r#"{"proposals": ["sockets", "http"]}"#.to_owned();
        for json in [r#"{"root": "x"}"#.to_owned(), connect, servers, served, http] {
            assert_eq!(in_process.unsupported(&spec(&json)), None, "{json}");
        }
    }

    #[test]
    fn server_addresses_join_the_environment_as_a_python_dict_update() {
        let pair = |n: &str, v: &str| (n.to_owned(), v.to_owned());
        let env = [pair("A", "1"), pair("HTTP_SERVER_MAIN", "x"), pair("B", "2")];
        let servers = [
            pair("HTTP_SERVER_MAIN", "127.0.0.1:1"),
            pair("HTTP_SERVER_DEAD", "127.0.0.1:2"),
        ];
        assert_eq!(
            with_servers(&env, &servers),
            [
                pair("A", "1"),
                pair("HTTP_SERVER_MAIN", "127.0.0.1:1"),
                pair("B", "2"),
                pair("HTTP_SERVER_DEAD", "127.0.0.1:2")
            ]
        );
    }
}
