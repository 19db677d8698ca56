//! A guest's standard streams: output with a byte cap, captured or
//! streamed, and the host's own stdin behind the run's timeout.
//!
//! Wasmtime's `MemoryOutputPipe` fails the guest's write once full, which
//! turns a chatty guest into a crashed one. A host that runs untrusted code
//! wants the opposite: keep the first bytes, drop the rest, say so, and let
//! the guest finish. Memory use, or what reaches the host's own stream,
//! stays bounded by the cap either way.
//!
//! Wasmtime's inherited stdin blocks the guest's thread in a read that no
//! epoch check can interrupt: a guest waiting for input that never comes
//! would outlive its timeout. [`GuardedStdin`] waits only until the deadline.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

use crate::imports::Deadline;

/// Largest write the guest is told it may make at once.
const WRITE_PERMIT: usize = 64 * 1024;

/// One of the host process's own output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostStream {
    Stdout,
    Stderr,
}

/// A guest's stdout or stderr that lets at most `cap` bytes through, into
/// memory or on to the host's own stream.
#[derive(Clone)]
pub(crate) struct CappedPipe {
    cap: usize,
    /// Where the kept bytes go: `None` keeps them in memory.
    stream: Option<HostStream>,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// The kept bytes, when captured.
    captured: Vec<u8>,
    /// How many bytes were let through, captured or streamed.
    kept: usize,
    truncated: bool,
}

impl CappedPipe {
    /// Keeps the first `cap` bytes in memory.
    pub(crate) fn captured(cap: usize) -> Self {
        Self::new(cap, None)
    }

    /// Writes the first `cap` bytes to the host's `stream` as they come.
    pub(crate) fn streamed(cap: usize, stream: HostStream) -> Self {
        Self::new(cap, Some(stream))
    }

    fn new(cap: usize, stream: Option<HostStream>) -> Self {
        Self {
            cap,
            stream,
            state: Arc::default(),
        }
    }

    /// The bytes kept in memory (none when streamed), and whether any were dropped.
    pub(crate) fn contents(&self) -> (Vec<u8>, bool) {
        let state = self.lock();
        (state.captured.clone(), state.truncated)
    }

    fn append(&self, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        let room = self.cap.saturating_sub(state.kept);
        let kept = &bytes[..bytes.len().min(room)];
        state.truncated |= kept.len() < bytes.len();
        state.kept += kept.len();
        match self.stream {
            None => state.captured.extend_from_slice(kept),
            // Flushed at once: a guest that prints and then hangs must be seen
            // to have printed.
            Some(HostStream::Stdout) => write_through(io::stdout().lock(), kept)?,
            Some(HostStream::Stderr) => write_through(io::stderr().lock(), kept)?,
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another writer panicked mid-append; the
        // bytes are still a valid prefix of the output.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn write_through(mut out: impl Write, bytes: &[u8]) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    out.write_all(bytes)?;
    out.flush()
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        match self.stream {
            None => false,
            Some(HostStream::Stdout) => io::IsTerminal::is_terminal(&io::stdout()),
            Some(HostStream::Stderr) => io::IsTerminal::is_terminal(&io::stderr()),
        }
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.append(&bytes)
            .map_err(|e| StreamError::LastOperationFailed(e.into()))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.append(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

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
    /// End of input, or the error that ended it.
    ended: Option<Option<String>>,
    /// A guest is waiting for more input.
    wanted: bool,
    worker_started: bool,
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
            if !state.buffered.is_empty() || state.ended.is_some() {
                return true;
            }
            state.wanted = true;
            if !state.worker_started {
                state.worker_started = true;
                std::thread::Builder::new()
                    .name("wasm-host-stdin".into())
                    .spawn(move || self.read_forever())
                    .expect("spawning the stdin reader thread");
            }
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
            return match &state.ended {
                None => Ok(Bytes::new()),
                Some(None) => Err(StreamError::Closed),
                Some(Some(error)) => Err(StreamError::LastOperationFailed(wasmtime::format_err!(
                    "reading stdin: {error}"
                ))),
            };
        }
        let n = size.min(state.buffered.len());
        Ok(state.buffered.drain(..n).collect())
    }

    fn read_forever(&self) {
        let mut chunk = vec![0; 64 * 1024];
        loop {
            let mut state = self.lock();
            while !state.wanted {
                state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            drop(state);
            let read = io::stdin().lock().read(&mut chunk);
            let mut state = self.lock();
            match read {
                Ok(0) => state.ended = Some(None),
                Ok(n) => {
                    state.buffered.extend(&chunk[..n]);
                    state.wanted = false;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => state.ended = Some(Some(e.to_string())),
            }
            let ended = state.ended.is_some();
            drop(state);
            self.changed.notify_all();
            if ended {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_prefix_and_records_truncation() {
        let pipe = CappedPipe::captured(5);
        pipe.append(b"hel").unwrap();
        assert_eq!(pipe.contents(), (b"hel".to_vec(), false));
        pipe.append(b"lo world").unwrap();
        assert_eq!(pipe.contents(), (b"hello".to_vec(), true));
        pipe.append(b"!").unwrap();
        assert_eq!(pipe.contents(), (b"hello".to_vec(), true));
    }
}
