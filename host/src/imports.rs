//! Functions the host offers guests beyond WASI.
//!
//! Every guest may import `host.log(ptr: i32, len: i32)`: the host reads
//! `len` bytes of the guest's exported memory at `ptr` and records them as
//! one message (see [`crate::RunOutcome::host_log`]). Embedders add their own
//! functions with [`crate::Sandbox::host_func`].

use wasmtime::{Caller, Extern, Linker};

use crate::instance::checked_range;
use crate::sandbox::GuestState;

/// Links WASI preview 1 and the `host` module into `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::add_to_linker_sync(linker, |state: &mut GuestState| &mut state.wasi)?;
    linker.func_wrap("host", "log", host_log)?;
    Ok(())
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
    caller.data_mut().host_log.push(message, range.len());
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

    /// Records `message`, the kept prefix of a message `full_len` bytes long.
    fn push(&mut self, message: String, full_len: usize) {
        self.room = self.room.saturating_sub(message.len());
        self.truncated |= message.len() < full_len;
        self.messages.push(message);
    }

    pub(crate) fn messages(&self) -> &[String] {
        &self.messages
    }

    pub(crate) fn truncated(&self) -> bool {
        self.truncated
    }
}
