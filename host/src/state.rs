//! The state Wasmtime keeps for one guest (its WASI and `wasi:http`
//! contexts, limits, `host.log` messages and deadline), and gathering what a finished run
//! left behind into its outcome. Everything that runs a guest builds on it.

use std::any::{Any, TypeId};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::deadline::{Deadline, Guarded};
use crate::error::DataError;
use crate::limits::{GuestLimiter, HostMemory, Limits, Shape};
use crate::lookup::Lookups;
use crate::network::HttpGrant;
use crate::outcome::{RunOutcome, Termination};
use crate::outgoing::OutgoingHttp;
use crate::output::CappedPipe;

/// The output streams of one run, or of every request of an HTTP service.
#[derive(Clone)]
pub(crate) struct Pipes {
    pub(crate) stdout: CappedPipe,
    pub(crate) stderr: CappedPipe,
}

impl Pipes {
    /// The same streams, each line of request `number` starting with
    /// `stdout [number] :: ` or `stderr [number] :: `.
    pub(crate) fn tagged(&self, number: u64) -> Self {
        Self {
            stdout: self.stdout.tagged(format!("stdout [{number}] :: ")),
            stderr: self.stderr.tagged(format!("stderr [{number}] :: ")),
        }
    }
}

/// The state Wasmtime keeps for one guest: its WASI context, its resource
/// limits, what it sent to `host.log`, and the embedder's own data
/// ([`Sandbox::data`](crate::Sandbox::data), read with [`GuestState::data`]).
/// Host functions registered with [`Sandbox::host_func`](crate::Sandbox::host_func)
/// reach it through their `Caller`, and those of
/// [`Sandbox::component_func`](crate::Sandbox::component_func) through their
/// `StoreContextMut`.
pub struct GuestState {
    pub(crate) wasi: WasiP1Ctx,
    http: WasiHttpCtx,
    outgoing_http: OutgoingHttp,
    /// `None` when the run is not metered.
    pub(crate) fuel_budget: Option<u64>,
    pub(crate) limits: GuestLimiter,
    pub(crate) host_log: HostLog,
    pub(crate) deadline: Deadline,
    timeout: Option<Duration>,
    host_memory: HostMemory,
    /// The embedder's data for this run, `None` unless the sandbox has some.
    data: Option<Data>,
}

impl std::fmt::Debug for GuestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestState")
            .field("host_log", &self.host_log())
            .field("peak_memory_bytes", &self.peak_memory_bytes())
            .field("timeout", &self.timeout)
            .field("data", &self.data.as_ref().map(|data| data.ty.name))
            .finish_non_exhaustive()
    }
}

/// The least and most a set of header fields a guest builds may hold
/// (wasmtime-wasi-http's default is the most).
const FIELD_BYTES: std::ops::RangeInclusive<usize> = (8 << 10)..=(128 << 10);

impl GuestState {
    /// The messages received through `host.log` so far.
    pub fn host_log(&self) -> &[String] {
        self.host_log.messages()
    }

    /// The most linear memory the guest has had (a component's memories
    /// together), in bytes: never more than [`Limits::max_memory_bytes`].
    pub fn peak_memory_bytes(&self) -> usize {
        self.limits.peak_memory_bytes()
    }

    /// The embedder's data for this run, the run's own clone of what was
    /// given to [`Sandbox::data`](crate::Sandbox::data), for a host function
    /// to read. A [`DataError`] when the sandbox was given none, or data of
    /// another type than `T`: returned from a host function with `?`, it
    /// ends the guest's call with a trap whose message says which.
    ///
    /// ```
    /// use host::wasmtime::Caller;
    /// use host::{GuestState, Runtime, Sandbox};
    ///
    /// /// What the embedder keeps per run: here, a request's id.
    /// #[derive(Clone)]
    /// struct Request { id: i32 }
    ///
    /// let module = Runtime::shared().load_bytes("ask", r#"
    ///     (module
    ///       (import "env" "request_id" (func $id (result i32)))
    ///       (func (export "id") (result i32) (call $id)))"#)?;
    /// let sandbox = Sandbox::new().host_func("env", "request_id", |caller: Caller<'_, GuestState>| {
    ///     Ok(caller.data().data::<Request>()?.id)
    /// });
    /// let mut guest = sandbox.clone().data(Request { id: 7 }).instantiate(&module)?;
    /// assert_eq!(guest.call::<(), i32>("id", ())?, 7);
    ///
    /// // Without the data, the call traps with a message that says so.
    /// let error = sandbox.instantiate(&module)?.call::<(), i32>("id", ()).unwrap_err();
    /// assert!(error.to_string().contains("no data"), "{error}");
    /// # Ok::<(), host::Error>(())
    /// ```
    pub fn data<T: 'static>(&self) -> Result<&T, DataError> {
        let error = self.data_error::<T>();
        self.data
            .as_ref()
            .and_then(|data| data.value.downcast_ref())
            .ok_or(error)
    }

    /// The embedder's data for this run, to change, as [`GuestState::data`]
    /// reads it. The change is the run's own: the sandbox, and other runs,
    /// keep theirs (share through an `Arc` what every run should see).
    pub fn data_mut<T: 'static>(&mut self) -> Result<&mut T, DataError> {
        let error = self.data_error::<T>();
        self.data
            .as_mut()
            .and_then(|data| data.value.downcast_mut())
            .ok_or(error)
    }

    /// What asking for a `T` that is not there says.
    fn data_error<T: 'static>(&self) -> DataError {
        DataError {
            wanted: std::any::type_name::<T>(),
            held: self.data.as_ref().map(|data| data.ty.name),
        }
    }

    /// The same state, holding `data` for the embedder.
    pub(crate) fn with_data(self, data: Option<Data>) -> Self {
        Self { data, ..self }
    }

    /// The state of a run granted `wasi` and outgoing HTTP as `http`
    /// says, within `limits`.
    pub(crate) fn new(wasi: WasiP1Ctx, http: HttpGrant, limits: &Limits, shape: Shape, deadline: Deadline) -> Self {
        let host_memory = HostMemory::new(limits.max_host_memory_bytes);
        // Every entry of the table may be a set of fields: together within
        // the host memory limit, unless the least share is larger.
        let mut http_ctx = WasiHttpCtx::new();
        let share = limits.max_host_memory_bytes / limits.max_resources.max(1);
        http_ctx.set_field_size_limit(share.clamp(*FIELD_BYTES.start(), *FIELD_BYTES.end()));
        Self {
            wasi,
            http: http_ctx,
            outgoing_http: OutgoingHttp::new(http, deadline.clone(), host_memory.clone()),
            fuel_budget: limits.fuel,
            limits: GuestLimiter::new(limits, shape),
            host_log: HostLog::new(limits.max_log_bytes),
            deadline,
            timeout: limits.timeout,
            host_memory,
            data: None,
        }
    }

    /// WASI's table, and what the guest holds of the host's memory.
    pub(crate) fn table_and_host_memory(&mut self) -> (&mut wasmtime::component::ResourceTable, &HostMemory) {
        (self.wasi.ctx().table, &self.host_memory)
    }

    /// WASI's table, and the name lookups the run is granted.
    pub(crate) fn table_and_lookups(&mut self) -> (&mut wasmtime::component::ResourceTable, &Lookups) {
        (self.wasi.ctx().table, self.outgoing_http.lookups())
    }

    /// A state that grants nothing, for stores that never run a guest.
    pub(crate) fn scratch() -> Self {
        let wasi = WasiCtxBuilder::new().build_p1();
        Self::new(
            wasi,
            HttpGrant::default(),
            &Limits::default(),
            Shape::CORE,
            Deadline::default(),
        )
    }
}

/// A type, named for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DataType {
    id: TypeId,
    name: &'static str,
}

impl DataType {
    pub(crate) fn of<T: 'static>() -> Self {
        Self {
            id: TypeId::of::<T>(),
            name: std::any::type_name::<T>(),
        }
    }
}

/// The embedder's data in one run's store.
pub(crate) struct Data {
    value: Box<dyn Any + Send>,
    ty: DataType,
}

/// What [`Sandbox::data`](crate::Sandbox::data) was given: each run's store
/// gets a clone of it.
#[derive(Clone)]
pub(crate) struct DataSeed {
    clone: Arc<dyn Fn() -> Box<dyn Any + Send> + Send + Sync>,
    ty: DataType,
}

impl DataSeed {
    pub(crate) fn new<T: Clone + Send + Sync + 'static>(value: T) -> Self {
        Self {
            clone: Arc::new(move || Box::new(value.clone())),
            ty: DataType::of::<T>(),
        }
    }

    /// A run's own data.
    pub(crate) fn for_run(&self) -> Data {
        Data {
            value: (self.clone)(),
            ty: self.ty,
        }
    }

    pub(crate) fn type_name(&self) -> &'static str {
        self.ty.name
    }

    /// Whether every run's data is a `wanted`: an error saying what it is
    /// instead (`seed` being the sandbox's, if any).
    pub(crate) fn check(seed: Option<&Self>, wanted: DataType) -> Result<(), DataError> {
        match seed {
            Some(seed) if seed.ty == wanted => Ok(()),
            _ => Err(DataError {
                wanted: wanted.name,
                held: seed.map(|seed| seed.ty.name),
            }),
        }
    }
}

/// The getter [`Sandbox::component_bindings`](crate::Sandbox::component_bindings)
/// hands to `bindgen!`'s `add_to_linker`: the run's data as a `T`, which
/// the sandbox checked before it instantiated the component (the slot is
/// set only when the store is made, and `data_mut` cannot change its type).
pub(crate) fn checked_data<T: 'static>(state: &mut GuestState) -> &mut T {
    state
        .data_mut()
        .expect("the sandbox checks its data's type before it instantiates a component")
}

/// Gathers what a finished run left behind into its outcome.
pub(crate) fn finish(
    store: &Store<GuestState>,
    pipes: &Pipes,
    termination: Termination,
    started: Instant,
) -> RunOutcome {
    let state = store.data();
    RunOutcome {
        host_log: state.host_log.messages().to_vec(),
        host_log_truncated: state.host_log.truncated(),
        fuel_consumed: state
            .fuel_budget
            .map(|budget| budget - store.get_fuel().unwrap_or(budget)),
        ..outcome(pipes, termination, started, state.timeout)
    }
}

/// The outcome of runs whose stores are gone (those of an HTTP service):
/// their output, and how they ended, nothing logged or metered.
pub(crate) fn outcome(
    pipes: &Pipes,
    termination: Termination,
    started: Instant,
    timeout: Option<Duration>,
) -> RunOutcome {
    let (stdout, stdout_truncated) = pipes.stdout.contents();
    let (stderr, stderr_truncated) = pipes.stderr.contents();
    RunOutcome {
        termination,
        stdout,
        stderr,
        stdout_truncated,
        stderr_truncated,
        host_log: Vec::new(),
        host_log_truncated: false,
        fuel_consumed: None,
        duration: started.elapsed(),
        timeout,
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.ctx()
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: self.wasi.ctx().table,
            hooks: &mut self.outgoing_http,
        }
    }
}

impl Guarded for GuestState {
    fn deadline(&self) -> &Deadline {
        &self.deadline
    }

    fn wasi(&mut self) -> &mut WasiP1Ctx {
        &mut self.wasi
    }
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
    pub(crate) fn room(&self) -> usize {
        self.room
    }

    /// Records `message`, which was `cut` short to fit the budget. Each
    /// message costs at least one byte, so that empty ones cannot grow the
    /// list without bound; once the budget is spent, messages are dropped.
    pub(crate) fn push(&mut self, message: String, cut: bool) {
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
