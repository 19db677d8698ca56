//! Running a sandbox's guest: a fresh store holding its grants and limits,
//! the module linked and instantiated in it, the call, and the outcome.

use std::time::Instant;

use wasmtime::component;
use wasmtime::{PoolConcurrencyLimitError, Store};
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder, WasiView};

use crate::component::ComponentInstance;
use crate::deadline::{Deadline, RunClock};
use crate::grant::Protected;
use crate::instance::GuestInstance;
use crate::limits::Shape;
use crate::outcome::{RunOutcome, Termination, classify, ended_by_guest};
use crate::output::CappedPipe;
use crate::runtime::EngineKind;
use crate::sandbox::{DirAccess, Input};
use crate::state::{GuestState, Pipes, finish};
use crate::stdin::GuardedStdin;
use crate::{Error, GuestModule, Sandbox};

impl Sandbox {
    /// Runs a command-style guest: calls `_start` and reports how it ended.
    ///
    /// [`Limits::timeout`] covers the whole run: instantiation (a core
    /// module's start function, a component's) and `_start` or
    /// `wasi:cli/run` together.
    ///
    /// A guest that traps, times out or calls `proc_exit` still gives `Ok`;
    /// `Err` means the guest could not be started at all.
    ///
    /// ```
    /// use std::time::Duration;
    /// use host::{Limits, Runtime, Sandbox, TrapKind};
    /// let spin = Runtime::shared().load_bytes("spin", r#"(module (func (export "_start") (loop br 0)))"#)?;
    /// let mut limits = Limits::default();
    /// limits.timeout = Some(Duration::from_millis(50));
    /// let outcome = Sandbox::new().limits(limits).run(&spin)?;
    /// assert_eq!(outcome.trap().map(|trap| trap.kind), Some(TrapKind::Timeout));
    /// # Ok::<(), host::Error>(())
    /// ```
    pub fn run(&self, module: &GuestModule) -> Result<RunOutcome, Error> {
        let started = Instant::now();
        if module.is_component() {
            return self.run_component(module, started);
        }
        let (store, pipes, linked) = self.instantiated(module)?;
        let mut guest = match linked {
            Ok(instance) => GuestInstance::new(module, store, instance, pipes, self.limits.timeout),
            // A start function that traps or exits fails instantiation, but
            // that is still the guest's own ending, not a setup error.
            Err(termination) => return Ok(finish(&store, &pipes, termination, started)),
        };
        let start = guest.typed_func::<(), ()>("_start")?;
        let termination = match guest.call_raw(|store| start.call(store, ())) {
            Ok(()) => Termination::Exited(0),
            Err(error) => classify(error),
        };
        Ok(guest.into_outcome(termination, started))
    }

    /// Runs a component's `wasi:cli/run`: the same grants and limits, the
    /// same kind of outcome.
    fn run_component(&self, module: &GuestModule, started: Instant) -> Result<RunOutcome, Error> {
        let kind = module.runtime().kind_for(&self.limits);
        let pre = self.linked_component(module, kind)?;
        let (mut store, pipes) = self.store(module, kind)?;
        let termination = crate::component::run_command(module.name(), &pre, &mut store, self.limits.timeout)?;
        Ok(finish(&store, &pipes, termination, started))
    }

    /// Instantiates a library-style component whose exports the caller will
    /// call with typed values (see [`ComponentInstance::call`]).
    pub fn instantiate_component(&self, module: &GuestModule) -> Result<ComponentInstance, Error> {
        let kind = module.runtime().kind_for(&self.limits);
        let pre = self.linked_component(module, kind)?;
        let (store, _pipes) = self.store(module, kind)?;
        ComponentInstance::new(module.name(), &pre, store, self.limits.timeout)
    }

    /// The component linked for a run: the module's cached link, or one
    /// with this sandbox's component functions. Host functions are
    /// core-module imports, which a component cannot name, so a sandbox
    /// with some refuses to run one.
    pub(crate) fn linked_component(
        &self,
        module: &GuestModule,
        kind: EngineKind,
    ) -> Result<component::InstancePre<GuestState>, Error> {
        if !self.host_funcs.is_empty() {
            return Err(Error::wrong_kind(
                module.name(),
                "a core module (host functions are core-module imports)",
            ));
        }
        if self.component_funcs.is_empty() {
            return module.linked_component(kind).cloned();
        }
        module.linked_component_with(kind, |linker| {
            self.component_funcs.iter().try_for_each(|add| add(linker))
        })
    }

    /// Instantiates a library-style guest whose exports the caller will call
    /// (see [`GuestInstance::call`]). A WASI reactor's `_initialize` is run
    /// first, within the timeout of instantiation; each call then has its
    /// own. See [`GuestInstance`] for an example.
    pub fn instantiate(&self, module: &GuestModule) -> Result<GuestInstance, Error> {
        let (store, pipes, linked) = self.instantiated(module)?;
        let instance = linked.map_err(|termination| Error::ended(module.name(), termination))?;
        let mut guest = GuestInstance::new(module, store, instance, pipes, self.limits.timeout);
        if guest.has_export("_initialize") {
            // Initializing is part of instantiating: the same deadline.
            let initialize = guest.typed_func::<(), ()>("_initialize")?;
            guest
                .call_raw(|store| initialize.call(store, ()))
                .map_err(|error| Error::ended(module.name(), classify(error)))?;
        }
        Ok(guest)
    }

    /// A core module instantiated (see `link`) in a fresh store
    /// on the engine these limits ask for; when that is the pool and every
    /// slot is taken, on the runtime's on-demand engine instead, so that no
    /// guest fails for a cap the embedder did not set.
    fn instantiated(&self, module: &GuestModule) -> Result<Instantiated, Error> {
        let mut kind = module.runtime().kind_for(&self.limits);
        loop {
            let (mut store, pipes) = self.store(module, kind)?;
            match self.link(module, kind, &mut store) {
                Ok(instance) => return Ok((store, pipes, Ok(instance))),
                Err(LinkFailure::Guest(termination)) => return Ok((store, pipes, Err(termination))),
                Err(LinkFailure::Setup(error)) => return Err(error),
                Err(LinkFailure::PoolFull) => kind = kind.unpooled(),
            }
        }
    }

    /// A fresh store, on the engine that holds `module`'s code for runs
    /// asking for `kind`, holding this sandbox's WASI context and limits,
    /// and output streams of its own.
    fn store(&self, module: &GuestModule, kind: EngineKind) -> Result<(Store<GuestState>, Pipes), Error> {
        let pipes = self.pipes();
        let store = self.store_with(module, kind, &pipes)?;
        Ok((store, pipes))
    }

    /// Output streams as this sandbox sends them.
    pub(crate) fn pipes(&self) -> Pipes {
        let cap = self.limits.max_output_bytes;
        Pipes {
            stdout: CappedPipe::new(cap, self.stdout.clone()),
            stderr: CappedPipe::new(cap, self.stderr.clone()),
        }
    }

    /// A fresh store like [`Sandbox::store`]'s writing to `pipes`, which
    /// several stores may share.
    pub(crate) fn store_with(
        &self,
        module: &GuestModule,
        kind: EngineKind,
        pipes: &Pipes,
    ) -> Result<Store<GuestState>, Error> {
        let mut wasi = WasiCtxBuilder::new();
        // Preview 1 is synchronous: file I/O on the calling thread is both
        // faster and keeps a run's work on the thread that asked for it. A
        // component's runs on blocking threads, so its deadline can end the
        // run while such a call still waits (see `crate::component`).
        wasi.allow_blocking_current_thread(!module.is_component());
        let argv0 = self.argv0.as_deref().unwrap_or(module.name());
        wasi.arg(argv0).args(&self.args).envs(&self.env);
        wasi.monotonic_clock(RunClock::new());
        let deadline = Deadline::default();
        match &self.stdin {
            Input::Bytes(bytes) => wasi.stdin(MemoryInputPipe::new(bytes.clone())),
            Input::Source {
                source,
                on_guest_thread,
            } => wasi.stdin(GuardedStdin::new(source.clone(), deadline.clone(), *on_guest_thread)),
        };
        wasi.stdout(pipes.stdout.clone()).stderr(pipes.stderr.clone());
        self.network.apply(&mut wasi);
        if !self.dirs.is_empty() {
            let protected = Protected::of(module.runtime().protected_dirs());
            for grant in &self.dirs {
                let perms = match grant.access {
                    DirAccess::ReadOnly => FsPerms::ReadOnly,
                    DirAccess::ReadWrite => FsPerms::ReadWrite,
                };
                crate::grant::preopen(&mut wasi, &grant.host_path, &grant.guest_path, perms, &protected)?;
            }
        }

        let shape = if module.is_component() {
            Shape::COMPONENT
        } else {
            Shape::CORE
        };
        let state = GuestState::new(
            wasi.build_p1(),
            self.network.http_grant(),
            &self.limits,
            shape,
            deadline,
        );
        let mut store = Store::new(module.engine(kind)?, state);
        store.limiter(|state| &mut state.limits);
        // WASI's table holds what the host made for the guest (files,
        // streams, pollables); a component's handles, which also name what
        // only Wasmtime holds (WASI 0.3's streams and futures, its own
        // resources), are counted store-wide. Past either the call traps.
        store
            .data_mut()
            .wasi
            .ctx()
            .table
            .set_max_capacity(self.limits.max_resources);
        store.set_max_component_handles(self.limits.max_resources);
        if let Some(fuel) = self.limits.fuel {
            store
                .set_fuel(fuel)
                .expect("a run with a fuel budget gets the engine that consumes fuel");
        }
        store.epoch_deadline_trap();
        Ok(store)
    }

    /// Instantiates `module` in `store`: through the module's cached
    /// pre-linked form, or a linker with this sandbox's own host functions.
    fn link(
        &self,
        module: &GuestModule,
        kind: EngineKind,
        store: &mut Store<GuestState>,
    ) -> Result<wasmtime::Instance, LinkFailure> {
        if !self.component_funcs.is_empty() {
            return Err(LinkFailure::Setup(Error::wrong_kind(
                module.name(),
                "a component (component functions are component imports)",
            )));
        }
        crate::deadline::arm(store, self.limits.timeout);
        // A start function runs the guest, WASI calls and all.
        let instantiate =
            |pre: &wasmtime::InstancePre<GuestState>| crate::deadline::blocking(|| pre.instantiate(store));
        let result = if self.host_funcs.is_empty() {
            let pre = module.linked_core(kind).map_err(LinkFailure::Setup)?;
            instantiate(pre)
        } else {
            let mut linker = module.core_linker(kind).map_err(LinkFailure::Setup)?.clone();
            linker.allow_shadowing(true);
            for add in &self.host_funcs {
                add(&mut linker).map_err(|e| {
                    LinkFailure::Setup(Error::instantiate(
                        module.name(),
                        e.context("registering a host function"),
                    ))
                })?;
            }
            let core = module.core_module(kind).map_err(LinkFailure::Setup)?;
            match linker.instantiate_pre(core) {
                Ok(pre) => instantiate(&pre),
                Err(e) => return Err(LinkFailure::Setup(module.link_error(core, &linker, e))),
            }
        };
        result.map_err(|error| {
            if kind.is_pooled() && error.is::<PoolConcurrencyLimitError>() {
                LinkFailure::PoolFull
            } else if ended_by_guest(&error) {
                LinkFailure::Guest(classify(error))
            } else {
                LinkFailure::Setup(Error::instantiate(module.name(), error))
            }
        })
    }
}

/// A store, its output pipes, and the instance in it, or how the guest's
/// own start function ended it.
type Instantiated = (Store<GuestState>, Pipes, Result<wasmtime::Instance, Termination>);

/// Why instantiation failed: the host could not set the guest up, the
/// guest's own start function ended it, or the pool had no slot free.
enum LinkFailure {
    Setup(Error),
    Guest(Termination),
    PoolFull,
}
