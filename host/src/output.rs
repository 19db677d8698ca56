//! A guest's stdout or stderr, with a byte cap, captured or streamed (to
//! the host's own stream or to a writer).
//!
//! Wasmtime's `MemoryOutputPipe` fails the guest's write once full, which
//! turns a chatty guest into a crashed one. A host that runs untrusted code
//! wants the opposite: keep the first bytes, drop the rest, say so, and let
//! the guest finish. Memory use, or what reaches the host's own stream,
//! stays bounded by the cap either way.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// A writer shared by every run of a sandbox (see [`crate::Sandbox::stdout_writer`]).
pub(crate) type SharedWriter = Arc<Mutex<dyn Write + Send>>;

/// Where the bytes a [`CappedPipe`] lets through go.
#[derive(Clone)]
pub(crate) enum Sink {
    /// Kept in memory, for the outcome.
    Memory,
    /// The host process's own stream.
    Host(HostStream),
    /// A writer the embedder gave.
    Writer(SharedWriter),
}

/// A guest's stdout or stderr that lets at most `cap` bytes through, into
/// memory or on to a stream.
#[derive(Clone)]
pub(crate) struct CappedPipe {
    cap: usize,
    sink: Sink,
    state: Arc<Mutex<State>>,
    tag: Option<Arc<Tag>>,
}

/// What starts each line one writer of a shared pipe writes.
struct Tag {
    prefix: String,
    /// True when the writer's next byte starts a line.
    at_line_start: AtomicBool,
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
    /// Lets the first `cap` bytes through to `sink` as they come.
    pub(crate) fn new(cap: usize, sink: Sink) -> Self {
        Self {
            cap,
            sink,
            state: Arc::default(),
            tag: None,
        }
    }

    /// The same pipe (same cap, same sink), for a writer each of whose
    /// lines starts with `prefix`.
    pub(crate) fn tagged(&self, prefix: String) -> Self {
        Self {
            tag: Some(Arc::new(Tag {
                prefix,
                at_line_start: AtomicBool::new(true),
            })),
            ..self.clone()
        }
    }

    /// The bytes kept in memory (none when streamed), and whether any were dropped.
    pub(crate) fn contents(&self) -> (Vec<u8>, bool) {
        let state = self.lock();
        (state.captured.clone(), state.truncated)
    }

    /// Passes on what fits under the cap, as if the guest had written it.
    pub(crate) fn append(&self, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        let tagged;
        let bytes = match &self.tag {
            Some(tag) => {
                tagged = tag.apply(bytes);
                &tagged[..]
            }
            None => bytes,
        };
        let room = self.cap.saturating_sub(state.kept);
        let kept = &bytes[..bytes.len().min(room)];
        state.truncated |= kept.len() < bytes.len();
        state.kept += kept.len();
        match &self.sink {
            Sink::Memory => state.captured.extend_from_slice(kept),
            // Flushed at once: a guest that prints and then hangs must be seen
            // to have printed.
            Sink::Host(HostStream::Stdout) => write_through(io::stdout().lock(), kept)?,
            Sink::Host(HostStream::Stderr) => write_through(io::stderr().lock(), kept)?,
            Sink::Writer(writer) => write_through(&mut *writer.lock().unwrap_or_else(|e| e.into_inner()), kept)?,
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another writer panicked mid-append; the
        // bytes are still a valid prefix of the output.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Tag {
    /// `bytes` with the prefix before each line they start.
    fn apply(&self, bytes: &[u8]) -> Vec<u8> {
        let mut tagged = Vec::with_capacity(bytes.len() + self.prefix.len());
        for line in bytes.split_inclusive(|byte| *byte == b'\n') {
            if self.at_line_start.load(Ordering::Relaxed) {
                tagged.extend_from_slice(self.prefix.as_bytes());
            }
            tagged.extend_from_slice(line);
            self.at_line_start.store(line.ends_with(b"\n"), Ordering::Relaxed);
        }
        tagged
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
        match self.sink {
            Sink::Memory | Sink::Writer(_) => false,
            Sink::Host(HostStream::Stdout) => io::IsTerminal::is_terminal(&io::stdout()),
            Sink::Host(HostStream::Stderr) => io::IsTerminal::is_terminal(&io::stderr()),
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
        let pipe = CappedPipe::new(5, Sink::Memory);
        pipe.append(b"hel").unwrap();
        assert_eq!(pipe.contents(), (b"hel".to_vec(), false));
        pipe.append(b"lo world").unwrap();
        assert_eq!(pipe.contents(), (b"hello".to_vec(), true));
        pipe.append(b"!").unwrap();
        assert_eq!(pipe.contents(), (b"hello".to_vec(), true));
    }

    #[test]
    fn each_writer_tags_the_lines_it_starts() {
        let pipe = CappedPipe::new(1 << 10, Sink::Memory);
        let (one, two) = (pipe.tagged("[1] ".into()), pipe.tagged("[2] ".into()));
        one.append(b"a\nb").unwrap();
        two.append(b"c\n").unwrap();
        one.append(b"c\n\n").unwrap();
        pipe.append(b"untagged\n").unwrap();
        let (text, _) = pipe.contents();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "[1] a\n[1] b[2] c\nc\n[1] \nuntagged\n"
        );
    }
}
