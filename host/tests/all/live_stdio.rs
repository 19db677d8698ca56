//! Talking to a guest while it runs: stdin from a reader the test writes to
//! after the guest started (`Sandbox::stdin_reader`), stdout to a writer the
//! test reads before the guest ends (`Sandbox::stdout_writer`), and a server
//! guest reached over loopback at the address it printed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use host::{AddrRule, GuestModule, RunOutcome, Runtime, Sandbox};

use crate::components::{attack_with_timeout, hostile};
use crate::support;

/// How long a test waits for a guest's output before it fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// A writer that hands every write to the test through a channel.
struct ChannelWriter(mpsc::Sender<Vec<u8>>);

impl Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        // The test may have stopped listening: the guest's output then goes nowhere.
        let _ = self.0.send(bytes.to_vec());
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The guest's output as the test has seen it so far.
struct Seen {
    chunks: mpsc::Receiver<Vec<u8>>,
    text: String,
}

impl Seen {
    /// Waits until the output so far ends with `expected`; panics past [`PATIENCE`].
    fn until(&mut self, expected: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self.text.ends_with(expected) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.text.push_str(&String::from_utf8_lossy(&chunk)),
                Err(_) => panic!("waited {PATIENCE:?} for {expected:?}; the guest wrote {:?}", self.text),
            }
        }
    }
}

/// Starts `module` under `sandbox` with stdout to a channel, on a thread of its own.
fn start(sandbox: Sandbox, module: GuestModule) -> (Seen, thread::JoinHandle<RunOutcome>) {
    let (sender, chunks) = mpsc::channel();
    let sandbox = sandbox.stdout_writer(ChannelWriter(sender));
    let run = thread::spawn(move || sandbox.run(&module).unwrap());
    let seen = Seen {
        chunks,
        text: String::new(),
    };
    (seen, run)
}

#[test]
fn a_running_guest_reads_input_written_after_it_started_and_its_output_is_seen_at_once() {
    let (reader, mut stdin) = std::io::pipe().unwrap();
    // Writes `READY`, then echoes each read of stdin as it comes, until stdin ends.
    let module = Runtime::shared()
        .load_file(support::shared_test_file("conformance/wasi/live_echo.wat"))
        .unwrap();
    let (mut seen, run) = start(Sandbox::new().stdin_reader(reader), module);
    // Each step waits for the guest's answer to the last: neither could be
    // seen if the guest ran with all of its input, or to its end, first.
    seen.until("READY\n");
    stdin.write_all(b"one\n").unwrap();
    seen.until("READY\none\n");
    stdin.write_all(b"two\n").unwrap();
    seen.until("READY\none\ntwo\n");
    drop(stdin);
    let outcome = run.join().unwrap();
    assert_eq!(outcome.exit_code(), Some(0), "{outcome}");
    assert!(outcome.stdout.is_empty(), "written to the writer, not captured");
}

#[test]
fn a_component_reads_a_reader_to_its_end() {
    let (reader, mut stdin) = std::io::pipe().unwrap();
    let writer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        stdin.write_all(b"abc").unwrap();
    });
    let outcome = Sandbox::new()
        .stdin_reader(reader)
        .arg("stdin")
        .run(&hostile())
        .unwrap();
    writer.join().unwrap();
    assert_eq!(outcome.stdout_text(), "stdin: 3 bytes (Ok(3))\n");
}

#[test]
fn a_guest_waiting_for_a_reader_that_gives_nothing_is_stopped_at_its_timeout() {
    let (reader, stdin) = std::io::pipe().unwrap();
    let sandbox = Sandbox::new().stdin_reader(reader);
    attack_with_timeout(sandbox, Duration::from_millis(300), &["stdin"]);
    drop(stdin);
}

#[test]
fn a_server_guest_is_reached_at_the_address_it_printed() {
    let loopback: AddrRule = "127.0.0.1".parse().unwrap();
    let sandbox = Sandbox::new().allow_bind(loopback);
    let (mut seen, run) = start(sandbox, support::components::echo_server());
    seen.until("\n");
    let addr = seen.text.trim().to_owned();
    let mut client = TcpStream::connect(&addr).unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    client.write_all(b"Hello, world").unwrap();
    let mut echoed = [0; 12];
    client.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"Hello, world");
    let outcome = run.join().unwrap();
    assert_eq!(outcome.exit_code(), Some(0), "{outcome}: {}", outcome.stderr_text());
}

/// Reads one byte of its stdin, and ends.
const READ_ONE_BYTE: &str = r#"(module
    (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "_start")
        (i32.store (i32.const 0) (i32.const 100))
        (i32.store (i32.const 4) (i32.const 1))
        (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 200)))))"#;

/// Gives `abc` and then the end; tells through `dropped` when it is dropped.
struct Abc {
    given: bool,
    dropped: mpsc::Sender<()>,
}

impl Read for Abc {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = if self.given { 0 } else { 3.min(buf.len()) };
        buf[..n].copy_from_slice(&b"abc"[..n]);
        self.given = true;
        Ok(n)
    }
}

impl Drop for Abc {
    fn drop(&mut self) {
        let _ = self.dropped.send(());
    }
}

/// A reader the guest left bytes in is not read on, and its worker thread
/// ends (dropping the reader) once the sandbox and its runs are gone,
/// rather than waiting for a guest that will never ask again.
#[test]
fn a_reader_no_guest_reads_to_its_end_is_dropped_with_its_sandbox() {
    let (dropped, told) = mpsc::channel();
    let sandbox = Sandbox::new().stdin_reader(Abc { given: false, dropped });
    let module = Runtime::shared().load_bytes("read_one_byte", READ_ONE_BYTE).unwrap();
    let outcome = sandbox.run(&module).unwrap();
    assert!(outcome.success(), "{outcome:?}");
    assert!(
        told.try_recv().is_err(),
        "the reader was dropped while its sandbox lives"
    );
    drop(sandbox);
    assert!(told.recv_timeout(PATIENCE).is_ok(), "the worker kept the reader");
}
