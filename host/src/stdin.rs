//! A guest's stdin read from the host process's own stdin or from any
//! reader, behind its run's deadline.
//!
//! Wasmtime's inherited stdin blocks the guest's thread in a read that no
//! epoch check can interrupt: a guest waiting for input that never comes
//! would outlive its timeout. [`GuardedStdin`] waits only until the deadline;
//! one worker thread per source (the process's stdin, or a reader given to
//! [`crate::Sandbox::stdin_reader`]) does the blocking reads, and only when a
//! guest asks, so nothing is consumed that no guest read. On Linux a
//! process that ends with its one guest (`wasm-host run`) can have the
//! process's stdin read on the guest's own thread instead
//! ([`crate::Sandbox::inherit_stdin_on_guest_thread`], through [`NoWait`]):
//! handing each read to a worker and back wakes a thread on another core,
//! a large share of a small guest's run (docs/performance.md).

use std::collections::VecDeque;
use std::io::{self, Read};
#[cfg(target_os = "linux")]
use std::os::fd::{AsRawFd, BorrowedFd};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdinStream};
use wasmtime_wasi::p2::{InputStream, Pollable, StreamError, StreamResult};

use crate::deadline::{Deadline, RECHECK};

/// A run's stdin, read from an [`InputSource`]: a guest waiting for it is
/// interrupted at its deadline like one in a loop.
pub(crate) struct GuardedStdin {
    deadline: Deadline,
    source: Arc<InputSource>,
    on_own_thread: bool,
}

impl GuardedStdin {
    /// `on_own_thread`: the guest's thread reads the source itself where
    /// it can (see [`InputSource::wait`]).
    pub(crate) fn new(source: Arc<InputSource>, deadline: Deadline, on_own_thread: bool) -> Self {
        Self {
            deadline,
            source,
            on_own_thread,
        }
    }

    fn stream(&self) -> GuardedStdinStream {
        GuardedStdinStream {
            deadline: self.deadline.clone(),
            source: self.source.clone(),
            on_own_thread: self.on_own_thread,
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
    on_own_thread: bool,
    /// Set when a wait reached the deadline: the next read interrupts the guest.
    timed_out: bool,
}

impl GuardedStdinStream {
    /// Waits until input, end of input or the deadline, whichever is first,
    /// in slices of [`RECHECK`]: the deadline may move earlier meanwhile
    /// (an async call cancelled).
    fn wait(&mut self) {
        self.timed_out = loop {
            let slice = Instant::now() + RECHECK;
            let until = self.deadline.get().map_or(slice, |at| at.min(slice));
            if self.source.wait(Some(until), self.on_own_thread) {
                break false;
            }
            if self.deadline.passed() {
                break true;
            }
        };
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
    /// The descriptor a guest's thread may read itself (the process's stdin).
    #[cfg(target_os = "linux")]
    descriptor: Option<BorrowedFd<'static>>,
}

/// The most one read of the source takes.
const CHUNK: usize = 64 * 1024;

/// The process's descriptor 0 for the worker, read as [`NoWait`] reads it
/// (past `std::io::stdin()`'s buffer), and as an end of input if closed.
#[cfg(target_os = "linux")]
struct Descriptor0;

#[cfg(target_os = "linux")]
impl Read for Descriptor0 {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is writable for its length.
        let read = unsafe { libc::read(libc::STDIN_FILENO, buf.as_mut_ptr().cast(), buf.len()) };
        match usize::try_from(read) {
            Ok(read) => Ok(read),
            Err(_) if io::Error::last_os_error().raw_os_error() == Some(libc::EBADF) => Ok(0),
            Err(_) => Err(io::Error::last_os_error()),
        }
    }
}

/// A descriptor read without ever blocking: `preadv2` with `RWF_NOWAIT`
/// fails with `EAGAIN` where `read` would wait, per call, so nothing changes
/// for other processes sharing the open file (as `O_NONBLOCK` would).
#[cfg(target_os = "linux")]
struct NoWait {
    fd: BorrowedFd<'static>,
    /// A pipe, FIFO or socket: `poll` tells when a read will not wait.
    pollable: bool,
}

#[cfg(target_os = "linux")]
impl NoWait {
    fn new(fd: BorrowedFd<'static>) -> Option<NoWait> {
        let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstat fills `stat` when it returns 0.
        if unsafe { libc::fstat(fd.as_raw_fd(), stat.as_mut_ptr()) } != 0 {
            return None;
        }
        // SAFETY: as above.
        let kind = unsafe { stat.assume_init() }.st_mode & libc::S_IFMT;
        Some(NoWait {
            fd,
            pollable: kind == libc::S_IFIFO || kind == libc::S_IFSOCK,
        })
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: one iovec over `buf`; offset -1 reads at (and moves) the
        // file's own position, as `read` does.
        let read = unsafe { libc::preadv2(self.fd.as_raw_fd(), &iov, 1, -1, libc::RWF_NOWAIT) };
        usize::try_from(read).map_err(|_| io::Error::last_os_error())
    }

    /// Waits until the descriptor has input, its end or an error to report
    /// (true), or `deadline` passed (false).
    fn poll(&self, deadline: Option<Instant>) -> io::Result<bool> {
        loop {
            let timeout_ms = match deadline {
                None => -1,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(false);
                    }
                    // Rounded up, so it never returns before the deadline.
                    i32::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
                }
            };
            let mut fd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd.
            match unsafe { libc::poll(&mut fd, 1, timeout_ms) } {
                0 => continue,
                ready if ready > 0 => return Ok(true),
                _ => {
                    let error = io::Error::last_os_error();
                    if error.kind() != io::ErrorKind::Interrupted {
                        return Err(error);
                    }
                }
            }
        }
    }
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
            .get_or_init(|| {
                let terminal = io::IsTerminal::is_terminal(&io::stdin());
                #[cfg(not(target_os = "linux"))]
                let source = InputSource::new(io::stdin(), terminal);
                #[cfg(target_os = "linux")]
                let mut source = InputSource::new(Descriptor0, terminal);
                #[cfg(target_os = "linux")]
                {
                    // SAFETY: as std's `Stdin::as_fd`, this assumes the
                    // program does not close descriptor 0 while guests read
                    // it; if it is not open, fstat fails and the worker
                    // reads an end of input.
                    source.descriptor = Some(unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) });
                }
                Arc::new(source)
            })
            .clone()
    }

    /// A source reading `reader`; its worker thread ends when the reader does.
    pub(crate) fn reader(reader: impl Read + Send + 'static) -> Arc<InputSource> {
        Arc::new(InputSource::new(reader, false))
    }

    fn new(reader: impl Read + Send + 'static, terminal: bool) -> InputSource {
        InputSource {
            shared: Arc::new(Shared {
                state: Mutex::new(StdinState {
                    buffered: VecDeque::new(),
                    worker: Worker::NotStarted(Box::new(reader)),
                    abandoned: false,
                }),
                changed: Condvar::new(),
            }),
            terminal,
            #[cfg(target_os = "linux")]
            descriptor: None,
        }
    }

    /// Waits until there is input or its end (true), or `deadline` passed
    /// (false). `on_own_thread`: the calling thread reads the source's
    /// descriptor itself while it can; otherwise, and where it cannot, the
    /// worker reads.
    fn wait(&self, deadline: Option<Instant>, on_own_thread: bool) -> bool {
        #[cfg(target_os = "linux")]
        if on_own_thread
            && let Some(no_wait) = self.descriptor.and_then(NoWait::new)
            && let Some(ready) = self.wait_on_own_thread(&no_wait, deadline)
        {
            return ready;
        }
        #[cfg(not(target_os = "linux"))]
        let _ = on_own_thread;
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

    /// Waits on the calling thread, reading the source without blocking
    /// and polling it until the deadline, while the worker was never
    /// needed. `None` hands this wait, and every later one, to the worker:
    /// the source cannot be read that way (a terminal, a named FIFO), or a
    /// read would wait where `poll` cannot tell when it will not (a regular
    /// file not yet in memory, a datagram socket shut for reading), or it
    /// failed (the worker's read says how). The lock is held across the
    /// read, so that two guests' reads are buffered in the order they took
    /// the bytes.
    #[cfg(target_os = "linux")]
    fn wait_on_own_thread(&self, no_wait: &NoWait, deadline: Option<Instant>) -> Option<bool> {
        // Allocated only for a read: most waits find bytes already buffered.
        let mut chunk = Vec::new();
        let mut polled = false;
        loop {
            let mut state = self.shared.lock();
            if !state.buffered.is_empty() || matches!(state.worker, Worker::Ended(_)) {
                return Some(true);
            }
            if !matches!(state.worker, Worker::NotStarted(_)) {
                return None;
            }
            chunk.resize(CHUNK, 0);
            match no_wait.read(&mut chunk) {
                Ok(0) => {
                    state.worker = Worker::Ended(None);
                    return Some(true);
                }
                Ok(n) => {
                    state.buffered.extend(&chunk[..n]);
                    return Some(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Nothing yet. Once `poll` said there was, this is either
                // another reader of the same pipe that took it first (a
                // read that did not return would have waited for more), or
                // a socket `poll` calls readable for good: not worth
                // telling apart by spinning.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && no_wait.pollable && !polled => {}
                Err(_) => return None,
            }
            // Other guests may read meanwhile.
            drop(state);
            match no_wait.poll(deadline) {
                Ok(true) => polled = true,
                Ok(false) => return Some(false),
                Err(_) => return None,
            }
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
        let mut chunk = vec![0; CHUNK];
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::io::Write;
    use std::os::fd::{AsFd, OwnedFd};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// The worker's reader: says whether the worker ever read.
    struct Tripwire(Arc<AtomicBool>);

    impl Read for Tripwire {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            self.0.store(true, Ordering::SeqCst);
            Ok(0)
        }
    }

    /// A source on the read end of a new pipe, as `host()` makes one on
    /// stdin, and whether its worker read.
    fn piped() -> (Arc<InputSource>, io::PipeWriter, Arc<AtomicBool>) {
        let (reader, writer) = io::pipe().unwrap();
        let (source, worker_read) = on(OwnedFd::from(reader));
        (source, writer, worker_read)
    }

    /// A source on `descriptor` (kept open for the test's life), and
    /// whether its worker read.
    fn on(descriptor: OwnedFd) -> (Arc<InputSource>, Arc<AtomicBool>) {
        let descriptor: &'static OwnedFd = Box::leak(Box::new(descriptor));
        let worker_read = Arc::new(AtomicBool::new(false));
        let mut source = InputSource::new(Tripwire(worker_read.clone()), false);
        source.descriptor = Some(descriptor.as_fd());
        (Arc::new(source), worker_read)
    }

    /// Runs `wait` on a thread of its own and says what it returned, or
    /// `None` if it was still waiting after `patience`.
    fn wait_on_thread(source: &Arc<InputSource>, deadline: Instant, patience: Duration) -> Option<bool> {
        let (sent, received) = mpsc::channel();
        let source = source.clone();
        std::thread::spawn(move || sent.send(source.wait(Some(deadline), true)));
        received.recv_timeout(patience).ok()
    }

    #[test]
    fn a_pipe_is_read_on_the_waiting_thread_without_a_worker() {
        let (source, mut writer, worker_read) = piped();
        writer.write_all(b"abc").unwrap();
        assert!(source.wait(Some(Instant::now() + Duration::from_secs(5)), true));
        assert_eq!(&source.take(10).unwrap()[..], b"abc");
        drop(writer);
        assert!(source.wait(Some(Instant::now() + Duration::from_secs(5)), true));
        assert!(matches!(source.take(10), Err(StreamError::Closed)));
        assert!(!worker_read.load(Ordering::SeqCst), "a pipe needs no worker thread");
    }

    #[test]
    fn a_read_of_an_empty_pipe_returns_at_once() {
        // Another reader of the same pipe can take what `poll` announced;
        // the read that follows must then fail, not wait for more input.
        let (reader, _writer) = io::pipe().unwrap();
        let reader: &'static OwnedFd = Box::leak(Box::new(OwnedFd::from(reader)));
        let no_wait = NoWait::new(reader.as_fd()).unwrap();
        let (sent, received) = mpsc::channel();
        std::thread::spawn(move || sent.send(no_wait.read(&mut [0; 8]).map_err(|e| e.kind())));
        let read = received.recv_timeout(Duration::from_secs(5)).expect("the read blocked");
        assert_eq!(read, Err(io::ErrorKind::WouldBlock));
    }

    #[test]
    fn a_silent_pipe_is_waited_on_until_the_deadline_only() {
        let (source, _writer, worker_read) = piped();
        let started = Instant::now();
        let ready = wait_on_thread(&source, started + Duration::from_millis(200), Duration::from_secs(10));
        assert_eq!(
            ready,
            Some(false),
            "the wait must end at the deadline, not before or never"
        );
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(!worker_read.load(Ordering::SeqCst));
    }

    #[test]
    fn input_that_comes_while_waiting_ends_the_wait() {
        let (source, mut writer, _) = piped();
        let waiting = {
            let source = source.clone();
            std::thread::spawn(move || source.wait(Some(Instant::now() + Duration::from_secs(10)), true))
        };
        std::thread::sleep(Duration::from_millis(50));
        writer.write_all(b"x").unwrap();
        assert!(waiting.join().unwrap());
        assert_eq!(&source.take(10).unwrap()[..], b"x");
    }

    #[test]
    fn without_on_own_thread_the_worker_reads() {
        let (source, mut writer, worker_read) = piped();
        writer.write_all(b"abc").unwrap();
        assert!(source.wait(Some(Instant::now() + Duration::from_secs(5)), false));
        assert!(worker_read.load(Ordering::SeqCst), "inherit_stdin reads on the worker");
    }

    #[test]
    fn a_socket_poll_calls_readable_for_good_goes_to_the_worker_not_a_spin() {
        // Shut for reading, a datagram socket polls readable while a
        // read that may not wait finds nothing, forever.
        let (socket, _peer) = std::os::unix::net::UnixDatagram::pair().unwrap();
        socket.shutdown(std::net::Shutdown::Read).unwrap();
        let (source, worker_read) = on(OwnedFd::from(socket));
        let started = Instant::now();
        let ready = wait_on_thread(&source, started + Duration::from_secs(5), Duration::from_secs(10));
        assert_eq!(ready, Some(true), "the worker's read ends the wait");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "waited {:?}",
            started.elapsed()
        );
        assert!(worker_read.load(Ordering::SeqCst));
    }
}
