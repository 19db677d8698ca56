//! A guest's stdin read from the host process's own stdin or from any
//! reader, behind its run's deadline.
//!
//! Wasmtime's inherited stdin blocks the guest's thread in a read that no
//! epoch check can interrupt: a guest waiting for input that never comes
//! would outlive its timeout. [`GuardedStdin`] waits only until the deadline;
//! one worker thread per source (the process's stdin, or a reader given to
//! [`crate::Sandbox::stdin_reader`]) does the blocking reads, and only when a
//! guest asks, so nothing is consumed that no guest read.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdinStream};
use wasmtime_wasi::p2::{InputStream, Pollable, StreamError, StreamResult};

use crate::deadline::Deadline;

/// A run's stdin, read from an [`InputSource`]: a guest waiting for it is
/// interrupted at its deadline like one in a loop.
pub(crate) struct GuardedStdin {
    deadline: Deadline,
    source: Arc<InputSource>,
}

impl GuardedStdin {
    pub(crate) fn new(source: Arc<InputSource>, deadline: Deadline) -> Self {
        Self { deadline, source }
    }

    fn stream(&self) -> GuardedStdinStream {
        GuardedStdinStream {
            deadline: self.deadline.clone(),
            source: self.source.clone(),
            timed_out: false,
        }
    }
}

impl IsTerminal for GuardedStdin {
    fn is_terminal(&self) -> bool {
        self.source.terminal
    }
}

impl StdinStream for GuardedStdin {
    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(self.stream())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncRead + Send + Sync> {
        Box::new(self.stream())
    }
}

struct GuardedStdinStream {
    deadline: Deadline,
    source: Arc<InputSource>,
    /// Set when a wait reached the deadline: the next read interrupts the guest.
    timed_out: bool,
}

impl GuardedStdinStream {
    /// Waits until input, end of input or the deadline, whichever is first.
    fn wait(&mut self) {
        self.timed_out = !self.source.wait(self.deadline.get());
    }

    fn take(&mut self, size: usize) -> StreamResult<Bytes> {
        if self.timed_out {
            return Err(StreamError::Trap(wasmtime::Trap::Interrupt.into()));
        }
        self.source.take(size)
    }
}

#[wasmtime_wasi::async_trait]
impl InputStream for GuardedStdinStream {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        self.take(size)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuardedStdinStream {
    async fn ready(&mut self) {
        // Preview 1 is synchronous: blocking this thread is what a blocking
        // read would do, only bounded by the deadline.
        self.wait();
    }
}

impl tokio::io::AsyncRead for GuardedStdinStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.wait();
        Poll::Ready(match self.take(buf.remaining()) {
            Ok(bytes) => {
                buf.put_slice(&bytes);
                Ok(())
            }
            Err(StreamError::Closed) => Ok(()),
            Err(e) => Err(io::Error::other(e)),
        })
    }
}

/// Where guests' stdin comes from: a reader, read by one worker thread for
/// every run that shares it, and only when a guest asks for input, so
/// nothing is consumed that no guest read.
pub(crate) struct InputSource {
    shared: Arc<Shared>,
    terminal: bool,
}

/// What the worker thread shares with the runs reading from it.
struct Shared {
    state: Mutex<StdinState>,
    changed: Condvar,
}

struct StdinState {
    buffered: VecDeque<u8>,
    worker: Worker,
    /// No run can read any more: an idle worker ends.
    abandoned: bool,
}

/// Where the worker thread is.
enum Worker {
    /// Not started: no guest has asked for input yet.
    NotStarted(Box<dyn Read + Send>),
    /// Waiting until a guest asks for more.
    Idle,
    /// A guest is waiting: the worker reads the source.
    Wanted,
    /// Input ended: cleanly (`None`), or with this error.
    Ended(Option<String>),
}

impl InputSource {
    /// The host process's own stdin, one source for the whole process.
    pub(crate) fn host() -> Arc<InputSource> {
        static STDIN: OnceLock<Arc<InputSource>> = OnceLock::new();
        STDIN
            .get_or_init(|| InputSource::new(io::stdin(), io::IsTerminal::is_terminal(&io::stdin())))
            .clone()
    }

    /// A source reading `reader`; its worker thread ends when the reader does.
    pub(crate) fn reader(reader: impl Read + Send + 'static) -> Arc<InputSource> {
        InputSource::new(reader, false)
    }

    fn new(reader: impl Read + Send + 'static, terminal: bool) -> Arc<InputSource> {
        Arc::new(InputSource {
            shared: Arc::new(Shared {
                state: Mutex::new(StdinState {
                    buffered: VecDeque::new(),
                    worker: Worker::NotStarted(Box::new(reader)),
                    abandoned: false,
                }),
                changed: Condvar::new(),
            }),
            terminal,
        })
    }

    /// Waits until there is input or its end (true), or `deadline` passed (false).
    fn wait(&self, deadline: Option<Instant>) -> bool {
        let shared = &self.shared;
        let mut state = shared.lock();
        loop {
            if !state.buffered.is_empty() || matches!(state.worker, Worker::Ended(_)) {
                return true;
            }
            if let Worker::NotStarted(reader) = std::mem::replace(&mut state.worker, Worker::Wanted) {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name("wasm-host-stdin".into())
                    .spawn(move || shared.read_forever(reader))
                    .expect("spawning the stdin reader thread");
            }
            shared.changed.notify_all();
            state = match deadline {
                None => shared.changed.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    shared
                        .changed
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// Up to `size` buffered bytes; none when nothing has arrived yet.
    fn take(&self, size: usize) -> StreamResult<Bytes> {
        let mut state = self.shared.lock();
        if state.buffered.is_empty() {
            return match &state.worker {
                Worker::Ended(None) => Err(StreamError::Closed),
                Worker::Ended(Some(error)) => Err(StreamError::LastOperationFailed(wasmtime::format_err!(
                    "reading stdin: {error}"
                ))),
                _ => Ok(Bytes::new()),
            };
        }
        let n = size.min(state.buffered.len());
        Ok(state.buffered.drain(..n).collect())
    }
}

impl Drop for InputSource {
    /// Lets an idle worker end (one in the middle of a read ends after it).
    fn drop(&mut self) {
        self.shared.lock().abandoned = true;
        self.shared.changed.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, StdinState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read_forever(&self, mut reader: Box<dyn Read + Send>) {
        let mut chunk = vec![0; 64 * 1024];
        loop {
            let mut state = self.lock();
            while !matches!(state.worker, Worker::Wanted) {
                if state.abandoned {
                    return;
                }
                state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            drop(state);
            let read = reader.read(&mut chunk);
            let mut state = self.lock();
            match read {
                Ok(0) => state.worker = Worker::Ended(None),
                Ok(n) => {
                    state.buffered.extend(&chunk[..n]);
                    state.worker = Worker::Idle;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => state.worker = Worker::Ended(Some(e.to_string())),
            }
            let ended = matches!(state.worker, Worker::Ended(_));
            drop(state);
            self.changed.notify_all();
            if ended {
                return;
            }
        }
    }
}
