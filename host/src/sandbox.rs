//! The sandbox: exactly what a guest is granted (stdio, environment,
//! arguments, directories, host functions, limits). Running it:
//! `crate::launch`.
//!
//! Nothing is granted by default: no network, no environment, no arguments beyond the
//! program name, no directories, empty stdin, captured stdout and stderr.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use wasmtime::component::{self, ComponentNamedList, Lift, Lower};
use wasmtime::{IntoFunc, StoreContextMut};

use crate::linking::ExtraImports;
use crate::network::NetworkGrant;
use crate::output::{HostStream, Sink};
use crate::state::{DataSeed, DataType, GuestState, checked_data};
use crate::stdin::InputSource;
use crate::{AddrRule, Limits};

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
pub(crate) struct DirGrant {
    /// The directory on the host.
    pub(crate) host_path: PathBuf,
    /// Where the guest sees it, e.g. `/data` or `.`.
    pub(crate) guest_path: String,
    /// What the guest may do there.
    pub(crate) access: DirAccess,
}

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
    pub(crate) stdin: Input,
    /// Where stdout and stderr go; wherever it is, at most
    /// [`Limits::max_output_bytes`] of each.
    pub(crate) stdout: Sink,
    pub(crate) stderr: Sink,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) argv0: Option<String>,
    pub(crate) args: Vec<String>,
    pub(crate) dirs: Vec<DirGrant>,
    pub(crate) network: NetworkGrant,
    pub(crate) limits: Limits,
    pub(crate) imports: ExtraImports,
    /// What each run's store gets a clone of, for the embedder.
    pub(crate) data: Option<DataSeed>,
    /// The types of data the component bindings read.
    pub(crate) data_needs: Vec<DataType>,
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
            .field("host_funcs", &self.imports.host_funcs.len())
            .field("component_funcs", &self.imports.component_funcs.len())
            .field("data", &self.data.as_ref().map(DataSeed::type_name))
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
            imports: ExtraImports::default(),
            data: None,
            data_needs: Vec::new(),
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
    /// ([`crate::Error::GrantCoversCache`]) a directory that is, contains or lies
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
    /// WASI 0.2's and 0.3's `resolve-addresses` together.
    pub fn allow_ip_name_lookup(mut self) -> Self {
        self.network.allow_name_lookup();
        self
    }

    /// The network grant (unit tests give it a resolver of their own).
    #[cfg(test)]
    pub(crate) fn network_mut(&mut self) -> &mut NetworkGrant {
        &mut self.network
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
    /// ([`crate::Error::UnknownImport`]). It may shadow a WASI function.
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
        self.imports.component_funcs.push(Arc::new(move |linker| {
            linker.instance(&interface)?.func_wrap(&name, func.clone())
        }));
        self
    }

    /// Gives each run its own clone of `value`, the embedder's data (a
    /// request's id, a handle, a counter), which host functions reach
    /// through [`GuestState::data`] and [`GuestState::data_mut`], and
    /// component bindings through [`Sandbox::component_bindings`]. After a
    /// run it is still there in a live guest ([`crate::GuestInstance::data`],
    /// [`crate::ComponentInstance::data`]); [`Sandbox::run`]'s store is gone when
    /// it returns, so what must outlive it goes through an `Arc`. Replaces
    /// what an earlier call gave. A sandbox without data holds nothing for
    /// it and costs nothing more.
    ///
    /// A clone per run, because a sandbox describes runs rather than being
    /// one: it is run again and again, and at once from several threads
    /// ([`Sandbox::serve_http`] makes a store per request). Each store owns
    /// its data, so a host function gets `&mut T` without a lock, and no run
    /// sees another's changes; what every run should share (a total, a
    /// connection pool) goes in an `Arc` inside `T`, whose clones share it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use host::wasmtime::Caller;
    /// use host::{GuestState, Runtime, Sandbox};
    ///
    /// #[derive(Clone, Default)]
    /// struct Counters {
    ///     /// This run's calls.
    ///     run: u32,
    ///     /// Every run's calls.
    ///     all: Arc<AtomicU32>,
    /// }
    ///
    /// let module = Runtime::shared().load_bytes("count", r#"
    ///     (module
    ///       (import "env" "count" (func $count))
    ///       (func (export "_start") (call $count) (call $count)))"#)?;
    /// let all = Arc::new(AtomicU32::new(0));
    /// let sandbox = Sandbox::new()
    ///     .data(Counters { run: 0, all: all.clone() })
    ///     .host_func("env", "count", |mut caller: Caller<'_, GuestState>| {
    ///         let counters = caller.data_mut().data_mut::<Counters>()?;
    ///         counters.run += 1;
    ///         counters.all.fetch_add(1, Ordering::Relaxed);
    ///         Ok(())
    ///     });
    /// sandbox.run(&module)?;
    /// sandbox.run(&module)?;
    /// assert_eq!(all.load(Ordering::Relaxed), 4);
    ///
    /// let mut guest = sandbox.instantiate(&module)?;
    /// guest.call::<(), ()>("_start", ())?;
    /// assert_eq!(guest.data::<Counters>()?.run, 2, "a run's own count starts again");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn data<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.data = Some(DataSeed::new(value));
        self
    }

    /// Adds to a component's linker what `add` adds, typically the imports
    /// of a WIT world that Wasmtime's `bindgen!` generated bindings for, and
    /// hands `add` the getter their `add_to_linker` takes: from the store's
    /// [`GuestState`] to the sandbox's data ([`Sandbox::data`]) as a `T`,
    /// which implements the world's `Host` traits. A run checks first that
    /// the sandbox holds a `T`, and refuses to instantiate the component
    /// ([`crate::Error::MissingData`]) when not. The world's typed exports are
    /// called through [`crate::ComponentInstance::bindings`] and
    /// [`crate::ComponentInstance::call_bindings`]. Like
    /// [`Sandbox::component_func`], refused to a core module.
    ///
    /// ```no_run
    /// use host::wasmtime::component::{HasSelf, bindgen};
    ///
    /// bindgen!({
    ///     inline: "
    ///         package example:greet;
    ///         world greeter {
    ///             import name: func() -> string;
    ///             export greet: func() -> string;
    ///         }
    ///     ",
    ///     exports: { default: async },
    /// });
    ///
    /// /// The embedder's data, which the guest's import reads.
    /// #[derive(Clone)]
    /// struct Visitor(String);
    ///
    /// impl GreeterImports for Visitor {
    ///     fn name(&mut self) -> String {
    ///         self.0.clone()
    ///     }
    /// }
    ///
    /// // A component built from the same WIT world.
    /// let component = host::Runtime::shared().load_file("greeter.wasm")?;
    /// let mut guest = host::Sandbox::new()
    ///     .data(Visitor("Ada".into()))
    ///     .component_bindings(|linker, data| Greeter::add_to_linker::<_, HasSelf<Visitor>>(linker, data))
    ///     .instantiate_component(&component)?;
    /// let greeter = guest.bindings(|store, instance| Greeter::new(store, instance))?;
    /// let text = guest.call_bindings(async |store| greeter.call_greet(store).await)?;
    /// println!("{text}");
    /// # Ok::<(), host::Error>(())
    /// ```
    pub fn component_bindings<T: 'static>(
        mut self,
        add: impl Fn(&mut component::Linker<GuestState>, fn(&mut GuestState) -> &mut T) -> wasmtime::Result<()>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.data_needs.push(DataType::of::<T>());
        self.imports
            .component_funcs
            .push(Arc::new(move |linker| add(linker, checked_data::<T>)));
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
        self.imports.host_funcs.push(Arc::new(move |linker| {
            linker.func_wrap(&module, &name, func.clone())?;
            Ok(())
        }));
        self
    }
}

/// Where a guest's stdin comes from.
#[derive(Clone)]
pub(crate) enum Input {
    /// These bytes, then its end.
    Bytes(bytes::Bytes),
    /// The host's stdin or a reader, read while the guest runs, by a
    /// worker thread or where it can on the guest's own.
    Source {
        source: Arc<InputSource>,
        on_guest_thread: bool,
    },
}
