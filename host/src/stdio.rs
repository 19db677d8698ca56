//! Captured standard output and error with a byte cap.
//!
//! Wasmtime's `MemoryOutputPipe` fails the guest's write once full, which
//! turns a chatty guest into a crashed one. A host that runs untrusted code
//! wants the opposite: keep the first bytes, drop the rest, say so, and let
//! the guest finish. Memory use stays bounded by the cap either way.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Largest write the guest is told it may make at once.
const WRITE_PERMIT: usize = 64 * 1024;

/// An in-memory stdout or stderr that keeps at most `cap` bytes.
#[derive(Clone)]
pub(crate) struct CappedPipe {
    cap: usize,
    captured: Arc<Mutex<Captured>>,
}

#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    truncated: bool,
}

impl CappedPipe {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            captured: Arc::default(),
        }
    }

    /// The bytes kept so far, and whether any were dropped.
    pub(crate) fn contents(&self) -> (Vec<u8>, bool) {
        let captured = self.lock();
        (captured.bytes.clone(), captured.truncated)
    }

    fn append(&self, bytes: &[u8]) {
        let mut captured = self.lock();
        let room = self.cap.saturating_sub(captured.bytes.len());
        let kept = bytes.len().min(room);
        captured.bytes.extend_from_slice(&bytes[..kept]);
        captured.truncated |= kept < bytes.len();
    }

    fn lock(&self) -> MutexGuard<'_, Captured> {
        // A poisoned lock only means another writer panicked mid-append; the
        // bytes are still a valid prefix of the output.
        self.captured.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
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
        self.append(&bytes);
        Ok(())
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
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
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
        let pipe = CappedPipe::new(5);
        pipe.append(b"hel");
        assert_eq!(pipe.contents(), (b"hel".to_vec(), false));
        pipe.append(b"lo world");
        assert_eq!(pipe.contents(), (b"hello".to_vec(), true));
        pipe.append(b"!");
        assert_eq!(pipe.contents(), (b"hello".to_vec(), true));
    }
}
