//! Running a command guest in this process while its operations talk to
//! it, as the reference runner talks to a live process: `write`s reach its
//! stdin as they come, `read`s wait for its output (or its end), `connect`
//! reads a `HOST:PORT` line from its stdout and opens a TCP connection
//! there for `send` and `recv`, and `request` sends HTTP to the `http://`
//! URL on the first line of its stderr. The guest runs on the calling
//! thread (the worker's, sized for `--max-stack`), the operations on a
//! thread of their own; `wait` closes stdin and judges the ending.
//!
//! Every wait here ends: output ends when the guest does (at its timeout
//! at the latest), and sockets wait at most [`SOCKET_TIMEOUT`] each, and
//! never past the guest's timeout. Connections go to loopback only
//! ([`super::loopback`]).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use host::{GuestModule, Sandbox};

use super::check::{Observed, decode, read_failure, stderr_note, wait_failure};
use super::spec::Operation;
use super::{loopback, request};

/// How long a `connect`, `send` or `recv` may wait on its socket.
pub const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the operations of a run must talk to the guest while it runs:
/// it is a server (`connect`, `request`), or a `read` must see output
/// before a later `write` is sent. Otherwise running it to its end with
/// all of its input gives the same verdict.
pub fn needed(steps: &[Operation]) -> bool {
    let mut read = false;
    steps.iter().any(|op| match op {
        Operation::Connect { .. } | Operation::Request(_) => true,
        Operation::Read { .. } => {
            read = true;
            false
        }
        Operation::Write { .. } => read,
        _ => false,
    })
}

/// Runs `module` under `sandbox` while `steps` (the operations after its
/// `run`, up to its `wait`) talk to it, none of them waiting past
/// `timeout` (the guest's); returns what it did and the failures, the
/// first unmet expectation and what the guest said.
pub fn run(
    sandbox: Sandbox,
    module: &GuestModule,
    steps: &[Operation],
    timeout: Option<Duration>,
) -> (Observed, Vec<String>) {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let stdout = Output::default();
    let stderr = Output::default();
    let (stdin, input) = mpsc::channel();
    let sandbox = sandbox
        .stdin_reader(ChannelReader::new(input))
        .stdout_writer(stdout.clone())
        .stderr_writer(stderr.clone());
    thread::scope(|scope| {
        let driver = thread::Builder::new()
            .name("conformance-live".into())
            .spawn_scoped(scope, || Driver::new(&stdout, &stderr, deadline).drive(steps, stdin))
            .expect("spawning a thread for a test's operations");
        let result = sandbox.run(module);
        // Lets the stdin reader go, and tells waiting reads that no more comes.
        drop(sandbox);
        stdout.end();
        stderr.end();
        let (mut failures, stderr_read) = driver
            .join()
            .unwrap_or_else(|_| (vec!["the operations panicked".into()], false));
        // The outcome says whether output was cut; the output itself went to the streams.
        let mut observed = Observed::of(result);
        observed.stdout.bytes = stdout.bytes();
        observed.stderr.bytes = stderr.bytes();
        if failures.is_empty()
            && let Some(Operation::Wait { exit_code }) = steps.last()
        {
            failures.extend(wait_failure(*exit_code, &observed.ending));
        }
        stderr_note(&mut failures, stderr_read, &observed.stderr.bytes);
        (observed, failures)
    })
}

/// The operations' side of a live run.
struct Driver<'a> {
    stdout: &'a Output,
    stderr: &'a Output,
    stderr_read: bool,
    sockets: HashMap<String, TcpStream>,
    /// The service's URL, once read from stderr.
    http_server: Option<String>,
    /// The guest's timeout, past which no socket waits.
    deadline: Option<Instant>,
}

impl<'a> Driver<'a> {
    fn new(stdout: &'a Output, stderr: &'a Output, deadline: Option<Instant>) -> Self {
        Driver {
            stdout,
            stderr,
            stderr_read: false,
            sockets: HashMap::new(),
            http_server: None,
            deadline,
        }
    }

    /// How long a socket operation may wait: [`SOCKET_TIMEOUT`], and no
    /// longer than the guest may run (at least a millisecond: a zero
    /// timeout means none to the socket calls).
    fn socket_timeout(&self) -> Duration {
        let left = self.deadline.map_or(SOCKET_TIMEOUT, |deadline| {
            deadline.saturating_duration_since(Instant::now())
        });
        SOCKET_TIMEOUT.min(left).max(Duration::from_millis(1))
    }

    /// Performs `steps` up to the `wait` or the first failure; returns the
    /// failure, and whether stderr was read. Dropping `stdin` at the end
    /// closes the guest's stdin.
    fn drive(mut self, steps: &[Operation], stdin: mpsc::Sender<Vec<u8>>) -> (Vec<String>, bool) {
        for step in steps {
            let failure = match step {
                Operation::Write { payload, .. } => {
                    // A guest that has ended reads no more; its wait says how it ended.
                    let _ = stdin.send(payload.as_bytes().to_vec());
                    None
                }
                Operation::Read { id, payload } => {
                    let stream = match id.as_str() {
                        "stderr" => {
                            self.stderr_read = true;
                            self.stderr
                        }
                        _ => self.stdout,
                    };
                    let (from, got) = stream.read(payload.chars().count());
                    read_failure(id, payload, from, &got, false)
                }
                Operation::Connect { id, .. } => self.connect(id).err(),
                Operation::Send { id, payload } => self.send(id, payload),
                Operation::Recv { id, payload } => self.recv(id, payload),
                Operation::Request(request) => match self.http_server() {
                    Ok(server) => request::judge(&server, request, request::limit(self.deadline)),
                    Err(failure) => Some(failure),
                },
                Operation::Kill(signal) => Some(format!(
                    "cannot send {} to a command guest running in this process",
                    signal.name
                )),
                Operation::Run(_) | Operation::Wait { .. } => None,
            };
            if let Some(failure) = failure {
                return (vec![failure], self.stderr_read);
            }
        }
        (Vec::new(), self.stderr_read)
    }

    /// Opens a connection to the `HOST:PORT` of the guest's next stdout line.
    fn connect(&mut self, id: &str) -> Result<(), String> {
        let line = self.stdout.read_line();
        let line = line.trim();
        if line.split(':').count() != 2 {
            return Err(format!(
                "connect `{id}`: expected the address as HOST:PORT on stdout, found {line:?}"
            ));
        }
        let addr = loopback::address(line, None).map_err(|why| format!("connect `{id}`: {why}"))?;
        let stream = TcpStream::connect_timeout(&addr, self.socket_timeout())
            .map_err(|e| format!("connect `{id}`: could not connect to {line}: {e}"))?;
        self.sockets.insert(id.to_owned(), stream);
        Ok(())
    }

    /// The connection `id` (validation makes sure a `connect` defined it,
    /// and a `connect` that fails ends the test).
    fn socket(&self, id: &str) -> Result<&TcpStream, String> {
        self.sockets.get(id).ok_or_else(|| format!("no connection `{id}`"))
    }

    fn send(&self, id: &str, payload: &str) -> Option<String> {
        let sent = self.socket(id).and_then(|mut socket| {
            socket
                .set_write_timeout(Some(self.socket_timeout()))
                .and_then(|()| socket.write_all(payload.as_bytes()))
                .map_err(|e| format!("send to `{id}`: {e}"))
        });
        sent.err()
    }

    /// One read of up to the payload's length in characters, compared with
    /// it, as the reference runner's single `recv(len(payload))`.
    fn recv(&self, id: &str, payload: &str) -> Option<String> {
        let mut socket = match self.socket(id) {
            Ok(socket) => socket,
            Err(failure) => return Some(failure),
        };
        let mut buffer = vec![0; payload.chars().count()];
        let received = socket
            .set_read_timeout(Some(self.socket_timeout()))
            .and_then(|()| socket.read(&mut buffer));
        match received {
            Ok(read) => match std::str::from_utf8(&buffer[..read]) {
                Ok(got) if got == payload => None,
                Ok(got) => Some(format!("recv from `{id}`: expected {payload:?}, got {got:?}")),
                Err(e) => Some(format!("recv from `{id}`: not UTF-8: {e}")),
            },
            Err(e) => Some(format!("recv from `{id}`: {e}")),
        }
    }

    /// The `http://` URL the guest printed on the first line of its stderr.
    fn http_server(&mut self) -> Result<String, String> {
        if let Some(server) = &self.http_server {
            return Ok(server.clone());
        }
        let line = self.stderr.read_line();
        let line = line.trim();
        let start = line
            .find("http://")
            .ok_or_else(|| format!("expected an http:// URL on the first line of stderr, got {line:?}"))?;
        let server = line[start..].split_whitespace().next().unwrap_or_default().to_owned();
        self.http_server = Some(server.clone());
        Ok(server)
    }
}

/// A guest's output stream as the operations read it while the guest
/// writes it: text a number of characters or a line at a time, waiting
/// for more until the guest has ended.
#[derive(Clone, Default)]
struct Output(Arc<(Mutex<OutputState>, Condvar)>);

#[derive(Default)]
struct OutputState {
    bytes: Vec<u8>,
    ended: bool,
    /// Characters already read.
    at: usize,
}

impl Output {
    fn lock(&self) -> MutexGuard<'_, OutputState> {
        self.0.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// No more output comes.
    fn end(&self) {
        self.lock().ended = true;
        self.0.1.notify_all();
    }

    fn bytes(&self) -> Vec<u8> {
        self.lock().bytes.clone()
    }

    /// Waits until `ready` finds an end in the unread text (or the output
    /// has ended: then all of it), and takes the text up to there.
    fn take(&self, ready: impl Fn(&[char]) -> Option<usize>) -> (usize, String) {
        let mut state = self.lock();
        loop {
            let text = decode(&state.bytes, state.ended);
            let unread = &text[state.at.min(text.len())..];
            let end = match ready(unread) {
                Some(end) => end,
                None if state.ended => unread.len(),
                None => {
                    state = self.0.1.wait(state).unwrap_or_else(|e| e.into_inner());
                    continue;
                }
            };
            let from = state.at;
            state.at += end;
            return (from, unread[..end].iter().collect());
        }
    }

    /// The next `count` characters (fewer if the output ends first), and
    /// how many were read before them, as a text pipe's `read(count)`.
    fn read(&self, count: usize) -> (usize, String) {
        self.take(|unread| (unread.len() >= count).then_some(count))
    }

    /// The next line, `\n` included (or the rest, at the end), as `readline()`.
    fn read_line(&self) -> String {
        self.take(|unread| unread.iter().position(|c| *c == '\n').map(|at| at + 1))
            .1
    }
}

impl Write for Output {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.lock().bytes.extend_from_slice(bytes);
        self.0.1.notify_all();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The guest's stdin: what the operations send, until they drop their end.
struct ChannelReader {
    input: mpsc::Receiver<Vec<u8>>,
    pending: io::Cursor<Vec<u8>>,
}

impl ChannelReader {
    fn new(input: mpsc::Receiver<Vec<u8>>) -> Self {
        ChannelReader {
            input,
            pending: io::Cursor::new(Vec::new()),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        loop {
            let read = self.pending.read(buffer)?;
            if read > 0 || buffer.is_empty() {
                return Ok(read);
            }
            match self.input.recv() {
                Ok(bytes) => self.pending = io::Cursor::new(bytes),
                // The operations are done: the end of stdin.
                Err(mpsc::RecvError) => return Ok(0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_read_as_it_comes_and_to_its_end() {
        let output = Output::default();
        let mut writer = output.clone();
        let reader = thread::spawn({
            let output = output.clone();
            move || (output.read(3), output.read_line(), output.read(10))
        });
        // "é" split between writes, and a \r\n: read as one character each.
        for chunk in [&b"ab\xc3"[..], b"\xa9cd\r", b"\nrest"] {
            writer.write_all(chunk).unwrap();
            thread::sleep(Duration::from_millis(20));
        }
        output.end();
        let (first, line, rest) = reader.join().unwrap();
        assert_eq!(first, (0, "abé".to_owned()));
        assert_eq!(line, "cd\n");
        assert_eq!(rest, (6, "rest".to_owned()), "cut short at the end");
    }

    #[test]
    fn stdin_gives_each_write_then_ends_when_the_sender_goes() {
        let (sender, input) = mpsc::channel();
        let mut reader = ChannelReader::new(input);
        sender.send(b"one".to_vec()).unwrap();
        sender.send(b"two".to_vec()).unwrap();
        drop(sender);
        let mut all = String::new();
        reader.read_to_string(&mut all).unwrap();
        assert_eq!(all, "onetwo");
    }

    #[test]
    fn only_servers_and_reads_before_writes_need_a_live_guest() {
        let read = Operation::Read {
            id: "stdout".into(),
            payload: "x".into(),
        };
        let write = Operation::Write {
            id: "stdin".into(),
            payload: "x".into(),
        };
        let connect = Operation::Connect {
            id: "s".into(),
            protocol: "tcp".into(),
        };
        assert!(!needed(&[
            write.clone(),
            read.clone(),
            Operation::Wait { exit_code: 0 }
        ]));
        assert!(needed(&[read, write]));
        assert!(needed(&[connect]));
    }
}
