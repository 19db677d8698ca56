//! Running a test in a process of its own through a legacy adapter script,
//! as the reference runner drives one: the `Executor::Adapter` half of
//! [`super::execute`].

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use wait_timeout::ChildExt;

use super::check::{Captured, Ending, Observed};
use super::schedule::Job;
use super::spec::Run;

/// Runs the test through a legacy adapter the way the reference runner
/// does (from the suite directory), each granted directory as
/// `--dir HOST::GUEST` (our adapter's extension of `--dir DIR`).
pub fn run(
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
    // Read both pipes and feed stdin on threads of their own while waiting,
    // so neither a chatty child nor one that never reads can block us.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    if let Some(mut pipe) = child.stdin.take() {
        let stdin = stdin.to_vec();
        // A guest that exits without reading closes the pipe: not an error of the test.
        thread::spawn(move || pipe.write_all(&stdin));
    }
    let ending = match timeout {
        Some(limit) => match child.wait_timeout(limit)? {
            Some(status) => adapter_ended(status),
            None => {
                child.kill()?;
                child.wait()?;
                // As `host::RunOutcome` words a guest's timeout in process.
                Ending::Stopped(format!("timed out after {limit:?}"))
            }
        },
        None => adapter_ended(child.wait()?),
    };
    Ok(Observed {
        ending,
        stdout: Captured::whole(stdout.join().unwrap_or_default()),
        stderr: Captured::whole(stderr.join().unwrap_or_default()),
    })
}

/// How an adapter's process ended: the guest's exit code, which the
/// adapter passes on, or a signal.
fn adapter_ended(status: std::process::ExitStatus) -> Ending {
    match status.code() {
        Some(code) => Ending::Exited(code),
        None => Ending::Stopped(format!("the adapter was killed ({status})")),
    }
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
