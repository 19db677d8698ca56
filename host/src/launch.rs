//! Running a sandbox's guest ([`Sandbox::run`], [`Sandbox::instantiate`],
//! [`Sandbox::instantiate_component`]): a fresh store holding the
//! sandbox's grants and limits, the guest linked (`crate::linking`) and
//! instantiated in it, the call, and the outcome. `crate::http` makes its
//! stores here too.

use std::time::Instant;

use wasmtime::{PoolConcurrencyLimitError, Store};
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder, WasiView};

use crate::component::ComponentInstance;
use crate::deadline::{Deadline, RunClock};
use crate::grant::Protected;
use crate::instance::GuestInstance;
use crate::limits::Shape;
use crate::linking;
use crate::outcome::{RunOutcome, Termination, classify, ended_by_guest};
use crate::output::CappedPipe;
use crate::runtime::EngineKind;
use crate::sandbox::{DirAccess, Input};
use crate::state::{DataSeed, GuestState, Pipes, finish};
use crate::stdin::GuardedStdin;
use crate::{Error, GuestModule, Sandbox};

impl Sandbox {
    /// Runs a command-style guest: calls `_start` and reports how it ended.
    ///
    /// [`Limits::timeout`](crate::Limits::timeout) covers the whole run:
    /// instantiation (a core module's start function, a component's) and
    /// `_start` or `wasi:cli/run` together.
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
        match module.is_component() {
            true => run_component(self, module, started),
            false => run_core(self, module, started),
        }
    }

    /// Instantiates a library-style guest whose exports the caller will call
    /// (see [`GuestInstance::call`]). A WASI reactor's `_initialize` is run
    /// first, within the timeout of instantiation; each call then has its
    /// own. See [`GuestInstance`] for an example.
    pub fn instantiate(&self, module: &GuestModule) -> Result<GuestInstance, Error> {
        let (store, pipes, linked) = instantiated(self, module)?;
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

    /// Instantiates a library-style component whose exports the caller will
    /// call with typed values (see [`ComponentInstance::call`]).
    pub fn instantiate_component(&self, module: &GuestModule) -> Result<ComponentInstance, Error> {
        let kind = module.runtime().kind_for(&self.limits);
        let pre = component(self, module, kind)?;
        let (store, _pipes) = store_and_pipes(self, module, kind)?;
        ComponentInstance::new(module.name(), &pre, store, self.limits.timeout)
    }
}

/// Runs a core module's `_start`.
fn run_core(sandbox: &Sandbox, module: &GuestModule, started: Instant) -> Result<RunOutcome, Error> {
    let (store, pipes, linked) = instantiated(sandbox, module)?;
    let mut guest = match linked {
        Ok(instance) => GuestInstance::new(module, store, instance, pipes, sandbox.limits.timeout),
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
fn run_component(sandbox: &Sandbox, module: &GuestModule, started: Instant) -> Result<RunOutcome, Error> {
    let kind = module.runtime().kind_for(&sandbox.limits);
    let pre = component(sandbox, module, kind)?;
    let (mut store, pipes) = store_and_pipes(sandbox, module, kind)?;
    let termination = crate::component::run_command(module.name(), &pre, &mut store, sandbox.limits.timeout)?;
    Ok(finish(&store, &pipes, termination, started))
}

/// `module`'s component linked for a run of `sandbox` (see
/// [`linking::component`]), once the sandbox is known to hold the data its
/// component bindings read.
pub(crate) fn component(
    sandbox: &Sandbox,
    module: &GuestModule,
    kind: EngineKind,
) -> Result<wasmtime::component::InstancePre<GuestState>, Error> {
    for &need in &sandbox.data_needs {
        DataSeed::check(sandbox.data.as_ref(), need).map_err(|source| Error::MissingData {
            module: module.name().to_owned(),
            source,
        })?;
    }
    linking::component(module, kind, &sandbox.imports)
}

/// A core module instantiated (see [`instantiate_core`]) in a fresh store
/// on the engine the sandbox's limits ask for; when that is the pool and
/// every slot is taken, on the runtime's on-demand engine instead, so that
/// no guest fails for a cap the embedder did not set. Linked (compiled, the
/// first time) before the store is made: the guest's clock and its
/// deadline start together, after that wait.
fn instantiated(sandbox: &Sandbox, module: &GuestModule) -> Result<Instantiated, Error> {
    let mut kind = module.runtime().kind_for(&sandbox.limits);
    loop {
        let pre = linking::core(module, kind, &sandbox.imports)?;
        let (mut store, pipes) = store_and_pipes(sandbox, module, kind)?;
        match instantiate_core(sandbox, module, kind, &pre, &mut store) {
            Ok(instance) => return Ok((store, pipes, Ok(instance))),
            Err(LinkFailure::Guest(termination)) => return Ok((store, pipes, Err(termination))),
            Err(LinkFailure::Setup(error)) => return Err(error),
            Err(LinkFailure::PoolFull) => kind = kind.unpooled(),
        }
    }
}

/// Instantiates `pre`, `module` linked with the sandbox's host functions,
/// in `store`, within the sandbox's timeout: its start function runs the
/// guest, WASI calls and all.
fn instantiate_core(
    sandbox: &Sandbox,
    module: &GuestModule,
    kind: EngineKind,
    pre: &wasmtime::InstancePre<GuestState>,
    store: &mut Store<GuestState>,
) -> Result<wasmtime::Instance, LinkFailure> {
    crate::deadline::arm(store, sandbox.limits.timeout);
    crate::deadline::blocking(|| pre.instantiate(store)).map_err(|error| {
        if kind.is_pooled() && error.is::<PoolConcurrencyLimitError>() {
            LinkFailure::PoolFull
        } else if ended_by_guest(&error) {
            LinkFailure::Guest(classify(error))
        } else {
            LinkFailure::Setup(Error::instantiate(module.name(), error))
        }
    })
}

/// A fresh store (see [`store`]) with output streams of its own.
fn store_and_pipes(
    sandbox: &Sandbox,
    module: &GuestModule,
    kind: EngineKind,
) -> Result<(Store<GuestState>, Pipes), Error> {
    let pipes = pipes(sandbox);
    let store = store(sandbox, module, kind, &pipes)?;
    Ok((store, pipes))
}

/// Output streams as `sandbox` sends them.
pub(crate) fn pipes(sandbox: &Sandbox) -> Pipes {
    let cap = sandbox.limits.max_output_bytes;
    Pipes {
        stdout: CappedPipe::new(cap, sandbox.stdout.clone()),
        stderr: CappedPipe::new(cap, sandbox.stderr.clone()),
    }
}

/// A fresh store, on the engine that holds `module`'s code for runs
/// asking for `kind`, holding `sandbox`'s WASI context and limits, and
/// writing to `pipes`, which several stores may share.
pub(crate) fn store(
    sandbox: &Sandbox,
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
    let argv0 = sandbox.argv0.as_deref().unwrap_or(module.name());
    wasi.arg(argv0).args(&sandbox.args).envs(&sandbox.env);
    wasi.monotonic_clock(RunClock::new());
    let deadline = Deadline::for_new_store();
    match &sandbox.stdin {
        Input::Bytes(bytes) => wasi.stdin(MemoryInputPipe::new(bytes.clone())),
        Input::Source {
            source,
            on_guest_thread,
        } => wasi.stdin(GuardedStdin::new(source.clone(), deadline.clone(), *on_guest_thread)),
    };
    wasi.stdout(pipes.stdout.clone()).stderr(pipes.stderr.clone());
    sandbox.network.apply(&mut wasi);
    if !sandbox.dirs.is_empty() {
        let protected = Protected::of(module.runtime().protected_dirs());
        for grant in &sandbox.dirs {
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
        sandbox.network.http_grant(),
        &sandbox.limits,
        shape,
        deadline,
    )
    .with_data(sandbox.data.as_ref().map(DataSeed::for_run));
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
        .set_max_capacity(sandbox.limits.max_resources);
    store.set_max_component_handles(sandbox.limits.max_resources);
    if let Some(fuel) = sandbox.limits.fuel {
        store
            .set_fuel(fuel)
            .expect("a run with a fuel budget gets the engine that consumes fuel");
    }
    store.epoch_deadline_trap();
    Ok(store)
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

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::symlink;

    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use tokio::sync::Semaphore;

    use crate::grant::hook;
    use crate::lookup::tests::Gate;
    use crate::{CacheMode, DirAccess, Error, Runtime, RuntimeConfig, Sandbox, Termination};

    /// A guest that exits 0 if `marker` is in its directory `/` (the first
    /// preopen, descriptor 3), else with WASI's errno (44, `noent`).
    const LOOKS_FOR_MARKER: &str = r#"(module
        (import "wasi_snapshot_preview1" "path_filestat_get"
          (func $stat (param i32 i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (data (i32.const 0) "marker")
        (func (export "_start")
          (call $exit (call $stat (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 6) (i32.const 64)))))"#;

    /// A symbolic link swapped after the check, to a directory the check
    /// would have refused: the guest still gets the directory checked.
    #[test]
    fn a_link_swapped_after_the_check_does_not_change_what_is_granted() {
        let root = tempfile::tempdir().unwrap();
        let (harmless, protected, link) = (
            root.path().join("harmless"),
            root.path().join("protected"),
            root.path().join("link"),
        );
        std::fs::create_dir(&harmless).unwrap();
        std::fs::create_dir(&protected).unwrap();
        std::fs::write(protected.join("marker"), "").unwrap();
        symlink(&harmless, &link).unwrap();
        let runtime = Runtime::new(&RuntimeConfig {
            cache: CacheMode::OnDisk(protected.clone()),
            cache_key_dir: Some(root.path().join("key")),
            ..RuntimeConfig::default()
        })
        .unwrap();
        let module = runtime.load_bytes("marker", LOOKS_FOR_MARKER).unwrap();
        let sandbox = Sandbox::new().dir(&link, "/", DirAccess::ReadOnly);
        assert!(
            matches!(
                Sandbox::new().dir(&protected, "/", DirAccess::ReadOnly).run(&module),
                Err(Error::GrantCoversCache { .. })
            ),
            "the protected directory itself is refused"
        );

        hook::between_check_and_preopen({
            let (protected, link) = (protected.clone(), link.clone());
            move || {
                std::fs::remove_file(&link).unwrap();
                symlink(&protected, &link).unwrap();
            }
        });
        assert!(hook::pending(), "the swap waits for the next grant");
        assert_eq!(
            sandbox.run(&module).unwrap().termination,
            Termination::Exited(44),
            "the guest sees the directory that was checked, not the link's new target"
        );
        assert!(!hook::pending(), "the swap happened");
        assert!(
            matches!(sandbox.run(&module), Err(Error::GrantCoversCache { .. })),
            "and a grant opened after the swap is refused"
        );
    }

    /// The linker's WASI 0.3 `resolve-addresses` is the host's: a guest's
    /// ten lookups at once, against a resolver that does not answer until
    /// the test says, reach it two at a time. (The names are `localhost`,
    /// which wasmtime-wasi's own function would resolve from the hosts
    /// file, sending nothing off the machine.)
    #[test]
    fn a_wasi_0_3_guest_reaches_the_resolver_two_lookups_at_a_time() {
        static THREADS: Semaphore = Semaphore::const_new(8);
        let gate = Arc::new(Gate::default());
        let guest = Runtime::shared()
            .load_file(xtask::guests::component("hostile_p3").unwrap())
            .unwrap();
        let mut sandbox = Sandbox::new()
            .allow_ip_name_lookup()
            .args(std::iter::once("lookup").chain(["localhost"; 10]));
        sandbox.network_mut().resolve_with(gate.clone(), &THREADS);
        let run = std::thread::spawn(move || sandbox.run(&guest));
        gate.wait_for(2);
        let started = gate.asked.lock().unwrap().len();
        // Opened before asserting, so that a failure does not hang.
        gate.open();
        let outcome = run.join().unwrap().unwrap();
        assert_eq!(started, 2, "resolver calls started");
        assert_eq!(gate.most.load(Ordering::SeqCst), 2, "resolver calls at once");
        assert_eq!(
            outcome.stdout_text(),
            "lookup localhost: OK [IpAddress::Ipv4((127, 0, 0, 1))]\n".repeat(10),
            "{}",
            outcome.stderr_text()
        );
    }
}
