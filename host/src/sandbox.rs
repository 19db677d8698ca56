//! The sandbox: exactly what a guest is granted (stdio, environment,
//! arguments, directories, host functions, limits), and running it.
//!
//! Nothing is granted by default: no network, no environment, no arguments beyond the
//! program name, no directories, empty stdin, captured stdout and stderr.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::{self, ComponentNamedList, Lift, Lower};
use wasmtime::{IntoFunc, Linker, PoolConcurrencyLimitError, Store, StoreContextMut};
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder, WasiView};

use crate::component::ComponentInstance;
use crate::deadline::{Deadline, RunClock};
use crate::grant::Protected;
use crate::instance::GuestInstance;
use crate::limits::Shape;
use crate::network::NetworkGrant;
use crate::outcome::{RunOutcome, Termination, classify, ended_by_guest};
use crate::output::{CappedPipe, HostStream, Sink};
use crate::runtime::EngineKind;
use crate::state::{GuestState, Pipes, finish};
use crate::stdin::{GuardedStdin, InputSource};
use crate::{AddrRule, Error, GuestModule, Limits};

/// What a guest may do with a directory it is granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirAccess {
    /// List, stat and read files; every write, create, rename or delete is refused.
    ReadOnly,
    /// Everything, inside the directory only.
    ReadWrite,
}

/// A host directory made visible to the guest under another path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DirGrant {
    /// The directory on the host.
    host_path: PathBuf,
    /// Where the guest sees it, e.g. `/data` or `.`.
    guest_path: String,
    /// What the guest may do there.
    access: DirAccess,
}

type LinkHostFunc = dyn Fn(&mut Linker<GuestState>) -> wasmtime::Result<()> + Send + Sync;
type LinkComponentFunc = dyn Fn(&mut component::Linker<GuestState>) -> wasmtime::Result<()> + Send + Sync;

/// The capabilities and limits of one run, built up by chaining.
///
/// ```
/// use host::{DirAccess, Runtime, Sandbox};
/// # let dir = tempfile::tempdir()?;
/// # std::fs::write(dir.path().join("config.txt"), "ok")?;
/// let module = Runtime::shared().load_bytes("exit-3", r#"
///     (module
///       (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
///       (memory (export "memory") 1)
///       (func (export "_start") (call $exit (i32.const 3))))"#)?;
/// let outcome = Sandbox::new()
///     .stdin("1,2,3\n")
///     .env("APP_MODE", "test")
///     .arg("config.txt")
///     .dir(dir.path(), "/data", DirAccess::ReadOnly)
///     .run(&module)?;
/// assert_eq!(outcome.exit_code(), Some(3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Sandbox {
    stdin: Input,
    /// Where stdout and stderr go; wherever it is, at most
    /// [`Limits::max_output_bytes`] of each.
    stdout: Sink,
    stderr: Sink,
    env: Vec<(String, String)>,
    argv0: Option<String>,
    args: Vec<String>,
    dirs: Vec<DirGrant>,
    network: NetworkGrant,
    pub(crate) limits: Limits,
    host_funcs: Vec<Arc<LinkHostFunc>>,
    component_funcs: Vec<Arc<LinkComponentFunc>>,
}

/// Shows the grants and limits; of the environment, only the names (its
/// values may be secrets meant for the guest alone).
impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let env: Vec<&str> = self.env.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Sandbox")
            .field("env", &env)
            .field("argv0", &self.argv0)
            .field("args", &self.args)
            .field("dirs", &self.dirs)
            .field("network", &self.network)
            .field("limits", &self.limits)
            .field("host_funcs", &self.host_funcs.len())
            .field("component_funcs", &self.component_funcs.len())
            .finish_non_exhaustive()
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self {
            stdin: Input::Bytes(bytes::Bytes::new()),
            stdout: Sink::Memory,
            stderr: Sink::Memory,
            env: Vec::new(),
            argv0: None,
            args: Vec::new(),
            dirs: Vec::new(),
            network: NetworkGrant::default(),
            limits: Limits::default(),
            host_funcs: Vec::new(),
            component_funcs: Vec::new(),
        }
    }
}

impl Sandbox {
    /// A sandbox that grants nothing, with default [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes the guest reads from stdin.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Input::Bytes(bytes.into().into());
        self
    }

    /// Lets the guest read the host process's own stdin (descriptor 0:
    /// what the program already pulled into `std::io::stdin()`'s buffer is
    /// not passed on), only when it asks and only until its timeout: one
    /// worker thread for the process does the reads, so a guest never
    /// waits for anything past its deadline.
    pub fn inherit_stdin(mut self) -> Self {
        self.stdin = Input::Source {
            source: InputSource::host(),
            on_guest_thread: false,
        };
        self
    }

    /// As [`Sandbox::inherit_stdin`], but on Linux the guest's own thread
    /// reads a pipe or socket: it waits with `poll` until the deadline and
    /// reads with `RWF_NOWAIT`, so no read waits for input, and no read is
    /// handed to a worker thread and back (a tenth of a small guest's
    /// run). Other kinds of stdin (a terminal, a named FIFO) still go to
    /// the worker. What `poll` cannot bound is the kernel's lock of the
    /// pipe or socket itself: another process stalled while holding it (in
    /// a read or write whose buffer faults on `userfaultfd`- or
    /// FUSE-backed memory) holds up the guest's thread too. Meant for a
    /// process that ends with its one guest, as `wasm-host run`: there
    /// a worker stalled that way would hold up the process's exit alike.
    pub fn inherit_stdin_on_guest_thread(mut self) -> Self {
        self.stdin = Input::Source {
            source: InputSource::host(),
            on_guest_thread: true,
        };
        self
    }

    /// Lets the guest read `reader` as its stdin, while it runs: what the
    /// reader gives is read on a thread of its own when the guest asks for
    /// input, and a guest waiting for it waits only until its timeout, as
    /// for [`Sandbox::inherit_stdin`]. Feed a running guest through a pipe
    /// (`std::io::pipe`); every run of this sandbox (and of its clones)
    /// reads on from the same reader.
    pub fn stdin_reader(mut self, reader: impl std::io::Read + Send + 'static) -> Self {
        self.stdin = Input::Source {
            source: InputSource::reader(reader),
            on_guest_thread: false,
        };
        self
    }

    /// Sends the guest's stdout straight to the host's, as it is written,
    /// instead of capturing it; still cut at [`Limits::max_output_bytes`]
    /// (the outcome says so).
    pub fn inherit_stdout(mut self) -> Self {
        self.stdout = Sink::Host(HostStream::Stdout);
        self
    }

    /// Sends the guest's stderr straight to the host's instead of capturing
    /// it; still cut at [`Limits::max_output_bytes`].
    pub fn inherit_stderr(mut self) -> Self {
        self.stderr = Sink::Host(HostStream::Stderr);
        self
    }

    /// Writes the guest's stdout to `writer` as the guest writes it (each
    /// write flushed), instead of capturing it, so it can be read while the
    /// guest runs; still cut at [`Limits::max_output_bytes`]. The guest
    /// waits for each write as long as the writer takes.
    pub fn stdout_writer(mut self, writer: impl std::io::Write + Send + 'static) -> Self {
        self.stdout = Sink::Writer(Arc::new(Mutex::new(writer)));
        self
    }

    /// Writes the guest's stderr to `writer`, as [`Sandbox::stdout_writer`] does stdout.
    pub fn stderr_writer(mut self, writer: impl std::io::Write + Send + 'static) -> Self {
        self.stderr = Sink::Writer(Arc::new(Mutex::new(writer)));
        self
    }

    /// Grants one environment variable. Host variables are never passed through.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Grants several environment variables.
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.env
            .extend(vars.into_iter().map(|(name, value)| (name.into(), value.into())));
        self
    }

    /// The guest's `argv[0]`, the program name: the module's name unless set here.
    pub fn argv0(mut self, name: impl Into<String>) -> Self {
        self.argv0 = Some(name.into());
        self
    }

    /// Appends one argument, after `argv[0]` (see [`Sandbox::argv0`]).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends several arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Grants a host directory, seen by the guest at `guest_path`.
    ///
    /// Each run opens it once (links in `host_path` followed then) and gives
    /// the guest that open directory. A run refuses
    /// ([`Error::GrantCoversCache`]) a directory that is, contains or lies
    /// inside the compiled-module cache's key directory or a cache
    /// directory, whatever the runtime's cache mode: a guest able to read
    /// or write there could plant native code for later runs.
    pub fn dir(mut self, host_path: impl Into<PathBuf>, guest_path: impl Into<String>, access: DirAccess) -> Self {
        self.dirs.push(DirGrant {
            host_path: host_path.into(),
            guest_path: guest_path.into(),
            access,
        });
        self
    }

    /// Grants a component the whole network: TCP and UDP to and from any
    /// address (as `wasmtime run -S inherit-network`) and outgoing HTTP to
    /// any address, name lookup excepted, for sockets and HTTP alike
    /// ([`Sandbox::allow_ip_name_lookup`]). Core modules have no
    /// sockets to use it with.
    pub fn allow_network(mut self) -> Self {
        self.network.allow_all();
        self
    }

    /// Grants a component TCP connections and UDP datagrams to the
    /// addresses `rule` covers (repeatable); nothing else on the network.
    pub fn allow_connect(mut self, rule: AddrRule) -> Self {
        self.network.allow_connect(rule);
        self
    }

    /// Grants a component binding and listening on the local addresses
    /// `rule` covers, and accepting clients there (repeatable).
    pub fn allow_bind(mut self, rule: AddrRule) -> Self {
        self.network.allow_bind(rule);
        self
    }

    /// Grants a component outgoing HTTP requests (`wasi:http`, plain HTTP)
    /// to the addresses `rule` covers (repeatable). A host name is resolved
    /// by the host only with [`Sandbox::allow_ip_name_lookup`], and only a
    /// granted address it resolves to is connected to; a request to
    /// anything else fails in the guest with
    /// `destination-ip-prohibited`. [`Sandbox::allow_network`] grants every
    /// address; the socket grants do not cover HTTP, nor this grant sockets.
    pub fn allow_http(mut self, rule: AddrRule) -> Self {
        self.network.allow_http(rule);
        self
    }

    /// Grants a component name lookups through the host's resolver:
    /// `wasi:sockets/ip-name-lookup`, and the host names in the URLs of its
    /// outgoing HTTP requests ([`Sandbox::allow_http`]). Without it, a URL
    /// names its host by an IP address or `localhost` (loopback, never
    /// sent to DNS); any other name fails with `destination-ip-prohibited`.
    /// A sandbox and its clones resolve at most 2 names at once, HTTP and
    /// WASI 0.2's `resolve-addresses` together (WASI 0.3's is not capped).
    pub fn allow_ip_name_lookup(mut self) -> Self {
        self.network.allow_name_lookup();
        self
    }

    /// Replaces the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Offers a component one more import: the function `name` of the
    /// interface `interface` (`example:host/log`, as the guest's WIT names
    /// it), implemented by `func`, which takes the store's context and the
    /// parameters as a tuple and returns the results as a tuple. Like
    /// every grant, nothing is offered unless registered: a component
    /// importing what was not fails to instantiate
    /// ([`Error::UnknownImport`]). It may shadow a WASI function.
    ///
    /// ```
    /// let sandbox = host::Sandbox::new().component_func(
    ///     "example:host/log",
    ///     "log",
    ///     |_store: wasmtime::StoreContextMut<'_, host::GuestState>, (message,): (String,)| {
    ///         eprintln!("guest says {message}");
    ///         Ok(())
    ///     },
    /// );
    /// ```
    pub fn component_func<Params, Results>(
        mut self,
        interface: &str,
        name: &str,
        func: impl Fn(StoreContextMut<'_, GuestState>, Params) -> wasmtime::Result<Results> + Send + Sync + Clone + 'static,
    ) -> Self
    where
        Params: ComponentNamedList + Lift + 'static,
        Results: ComponentNamedList + Lower + 'static,
    {
        let (interface, name) = (interface.to_owned(), name.to_owned());
        self.component_funcs.push(Arc::new(move |linker| {
            linker.instance(&interface)?.func_wrap(&name, func.clone())
        }));
        self
    }

    /// Offers the guest one more import, `module::name`, implemented by `func`
    /// (any closure Wasmtime's `Linker::func_wrap` accepts; it may take a
    /// `Caller<'_, GuestState>` first). It may shadow a built-in import.
    ///
    /// ```
    /// let module = host::Runtime::shared().load_bytes("ask", r#"
    ///     (module
    ///       (import "env" "answer" (func $answer (result i32)))
    ///       (func (export "twice") (result i32) (i32.add (call $answer) (call $answer))))"#)?;
    /// let mut guest = host::Sandbox::new()
    ///     .host_func("env", "answer", || 21)
    ///     .instantiate(&module)?;
    /// assert_eq!(guest.call::<(), i32>("twice", ())?, 42);
    /// # Ok::<(), host::Error>(())
    /// ```
    pub fn host_func<Params, Results>(
        mut self,
        module: &str,
        name: &str,
        func: impl IntoFunc<GuestState, Params, Results> + Clone + 'static,
    ) -> Self {
        let (module, name) = (module.to_owned(), name.to_owned());
        self.host_funcs.push(Arc::new(move |linker| {
            linker.func_wrap(&module, &name, func.clone())?;
            Ok(())
        }));
        self
    }

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
            return Err(Error::WrongKind {
                module: module.name().to_owned(),
                expected: "a core module (host functions are core-module imports)",
            });
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
        let deadline = Deadline::current();
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
            return Err(LinkFailure::Setup(Error::WrongKind {
                module: module.name().to_owned(),
                expected: "a component (component functions are component imports)",
            }));
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
                    LinkFailure::Setup(Error::Instantiate {
                        module: module.name().to_owned(),
                        source: e.context("registering a host function").into(),
                    })
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
                LinkFailure::Setup(Error::Instantiate {
                    module: module.name().to_owned(),
                    source: error.into(),
                })
            }
        })
    }
}

/// Where a guest's stdin comes from.
#[derive(Clone)]
enum Input {
    /// These bytes, then its end.
    Bytes(bytes::Bytes),
    /// The host's stdin or a reader, read while the guest runs, by a
    /// worker thread or where it can on the guest's own.
    Source {
        source: Arc<InputSource>,
        on_guest_thread: bool,
    },
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

    use crate::grant::hook;
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
}
