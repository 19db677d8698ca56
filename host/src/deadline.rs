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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::{AsContextMut, Caller, Extern, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p1::types::{Subclockflags, Subscription, SubscriptionU};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as p1, WasiSnapshotPreview1};
use wiggle::{GuestMemory, GuestPtr};

/// How often the engine's epoch advances: the resolution of run timeouts.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// When the current call into a guest times out (`None` for never), shared
/// by the host calls that could otherwise block past it.
#[derive(Clone, Default)]
pub(crate) struct Deadline(Arc<Mutex<Option<Instant>>>);

impl Deadline {
    pub(crate) fn get(&self) -> Option<Instant> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, deadline: Option<Instant>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = deadline;
    }
}

/// What the guards need from a store's data: its deadline, and the WASI
/// context the guarded calls pass on to.
pub(crate) trait Guarded: 'static {
    fn deadline(&self) -> &Deadline;
    fn wasi(&mut self) -> &mut WasiP1Ctx;
}

/// Arms the store's epoch deadline, and that of the host calls that block:
/// `timeout` from now, or never. Returns that deadline, for [`until`].
pub(crate) fn arm<T: Guarded>(store: &mut Store<T>, timeout: Option<Duration>) -> Option<Instant> {
    // Wasmtime adds the ticks to the current epoch without saturating, so
    // "never" must leave room for every epoch this process will see.
    const NEVER: u64 = u64::MAX / 2;
    let ticks = match timeout {
        // One extra tick: the current epoch may be about to end.
        Some(timeout) => u64::try_from(timeout.as_nanos() / EPOCH_TICK.as_nanos())
            .unwrap_or(NEVER)
            .saturating_add(1)
            .min(NEVER),
        None => NEVER,
    };
    store.set_epoch_deadline(ticks);
    let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
    store.data().deadline().set(deadline);
    deadline
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
    let deadline = caller.data().deadline().get();
    if let Some(deadline) = deadline
        && lone_relative_sleep(&mut caller, subs, count)
            .is_some_and(|wait| Instant::now().checked_add(wait).is_none_or(|end| end > deadline))
    {
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        return Err(wasmtime::Trap::Interrupt.into());
    }
    with_wasi(&mut caller, |wasi, memory| {
        wasmtime_wasi::runtime::in_tokio(until(
            deadline,
            p1::poll_oneoff(wasi, memory, subs, events, count, written),
        ))
    })
}

/// Runs a WASI call's or a guest's future until `deadline`: past it the
/// future is dropped and the guest interrupted as a timeout, as if the
/// epoch had caught it computing. Every wait on the deadline goes through
/// here. Only what the future awaits is cut short; a system call it makes
/// on this thread is not.
pub(crate) async fn until<R>(
    deadline: Option<Instant>,
    call: impl Future<Output = wasmtime::Result<R>>,
) -> wasmtime::Result<R> {
    let Some(deadline) = deadline else {
        return call.await;
    };
    tokio::time::timeout_at(deadline.into(), call)
        .await
        .unwrap_or_else(|_| Err(wasmtime::Trap::Interrupt.into()))
}

/// [`until`] from synchronous code, on wasmtime-wasi's Tokio runtime
/// (through [`blocking`]): how a component's calls are awaited.
pub(crate) fn block_until<R: Send>(
    deadline: Option<Instant>,
    work: impl Future<Output = wasmtime::Result<R>> + Send,
) -> wasmtime::Result<R> {
    block_until_made(deadline, || work)
}

/// As [`block_until`], with the future made by `make` on the thread that
/// awaits it, so that it need not be `Send` (an embedder's async closure's).
pub(crate) fn block_until_made<R: Send, F: Future<Output = wasmtime::Result<R>>>(
    deadline: Option<Instant>,
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
    // The engine has threads off, so no guest has a shared memory.
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        wasmtime::bail!("missing required memory export");
    };
    let (bytes, state) = memory.data_and_store_mut(caller);
    let wasi = state.wasi();
    wasi.set_hostcall_fuel(fuel);
    call(wasi, &mut GuestMemory::Unshared(bytes))
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
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return None;
    };
    let memory = GuestMemory::Unshared(memory.data_mut(caller));
    relative_clock(&memory, subs)
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
    use wiggle::GuestType;

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
