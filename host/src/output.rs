//! A guest's stdout or stderr, with a byte cap, captured or streamed.
//!
//! Wasmtime's `MemoryOutputPipe` fails the guest's write once full, which
//! turns a chatty guest into a crashed one. A host that runs untrusted code
//! wants the opposite: keep the first bytes, drop the rest, say so, and let
//! the guest finish. Memory use, or what reaches the host's own stream,
//! stays bounded by the cap either way.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

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
