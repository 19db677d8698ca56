//! The run's deadline, and the host calls that wait on it.
//!
//! Epoch interruption stops a guest that computes past its timeout, but not
//! one blocked inside a host call: there no epoch check runs. Every host
//! call that can block shares the store's [`Deadline`] and gives up when it
//! passes, ending the run as a timeout. Here: the epoch deadline itself and
//! the guarded `poll_oneoff` (Wasmtime's own implementation sleeps for as
//! long as the guest asks); `crate::stdin` waits on the same deadline.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use wasmtime::{AsContextMut, Caller, Extern, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as p1, WasiSnapshotPreview1};
use wiggle::GuestMemory;

use crate::memory::checked_range;

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

/// What the `poll_oneoff` guard knows about one store.
pub(crate) struct SleepGuard {
    pub(crate) deadline: Deadline,
    /// The zero of the guest's monotonic clock (see [`RunClock`]).
    origin: Instant,
}

impl SleepGuard {
    /// A guard for a store whose monotonic clock is `clock`.
    pub(crate) fn new(clock: &RunClock) -> Self {
        Self {
            deadline: Deadline::default(),
            origin: clock.origin,
        }
    }
}

/// What the guards need from a store's data: its deadline, and the WASI
/// context the guarded calls pass on to.
pub(crate) trait Guarded: 'static {
    fn sleep_guard(&self) -> &SleepGuard;
    fn wasi(&mut self) -> &mut WasiP1Ctx;
}

/// Arms the store's epoch deadline, and that of the host calls that block:
/// `timeout` from now, or never.
pub(crate) fn arm<T: Guarded>(store: &mut Store<T>, timeout: Option<Duration>) {
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
    store.data().sleep_guard().deadline.set(deadline);
}

/// The guest's monotonic clock: nanoseconds since the store was created.
/// Its zero is known to the [`SleepGuard`], which must turn absolute
/// monotonic wake-up times into instants.
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

/// WASI's `poll_oneoff`, except that a guest asking to sleep past its
/// deadline sleeps until the deadline and is then interrupted, as if the
/// epoch had caught it in a loop. Every other poll goes to Wasmtime's own
/// implementation, called the way its generated binding calls it.
pub(crate) fn guarded_poll_oneoff<T: Guarded>(
    mut caller: Caller<'_, T>,
    subs: i32,
    events: i32,
    count: i32,
    written: i32,
) -> wasmtime::Result<i32> {
    if let Some(deadline) = sleeps_past_deadline(&mut caller, subs, count) {
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        return Err(wasmtime::Trap::Interrupt.into());
    }
    let fuel = caller.as_context_mut().hostcall_fuel();
    // The engine has threads off, so no guest has a shared memory.
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        wasmtime::bail!("missing required memory export");
    };
    let (bytes, state) = memory.data_and_store_mut(&mut caller);
    let mut memory = GuestMemory::Unshared(bytes);
    let wasi = state.wasi();
    wasi.set_hostcall_fuel(fuel);
    wasmtime_wasi::runtime::in_tokio(p1::poll_oneoff(wasi, &mut memory, subs, events, count, written))
}

/// Size of a WASI preview 1 `subscription`, and offsets of its fields.
const SUBSCRIPTION_SIZE: u64 = 48;
const TAG: usize = 8;
const CLOCK_ID: usize = 16;
const CLOCK_TIMEOUT: usize = 24;
const CLOCK_FLAGS: usize = 40;
const TAG_CLOCK: u8 = 0;
const CLOCK_REALTIME: u32 = 0;
const CLOCK_MONOTONIC: u32 = 1;
const ABSOLUTE_TIME: u16 = 1;

/// The deadline, when every subscription of this poll is a clock that
/// fires after it: the guest asked to sleep past its timeout. Polls that
/// include a file descriptor return at once (captured streams and files are
/// always ready) and are not guarded; neither are malformed ones, which
/// Wasmtime rejects with an errno.
fn sleeps_past_deadline<T: Guarded>(caller: &mut Caller<'_, T>, subs: i32, count: i32) -> Option<Instant> {
    let guard = caller.data().sleep_guard();
    let (deadline, origin) = (guard.deadline.get()?, guard.origin);
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return None;
    };
    let (subs, count) = (u64::from(subs as u32), u64::from(count as u32));
    if count == 0 || subs % 8 != 0 {
        return None;
    }
    let data = memory.data(&caller);
    let range = checked_range(subs, count.checked_mul(SUBSCRIPTION_SIZE)?, data.len()).ok()?;
    let now = Instant::now();
    let remaining = deadline.saturating_duration_since(now);
    let fires_after_deadline = |sub: &[u8]| -> Option<bool> {
        if sub[TAG] != TAG_CLOCK {
            return None;
        }
        let id = u32::from_le_bytes(sub[CLOCK_ID..CLOCK_ID + 4].try_into().ok()?);
        let timeout = Duration::from_nanos(u64::from_le_bytes(
            sub[CLOCK_TIMEOUT..CLOCK_TIMEOUT + 8].try_into().ok()?,
        ));
        let absolute = u16::from_le_bytes(sub[CLOCK_FLAGS..CLOCK_FLAGS + 2].try_into().ok()?) & ABSOLUTE_TIME != 0;
        let wait = match (id, absolute) {
            (CLOCK_REALTIME | CLOCK_MONOTONIC, false) => timeout,
            (CLOCK_MONOTONIC, true) => timeout.saturating_sub(now.saturating_duration_since(origin)),
            (CLOCK_REALTIME, true) => {
                timeout.saturating_sub(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).ok()?)
            }
            _ => return None,
        };
        Some(wait > remaining)
    };
    let all_late = data[range]
        .chunks_exact(SUBSCRIPTION_SIZE as usize)
        .all(|sub| fires_after_deadline(sub) == Some(true));
    all_late.then_some(deadline)
}
