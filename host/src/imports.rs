//! Functions the host offers guests beyond WASI, and the one WASI function
//! it guards.
//!
//! Every guest may import `host.log(ptr: i32, len: i32)`: the host reads
//! `len` bytes of the guest's exported memory at `ptr` and records them as
//! one message (see [`crate::RunOutcome::host_log`]). Embedders add their own
//! functions with [`crate::Sandbox::host_func`].
//!
//! `poll_oneoff` is wrapped so a guest cannot sleep past its timeout:
//! Wasmtime's implementation blocks the host thread for as long as the guest
//! asks, where no epoch check can interrupt it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use wasmtime::{AsContextMut, Caller, Extern, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as p1, WasiSnapshotPreview1};
use wiggle::GuestMemory;

use crate::instance::checked_range;
use crate::sandbox::GuestState;

const WASI: &str = "wasi_snapshot_preview1";

/// Links WASI preview 1, the guarded `poll_oneoff`, and the `host` module into `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::add_to_linker_sync(linker, |state: &mut GuestState| &mut state.wasi)?;
    linker.allow_shadowing(true);
    linker.func_wrap(WASI, "poll_oneoff", guarded_poll_oneoff)?;
    linker.allow_shadowing(false);
    linker.func_wrap("host", "log", host_log)?;
    Ok(())
}

/// WASI's `poll_oneoff`, except that a guest asking to sleep past its
/// deadline sleeps until the deadline and is then interrupted, as if the
/// epoch had caught it in a loop. Every other poll goes to Wasmtime's own
/// implementation, called the way its generated binding calls it.
fn guarded_poll_oneoff(
    mut caller: Caller<'_, GuestState>,
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
    let export = caller.get_export("memory");
    let (mut memory, state) = match &export {
        Some(Extern::Memory(memory)) => {
            let (bytes, state) = memory.data_and_store_mut(&mut caller);
            (GuestMemory::Unshared(bytes), state)
        }
        Some(Extern::SharedMemory(memory)) => (GuestMemory::Shared(memory.data()), caller.data_mut()),
        _ => wasmtime::bail!("missing required memory export"),
    };
    state.wasi.set_hostcall_fuel(fuel);
    wasmtime_wasi::runtime::in_tokio(p1::poll_oneoff(
        &mut state.wasi,
        &mut memory,
        subs,
        events,
        count,
        written,
    ))
}

/// When the current call into a guest times out (`None` for never), shared
/// by the host calls that could otherwise block past it: `poll_oneoff` and
/// an inherited stdin.
#[derive(Clone, Default)]
pub(crate) struct Deadline(Arc<Mutex<Option<Instant>>>);

impl Deadline {
    pub(crate) fn get(&self) -> Option<Instant> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set(&self, deadline: Option<Instant>) {
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
fn sleeps_past_deadline(caller: &mut Caller<'_, GuestState>, subs: i32, count: i32) -> Option<Instant> {
    let guard = &caller.data().sleep_guard;
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

/// `host.log(ptr, len)`. The pointer and length are unsigned to the guest
/// (a negative `len` means a length near 4 GiB), and are checked against the
/// memory before anything is read; a bad pair fails the call, which traps.
fn host_log(mut caller: Caller<'_, GuestState>, ptr: i32, len: i32) -> wasmtime::Result<()> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        wasmtime::bail!("host.log needs the guest to export its memory as `memory`");
    };
    let data = memory.data(&caller);
    let range = checked_range(u64::from(ptr as u32), u64::from(len as u32), data.len())?;
    // Only what the log budget still allows is copied out of the guest.
    let kept = caller.data().host_log.room().min(range.len());
    let message = String::from_utf8_lossy(&data[range.start..range.start + kept]).into_owned();
    caller.data_mut().host_log.push(message, kept < range.len());
    Ok(())
}

/// The messages a guest sent through `host.log`, within a byte budget.
pub(crate) struct HostLog {
    messages: Vec<String>,
    room: usize,
    truncated: bool,
}

impl HostLog {
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            messages: Vec::new(),
            room: budget,
            truncated: false,
        }
    }

    /// Bytes that may still be recorded.
    fn room(&self) -> usize {
        self.room
    }

    /// Records `message`, which was `cut` short to fit the budget. Each
    /// message costs at least one byte, so that empty ones cannot grow the
    /// list without bound; once the budget is spent, messages are dropped.
    fn push(&mut self, message: String, cut: bool) {
        self.truncated |= cut;
        if self.room == 0 {
            self.truncated = true;
            return;
        }
        self.room = self.room.saturating_sub(message.len().max(1));
        self.messages.push(message);
    }

    pub(crate) fn messages(&self) -> &[String] {
        &self.messages
    }

    pub(crate) fn truncated(&self) -> bool {
        self.truncated
    }
}

#[cfg(test)]
mod tests {
    use super::HostLog;

    #[test]
    fn the_log_budget_bounds_bytes_and_messages() {
        let mut log = HostLog::new(3);
        log.push("ab".into(), false);
        log.push(String::new(), false);
        assert_eq!(
            (log.messages(), log.truncated()),
            (&["ab".to_owned(), String::new()][..], false)
        );
        log.push(String::new(), false);
        assert_eq!(log.messages().len(), 2, "an empty message past the budget is dropped");
        assert!(log.truncated());
    }
}
