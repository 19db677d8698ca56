//! The run's deadline, and the host calls that wait on it.
//!
//! Epoch interruption stops a guest that computes past its timeout, but not
//! one blocked inside a host call: there no epoch check runs. Every host
//! call that can block shares the store's [`Deadline`] and gives up when it
//! passes, ending the run as a timeout. Here: the epoch deadline itself and
//! the guarded `poll_oneoff` (Wasmtime's own implementation sleeps for as
//! long as the guest asks); `crate::stdin` waits on the same deadline, and
//! `crate::open` keeps `path_open` from blocking at all. ARCHITECTURE.md
//! lists every call that can block and what bounds it.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use wasmtime::{AsContextMut, Caller, Extern, Store, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p1::types::{Event, Subclockflags, Subscription, SubscriptionU};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as p1, WasiSnapshotPreview1};
use wiggle::{GuestMemory, GuestPtr, GuestType};

/// How often the engine's epoch advances: the resolution of run timeouts.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How often a wait that cannot watch the deadline (a read of a live
/// stdin, `crate::stdin`) looks at it again, so that a cancellation
/// reaches it too.
pub(crate) const RECHECK: Duration = Duration::from_millis(50);

/// When the current call into a guest times out (`None` for never), shared
/// by the host calls that could otherwise block past it, and by the epoch
/// check (`arm`). Cancelling it (an async call's future dropped,
/// `crate::asynchronous`) moves it to now for good: every wait on it ends,
/// and the guest stops at its next epoch check.
#[derive(Clone)]
pub(crate) struct Deadline(Arc<watch::Sender<When>>);

#[derive(Clone, Copy, Default)]
struct When {
    at: Option<Instant>,
    cancelled: bool,
}

impl Default for Deadline {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(When::default())))
    }
}

thread_local! {
    /// The deadline of the async call whose guest this thread runs.
    static ADOPTED: std::cell::RefCell<Option<Deadline>> = const { std::cell::RefCell::new(None) };
}

impl Deadline {
    /// The deadline for a store made now: for the first one made on the
    /// thread of an async call (`Deadline::adopt`), that call's, so that
    /// dropping the call's future reaches a store made after it started;
    /// else a fresh one. Only the first: a store made later on that thread
    /// (a run in one of the guest's host calls) has a timeout of its own,
    /// and arming it must not move the guest's.
    pub(crate) fn for_new_store() -> Self {
        ADOPTED.with(|adopted| adopted.borrow_mut().take()).unwrap_or_default()
    }

    /// Makes this the deadline of the next store this thread makes.
    pub(crate) fn adopt(&self) {
        ADOPTED.with(|adopted| *adopted.borrow_mut() = Some(self.clone()));
    }

    pub(crate) fn get(&self) -> Option<Instant> {
        self.0.borrow().at
    }

    /// True once the deadline has passed (or was cancelled).
    pub(crate) fn passed(&self) -> bool {
        self.get().is_some_and(|at| Instant::now() >= at)
    }

    fn set(&self, at: Option<Instant>) {
        self.0.send_if_modified(|when| {
            let changed = !when.cancelled && when.at != at;
            if changed {
                when.at = at;
            }
            changed
        });
    }

    /// Ends the deadline now, and every later one: the guest is stopped
    /// at its next check, and no arming gives it time again.
    pub(crate) fn cancel(&self) {
        self.0.send_modify(|when| {
            when.cancelled = true;
            when.at = Some(Instant::now());
        });
    }
}

/// What the guards need from a store's data: its deadline, and the WASI
/// context the guarded calls pass on to.
pub(crate) trait Guarded: 'static {
    fn deadline(&self) -> &Deadline;
    fn wasi(&mut self) -> &mut WasiP1Ctx;
}

/// Arms the store's deadline, that of the host calls that block and of the
/// epoch check: `timeout` from now, or never. Returns that deadline, for
/// [`until`].
///
/// The epoch check asks the deadline at every tick rather than counting
/// ticks, so that a deadline moved earlier (cancelled) stops the guest within
/// a tick.
pub(crate) fn arm<T: Guarded>(store: &mut Store<T>, timeout: Option<Duration>) -> Deadline {
    let deadline = store.data().deadline().clone();
    deadline.set(timeout.and_then(|timeout| Instant::now().checked_add(timeout)));
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        Ok(match deadline.passed() {
            true => UpdateDeadline::Interrupt,
            false => UpdateDeadline::Continue(1),
        })
    });
    store.data().deadline().clone()
}

/// Runs `work`, which blocks its thread on Tokio (wasmtime-wasi runs every
/// WASI call through `in_tokio`, a component's run is awaited there), from
/// any context: outside a runtime or where blocking is allowed, at once; on
/// a multi-thread runtime, through `block_in_place`, which hands the
/// worker's other tasks to another thread while the guest runs; inside a
/// current-thread runtime, which cannot spare its one thread, on a thread
/// of its own that the caller waits for. Without this, the guest's first
/// WASI call inside a runtime panics ("Cannot start a runtime from within
/// a runtime").
pub(crate) fn blocking<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|runtime| runtime.runtime_flavor()) {
        Err(_) => work(),
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        Ok(_) => std::thread::scope(|scope| {
            scope
                .spawn(work)
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }),
    }
}

/// The guest's monotonic clock: nanoseconds since the store was created,
/// so that a guest learns nothing of the host's uptime.
pub(crate) struct RunClock {
    origin: Instant,
}

impl RunClock {
    pub(crate) fn new() -> Self {
        Self { origin: Instant::now() }
    }
}

impl wasmtime_wasi::HostMonotonicClock for RunClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// WASI's `poll_oneoff`, bounded by the deadline whatever it waits on:
/// every clock, relative or absolute, and any mix of clocks and
/// descriptors. Past the deadline the guest is interrupted, as if the epoch
/// had caught it in a loop.
pub(crate) fn guarded_poll_oneoff<T: Guarded>(
    mut caller: Caller<'_, T>,
    subs: i32,
    events: i32,
    count: i32,
    written: i32,
) -> wasmtime::Result<i32> {
    let deadline = caller.data().deadline().clone();
    if let Some(wait) = lone_relative_sleep(&mut caller, subs, count) {
        // Wasmtime would sleep this thread for `wait`, deaf to the deadline
        // and to its cancellation: the wait is made here instead, and
        // Wasmtime answers the same poll with the clock's timeout at zero
        // (put back after), writing the event as it always does.
        wasmtime_wasi::runtime::in_tokio(until(&deadline, async {
            tokio::time::sleep(wait).await;
            Ok(())
        }))?;
        let timeout = with_wasi(&mut caller, |_, memory| {
            (timeout_bytes(subs).map(|byte| {
                let was = memory.read(byte)?;
                memory.write(byte, 0)?;
                Ok(was)
            }))
            .collect::<wasmtime::Result<Vec<u8>>>()
        })?;
        let answer = with_wasi(&mut caller, |wasi, memory| {
            wasmtime_wasi::runtime::in_tokio(p1::poll_oneoff(wasi, memory, subs, events, count, written))
        });
        // A guest may lay the answer (its event, their number) over the
        // subscription: those bytes stay as answered.
        let answered = |at: u32| {
            let at = u64::from(at);
            let written_over =
                |start: i32, len: u64| (u64::from(start as u32)..u64::from(start as u32) + len).contains(&at);
            matches!(answer, Ok(0))
                && (written_over(events, u64::from(Event::guest_size())) || written_over(written, 4))
        };
        with_wasi(&mut caller, |_, memory| {
            for (byte, was) in timeout_bytes(subs).zip(timeout) {
                if !answered(byte.offset()) {
                    memory.write(byte, was)?;
                }
            }
            Ok(())
        })?;
        return answer;
    }
    with_wasi(&mut caller, |wasi, memory| {
        wasmtime_wasi::runtime::in_tokio(until(
            &deadline,
            p1::poll_oneoff(wasi, memory, subs, events, count, written),
        ))
    })
}

/// Where a clock subscription's timeout lies in it (the preview 1 ABI,
/// checked against wasmtime-wasi's type by the tests below).
const TIMEOUT_AT: u32 = 24;

/// The bytes of the timeout of the clock subscription at `subs` (one
/// [`lone_relative_sleep`] found, so in bounds): bytes, since an answer laid
/// over the subscription may leave it no clock to decode.
fn timeout_bytes(subs: i32) -> impl Iterator<Item = GuestPtr<u8>> {
    (0..8).map(move |i| GuestPtr::new((subs as u32).wrapping_add(TIMEOUT_AT + i)))
}

/// Runs a WASI call's or a guest's future until `deadline`: past it (or
/// once it is cancelled) the future is dropped and the guest interrupted as
/// a timeout, as if the epoch had caught it computing. Every wait on the
/// deadline goes through here. Only what the future awaits is cut short; a
/// system call it makes on this thread is not.
pub(crate) async fn until<R>(
    deadline: &Deadline,
    call: impl Future<Output = wasmtime::Result<R>>,
) -> wasmtime::Result<R> {
    let mut changes = deadline.0.subscribe();
    tokio::pin!(call);
    loop {
        let at = changes.borrow_and_update().at;
        let expiry = async {
            match at {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = &mut call => return result,
            () = expiry => return Err(wasmtime::Trap::Interrupt.into()),
            // Moved (cancelled): wait for the new deadline instead.
            Ok(()) = changes.changed() => {}
        }
    }
}

/// [`until`] from synchronous code, on wasmtime-wasi's Tokio runtime
/// (through [`blocking`]): how a component's calls are awaited.
pub(crate) fn block_until<R: Send>(
    deadline: &Deadline,
    work: impl Future<Output = wasmtime::Result<R>> + Send,
) -> wasmtime::Result<R> {
    block_until_made(deadline, || work)
}

/// As [`block_until`], with the future made by `make` on the thread that
/// awaits it, so that it need not be `Send` (an embedder's async closure's).
pub(crate) fn block_until_made<R: Send, F: Future<Output = wasmtime::Result<R>>>(
    deadline: &Deadline,
    make: impl FnOnce() -> F + Send,
) -> wasmtime::Result<R> {
    blocking(|| wasmtime_wasi::runtime::in_tokio(until(deadline, make())))
}

/// Calls `call` with the guest's WASI context and memory, the way
/// Wasmtime's generated bindings call its preview 1 implementation.
pub(crate) fn with_wasi<T: Guarded, R>(
    caller: &mut Caller<'_, T>,
    call: impl FnOnce(&mut WasiP1Ctx, &mut GuestMemory<'_>) -> wasmtime::Result<R>,
) -> wasmtime::Result<R> {
    let fuel = caller.as_context_mut().hostcall_fuel();
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => {
            let (bytes, state) = memory.data_and_store_mut(caller);
            let wasi = state.wasi();
            wasi.set_hostcall_fuel(fuel);
            call(wasi, &mut GuestMemory::Unshared(bytes))
        }
        // A runtime with the threads proposal.
        Some(Extern::SharedMemory(memory)) => {
            let wasi = caller.data_mut().wasi();
            wasi.set_hostcall_fuel(fuel);
            call(wasi, &mut GuestMemory::Shared(memory.data()))
        }
        _ => wasmtime::bail!("missing required memory export"),
    }
}

/// How long the guest asks to wait, when its poll is one relative clock
/// subscription. Wasmtime serves that poll, on any clock, with a plain
/// sleep of the thread that no timer can cut short; every other poll
/// awaits timers and descriptors, and [`until`] bounds it.
///
/// The subscription is decoded by wasmtime-wasi's own generated type, as its
/// `poll_oneoff` decodes it (bounds, alignment, clock ids and all), so that
/// this test and Wasmtime's cannot disagree, and a change of layout in a
/// new version is a compile error here rather than a silent misreading.
fn lone_relative_sleep<T: Guarded>(caller: &mut Caller<'_, T>, subs: i32, count: i32) -> Option<Duration> {
    if count != 1 {
        return None;
    }
    with_wasi(caller, |_, memory| Ok(relative_clock(memory, subs)))
        .ok()
        .flatten()
}

/// The wait of the clock subscription at `subs`, when it is relative.
fn relative_clock(memory: &GuestMemory<'_>, subs: i32) -> Option<Duration> {
    let sub = memory.read(GuestPtr::<Subscription>::new(subs as u32)).ok()?;
    match sub.u {
        SubscriptionU::Clock(clock) if !clock.flags.contains(Subclockflags::SUBSCRIPTION_CLOCK_ABSTIME) => {
            Some(Duration::from_nanos(clock.timeout))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock subscription laid out as the preview 1 ABI says (what a
    /// guest writes): userdata at 0, tag at 8, clock id at 16, timeout at
    /// 24, precision at 32, flags at 40, 48 bytes in all.
    fn clock_subscription(memory: &mut [u8], at: usize, tag: u8, id: u32, timeout: u64, flags: u16) {
        memory[at..at + 48].fill(0);
        memory[at + 8] = tag;
        memory[at + 16..at + 20].copy_from_slice(&id.to_le_bytes());
        memory[at + 24..at + 32].copy_from_slice(&timeout.to_le_bytes());
        memory[at + 40..at + 42].copy_from_slice(&flags.to_le_bytes());
    }

    fn read(memory: &mut [u8], subs: i32) -> Option<Duration> {
        relative_clock(&GuestMemory::Unshared(memory), subs)
    }

    #[test]
    fn wasmtime_wasi_reads_a_subscription_as_the_preview_1_abi_lays_it_out() {
        assert_eq!((Subscription::guest_size(), Subscription::guest_align()), (48, 8));
        let mut memory = vec![0u8; 128];
        let second = Duration::from_secs(1).as_nanos() as u64;
        for id in 0..=3 {
            clock_subscription(&mut memory, 16, 0, id, second, 0);
            assert_eq!(read(&mut memory, 16), Some(Duration::from_secs(1)), "clock {id}");
        }
        clock_subscription(&mut memory, 16, 0, 1, second, 1);
        assert_eq!(read(&mut memory, 16), None, "an absolute time");
        clock_subscription(&mut memory, 16, 1, 1, second, 0);
        assert_eq!(read(&mut memory, 16), None, "an fd_read subscription");
        clock_subscription(&mut memory, 16, 0, 4, second, 0);
        assert_eq!(read(&mut memory, 16), None, "no such clock");
        clock_subscription(&mut memory, 20, 0, 1, second, 0);
        assert_eq!(read(&mut memory, 20), None, "misaligned");
        assert_eq!(read(&mut memory, 96), None, "past the end of memory");
        assert_eq!(read(&mut memory, -8), None, "a pointer near 4 GiB");
    }
}
