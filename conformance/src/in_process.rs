//! What a test running in this process through the library is granted:
//! the `Executor::InProcess` half of [`super::execute`].

use std::path::PathBuf;

use host::{DirAccess, Limits, Sandbox};

use super::loopback;
use super::spec::{Run, Spec};

/// What the test's `run` grants the guest, with what its proposals need.
pub fn sandbox(limits: &Limits, spec: &Spec, run: &Run, preopens: &[(PathBuf, String)]) -> Sandbox {
    grants(from_run(limits, run, preopens), spec)
}

/// `sandbox` with what `spec`'s proposals need, on loopback only: for
/// `sockets`, connections and datagrams to loopback addresses, and binding
/// any address (the system refuses those not of this machine, as the
/// suite's tests expect); for `http`, outgoing requests to loopback.
fn grants(mut sandbox: Sandbox, spec: &Spec) -> Sandbox {
    let any = ["0.0.0.0/0", "::/0"].map(|text| text.parse::<host::AddrRule>().expect("a constant address rule"));
    let asks = |proposal: &str| spec.proposals.iter().any(|p| p == proposal);
    for (loopback, any) in loopback::rules().into_iter().zip(any) {
        if asks("sockets") {
            sandbox = sandbox.allow_connect(loopback).allow_bind(any);
        }
        if asks("http") {
            sandbox = sandbox.allow_http(loopback);
        }
    }
    sandbox
}

/// The test's limits, arguments, environment and directories.
fn from_run(limits: &Limits, run: &Run, preopens: &[(PathBuf, String)]) -> Sandbox {
    let mut sandbox = Sandbox::new()
        .limits(limits.clone())
        .args(run.args.iter().cloned())
        .envs(run.env.iter().cloned());
    for (host, guest) in preopens {
        sandbox = sandbox.dir(host, guest, DirAccess::ReadWrite);
    }
    sandbox
}
