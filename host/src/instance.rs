//! A live guest: call its exports with typed arguments and read or write
//! its memory, every access bounds-checked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Extern, FuncType, Instance, Memory, Store, TypedFunc, Val, ValType, WasmParams, WasmResults};

use crate::memory::checked_range;
use crate::outcome::{RunOutcome, Termination, classify};
use crate::state::{GuestState, Pipes, finish};
use crate::{Error, GuestModule};

/// An instantiated guest with its own store, for library-style modules that
/// export functions and memory rather than `_start`.
///
/// ```
/// let module = host::Runtime::shared().load_bytes("double", r#"
///     (module
///       (memory (export "memory") 1)
///       (func (export "double") (param i32) (result i32)
///         (i32.mul (local.get 0) (i32.const 2))))"#)?;
/// let mut guest = host::Sandbox::new().instantiate(&module)?;
/// assert_eq!(guest.call::<i32, i32>("double", 21)?, 42);
/// guest.write_memory(16, b"hi")?;
/// assert_eq!(guest.read_memory(16, 2)?, b"hi");
/// assert!(guest.read_memory(65535, 2).is_err());
/// # Ok::<(), host::Error>(())
/// ```
pub struct GuestInstance {
    pub(crate) module: Arc<str>,
    pub(crate) store: Store<GuestState>,
    instance: Instance,
    pipes: Pipes,
    timeout: Option<Duration>,
    /// Set while the store is away on an async call's thread, and for good
    /// when that call is cancelled (`crate::asynchronous`).
    pub(crate) lent: bool,
    /// The stack of a thread that runs it (its wasm stack is there).
    pub(crate) stack_size: usize,
}

impl std::fmt::Debug for GuestInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestInstance")
            .field("module", &self.module)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl GuestInstance {
    pub(crate) fn new(
        module: &GuestModule,
        store: Store<GuestState>,
        instance: Instance,
        pipes: Pipes,
        timeout: Option<Duration>,
    ) -> Self {
        Self {
            module: module.name().into(),
            store,
            instance,
            pipes,
            timeout,
            lent: false,
            stack_size: module.runtime().guest_stack_size(),
        }
    }

    /// Calls the exported function `export` with `params`.
    ///
    /// Each call has a budget of its own: [`crate::Limits::timeout`] from
    /// the moment it starts (instantiation, with a start function and
    /// `_initialize`, had one before it). Fuel, by contrast, is one budget
    /// for the instance's whole life.
    ///
    /// The types are checked against the export first
    /// ([`Error::ExportSignature`]); a trap or `proc_exit` in the guest is
    /// [`Error::Trap`] or [`Error::Exit`], and the instance stays usable.
    pub fn call<P: WasmParams, R: WasmResults>(&mut self, export: &str, params: P) -> Result<R, Error> {
        let func = self.typed_func::<P, R>(export)?;
        self.arm();
        self.call_raw(|store| func.call(store, params))
            .map_err(|error| Error::ended(&self.module, classify(error)))
    }

    /// The type of the exported function `export`.
    pub fn func_type(&mut self, export: &str) -> Result<FuncType, Error> {
        self.usable()?;
        let func = self
            .instance
            .get_func(&mut self.store, export)
            .ok_or_else(|| self.missing(export))?;
        Ok(func.ty(&self.store))
    }

    /// Calls the exported function `export` with values whose types are
    /// known only at run time (parsed from a command line, for instance)
    /// and returns its results; the values are checked against the
    /// export's type first ([`Error::ExportSignature`]). The timeout and
    /// endings are as for [`GuestInstance::call`].
    pub fn call_values(&mut self, export: &str, params: &[Val]) -> Result<Vec<Val>, Error> {
        self.usable()?;
        let func = self
            .instance
            .get_func(&mut self.store, export)
            .ok_or_else(|| self.missing(export))?;
        let ty = func.ty(&self.store);
        let given: Vec<ValType> = params
            .iter()
            .map(|value| value.ty(&self.store))
            .collect::<Result<_, _>>()
            .map_err(|e| Error::export_signature(&self.module, export, e.to_string(), ty.to_string()))?;
        let matches =
            given.len() == ty.params().len() && given.iter().zip(ty.params()).all(|(a, b)| ValType::eq(a, &b));
        if !matches {
            let given: Vec<String> = given.iter().map(ToString::to_string).collect();
            return Err(Error::export_signature(
                &self.module,
                export,
                format!("(func (param {}))", given.join(" ")),
                ty.to_string(),
            ));
        }
        let mut results = vec![Val::I32(0); ty.results().len()];
        self.arm();
        self.call_raw(|store| func.call(store, params, &mut results))
            .map_err(|error| Error::ended(&self.module, classify(error)))?;
        Ok(results)
    }

    /// True when the guest exports something called `name`.
    pub fn has_export(&mut self, name: &str) -> bool {
        !self.lent && self.instance.get_export(&mut self.store, name).is_some()
    }

    /// Current size of the exported `memory`, in bytes.
    pub fn memory_size(&mut self) -> Result<u64, Error> {
        let memory = self.memory()?;
        Ok(memory.data_size(&self.store) as u64)
    }

    /// Copies `len` bytes of guest memory starting at `offset`.
    pub fn read_memory(&mut self, offset: u64, len: u64) -> Result<Vec<u8>, Error> {
        let memory = self.memory()?;
        let data = memory.data(&self.store);
        let range = checked_range(offset, len, data.len())?;
        Ok(data[range].to_vec())
    }

    /// Writes `bytes` into guest memory at `offset`.
    pub fn write_memory(&mut self, offset: u64, bytes: &[u8]) -> Result<(), Error> {
        let memory = self.memory()?;
        let data = memory.data_mut(&mut self.store);
        let range = checked_range(offset, bytes.len() as u64, data.len())?;
        data[range].copy_from_slice(bytes);
        Ok(())
    }

    /// Messages the guest has sent through `host.log` so far.
    pub fn host_log(&self) -> &[String] {
        self.store.data().host_log()
    }

    /// The most linear memory the guest has had so far, in bytes: never
    /// more than [`crate::Limits::max_memory_bytes`].
    pub fn peak_memory_bytes(&self) -> usize {
        self.store.data().peak_memory_bytes()
    }

    /// The embedder's data in this guest's store ([`crate::Sandbox::data`]),
    /// as its host functions left it; a [`crate::DataError`] when the
    /// sandbox has none, or none of type `T`.
    pub fn data<T: 'static>(&self) -> Result<&T, crate::DataError> {
        self.store.data().data()
    }

    /// The embedder's data in this guest's store, to change between calls.
    pub fn data_mut<T: 'static>(&mut self) -> Result<&mut T, crate::DataError> {
        self.store.data_mut().data_mut()
    }

    /// Fuel left of the run's budget, or `None` when the run is not metered
    /// (no [`crate::Limits::fuel`]). Read-only: the store itself is never
    /// handed out, so neither the fuel nor the deadline can be reset.
    pub fn fuel_remaining(&self) -> Option<u64> {
        self.store.get_fuel().ok()
    }

    /// The export `name` as a function of the given type.
    pub(crate) fn typed_func<P: WasmParams, R: WasmResults>(&mut self, name: &str) -> Result<TypedFunc<P, R>, Error> {
        self.usable()?;
        let func = self
            .instance
            .get_func(&mut self.store, name)
            .ok_or_else(|| self.missing(name))?;
        func.typed::<P, R>(&self.store).map_err(|e| {
            Error::export_signature(
                &self.module,
                name,
                e.root_cause().to_string(),
                func.ty(&self.store).to_string(),
            )
        })
    }

    /// Gives the next call the whole timeout, from now.
    pub(crate) fn arm(&mut self) {
        crate::deadline::arm(&mut self.store, self.timeout);
    }

    /// Runs `call` under the deadline already armed: a call's own
    /// ([`GuestInstance::call`]), or the run's, which `_start` shares with
    /// instantiation.
    pub(crate) fn call_raw<T: Send>(
        &mut self,
        call: impl FnOnce(&mut Store<GuestState>) -> wasmtime::Result<T> + Send,
    ) -> wasmtime::Result<T> {
        let store = &mut self.store;
        crate::deadline::blocking(move || call(store))
    }

    pub(crate) fn into_outcome(self, termination: Termination, started: Instant) -> RunOutcome {
        finish(&self.store, &self.pipes, termination, started)
    }

    fn memory(&mut self) -> Result<Memory, Error> {
        self.usable()?;
        match self.instance.get_export(&mut self.store, "memory") {
            Some(Extern::Memory(memory)) => Ok(memory),
            _ => Err(self.missing("memory")),
        }
    }

    /// The instance, unless a cancelled async call lost it (its store is
    /// a stand-in that holds none of the guest).
    fn usable(&self) -> Result<(), Error> {
        match self.lent {
            true => Err(Error::Cancelled {
                module: self.module.to_string(),
            }),
            false => Ok(()),
        }
    }

    fn missing(&self, export: &str) -> Error {
        Error::missing_export(&self.module, export)
    }
}
