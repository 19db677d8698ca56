//! The host process's stdin, offered to a guest behind its run's deadline.
//!
//! Wasmtime's inherited stdin blocks the guest's thread in a read that no
//! epoch check can interrupt: a guest waiting for input that never comes
//! would outlive its timeout. [`GuardedStdin`] waits only until the deadline;
//! one worker thread per process does the blocking reads, and only when a
//! guest asks, so nothing is consumed that no guest read.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::pin::Pin;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdinStream};
use wasmtime_wasi::p2::{InputStream, Pollable, StreamError, StreamResult};

use crate::deadline::Deadline;

/// The host process's stdin for one run, read through [`HostStdin`]: a
/// guest waiting for it is interrupted at its deadline like one in a loop.
pub(crate) struct GuardedStdin {
    deadline: Deadline,
}

impl GuardedStdin {
    pub(crate) fn new(deadline: Deadline) -> Self {
        Self { deadline }
    }

    fn stream(&self) -> GuardedStdinStream {
        GuardedStdinStream {
            deadline: self.deadline.clone(),
            timed_out: false,
        }
    }
}

impl IsTerminal for GuardedStdin {
    fn is_terminal(&self) -> bool {
        io::IsTerminal::is_terminal(&io::stdin())
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
    /// Set when a wait reached the deadline: the next read interrupts the guest.
    timed_out: bool,
}

impl GuardedStdinStream {
    /// Waits until input, end of input or the deadline, whichever is first.
    fn wait(&mut self) {
        self.timed_out = !HostStdin::get().wait(self.deadline.get());
    }

    fn take(&mut self, size: usize) -> StreamResult<Bytes> {
        if self.timed_out {
            return Err(StreamError::Trap(wasmtime::Trap::Interrupt.into()));
        }
        HostStdin::get().take(size)
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

/// The host process's stdin, read by one worker thread for every run, and
/// only when a guest asks for input, so nothing is consumed that no guest read.
struct HostStdin {
    state: Mutex<StdinState>,
    changed: Condvar,
}

#[derive(Default)]
struct StdinState {
    buffered: VecDeque<u8>,
    worker: Worker,
}

/// Where the worker thread is.
#[derive(Default)]
enum Worker {
    /// Not started: no guest has asked for input yet.
    #[default]
    NotStarted,
    /// Waiting until a guest asks for more.
    Idle,
    /// A guest is waiting: the worker reads the host's stdin.
    Wanted,
    /// Input ended: cleanly (`None`), or with this error.
    Ended(Option<String>),
}

impl HostStdin {
    fn get() -> &'static HostStdin {
        static STDIN: OnceLock<HostStdin> = OnceLock::new();
        STDIN.get_or_init(|| HostStdin {
            state: Mutex::default(),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, StdinState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until there is input or its end (true), or `deadline` passed (false).
    fn wait(&'static self, deadline: Option<Instant>) -> bool {
        let mut state = self.lock();
        loop {
            if !state.buffered.is_empty() || matches!(state.worker, Worker::Ended(_)) {
                return true;
            }
            if matches!(state.worker, Worker::NotStarted) {
                std::thread::Builder::new()
                    .name("wasm-host-stdin".into())
                    .spawn(move || self.read_forever())
                    .expect("spawning the stdin reader thread");
            }
            state.worker = Worker::Wanted;
            self.changed.notify_all();
            state = match deadline {
                None => self.changed.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    self.changed
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// Up to `size` buffered bytes; none when nothing has arrived yet.
    fn take(&self, size: usize) -> StreamResult<Bytes> {
        let mut state = self.lock();
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

    fn read_forever(&self) {
        let mut chunk = vec![0; 64 * 1024];
        loop {
            let mut state = self.lock();
            while !matches!(state.worker, Worker::Wanted) {
                state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            drop(state);
            let read = io::stdin().lock().read(&mut chunk);
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
