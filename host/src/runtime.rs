//! The runtime: one Wasmtime engine per process, the linker every guest is
//! instantiated against, and modules compiled for that engine.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::thread;

use bytes::Bytes;
use wasmtime::component::{self, Component};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module, PoolingAllocationConfig};

use crate::cache::{self, CacheLimits, CacheMode, CacheStats, Compiled, ModuleCache};
use crate::compile::{self, CompileLimits};
use crate::deadline::EPOCH_TICK;
use crate::imports;
use crate::state::GuestState;
use crate::{Error, Limits};

/// Engine-wide settings. Everything per-run lives in [`crate::Limits`] instead.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Largest wasm call stack a guest may use, in bytes; deeper recursion is
    /// a [`crate::TrapKind::StackOverflow`]. Default 512 KiB, as Wasmtime's.
    pub max_wasm_stack: usize,
    /// Where compiled modules are kept. Default: [`CacheMode::from_env`].
    pub cache: CacheMode,
    /// How many compiled modules the cache keeps. Default: [`CacheLimits::default`].
    pub cache_limits: CacheLimits,
    /// What a module may be to be compiled, and how long compiling it may
    /// take. Default: [`CompileLimits::default`].
    pub compile_limits: CompileLimits,
    /// Pre-reserve instance slots (Wasmtime's pooling allocator) instead of
    /// mapping memory for each instance. Default `None`.
    pub pooling: Option<Pooling>,
    /// Compile epoch checks into guests, so that a run's
    /// [`crate::Limits::timeout`] stops a guest that computes past it.
    /// Default `true`. Off, a tight loop runs up to 1.5x faster and a large
    /// module compiles up to twice as fast (docs/performance.md), no ticker
    /// thread runs, and the timeout still ends every host call that waits
    /// (`poll_oneoff`, stdin), but a guest that only computes runs on: the
    /// embedder must stop it another way (`wasm-host run` ends its process).
    pub epoch_interruption: bool,
}

/// Sizes for the pooling allocator: slots are reserved once and reused, so
/// instantiation costs no `mmap`. A guest that needs more than a slot holds
/// fails to instantiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pooling {
    /// How many guests may be alive at once.
    pub max_instances: u32,
    /// Largest linear memory of any guest; keep it at least the
    /// [`crate::Limits::max_memory_bytes`] of every run.
    pub max_memory_bytes: usize,
    /// Largest table of any guest; at least every run's [`crate::Limits::max_table_elements`].
    pub max_table_elements: usize,
}

impl Default for Pooling {
    fn default() -> Self {
        let limits = crate::Limits::default();
        Self {
            max_instances: 256,
            max_memory_bytes: limits.max_memory_bytes,
            max_table_elements: limits.max_table_elements,
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_wasm_stack: 512 * 1024,
            cache: CacheMode::from_env(),
            cache_limits: CacheLimits::default(),
            compile_limits: CompileLimits::default(),
            pooling: None,
            epoch_interruption: true,
        }
    }
}

/// Wasmtime engines set up for sandboxed guests, with the WASI preview 1
/// and `host` imports linked in.
///
/// Runs without a fuel budget use an engine that does not instrument code
/// for fuel (instrumentation costs a CPU-bound guest 10-15% of its time); the
/// first run that sets [`crate::Limits::fuel`] creates a second, metered
/// engine, and modules are compiled for it when such a run needs them.
///
/// Creating one is expensive (it starts a compiler and a timer thread), so a
/// process normally uses [`Runtime::shared`]; cloning is cheap.
///
/// ```
/// let runtime = host::Runtime::shared();
/// let module = runtime.load_bytes("answer", r#"(module (func (export "answer") (result i32) i32.const 42))"#)?;
/// let mut guest = host::Sandbox::new().instantiate(&module)?;
/// assert_eq!(guest.call::<(), i32>("answer", ())?, 42);
/// # Ok::<(), host::Error>(())
/// ```
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    config: RuntimeConfig,
    unmetered: Flavour,
    /// Made by the first run with a fuel budget.
    metered: OnceLock<Flavour>,
    cache: ModuleCache,
    compile_limits: CompileLimits,
}

/// Whether a run counts fuel, which decides the engine it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Metering {
    Unmetered,
    Fuel,
}

impl Metering {
    pub(crate) fn of(limits: &Limits) -> Self {
        match limits.fuel {
            Some(_) => Metering::Fuel,
            None => Metering::Unmetered,
        }
    }
}

/// One engine, the linkers for it, and its key in the module cache.
pub(crate) struct Flavour {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<GuestState>,
    /// WASI 0.2 and 0.3 for components, made when the first component is linked.
    component_linker: OnceLock<component::Linker<GuestState>>,
    cache_key: [u8; 32],
}

impl Flavour {
    fn new(config: &RuntimeConfig, metering: Metering) -> Result<Self, Error> {
        let mut wasm = Config::new();
        // Timeouts interrupt the guest at the next epoch check; fuel counts
        // instructions, only for runs that ask for a deterministic budget.
        wasm.epoch_interruption(config.epoch_interruption)
            .consume_fuel(metering == Metering::Fuel)
            .max_wasm_stack(config.max_wasm_stack)
            // Components run on a fiber of this size (see `crate::component`),
            // which must hold the whole wasm stack and the host calls beyond it.
            .async_stack_size(config.max_wasm_stack + ASYNC_STACK_MARGIN)
            // WASI 0.3 components lift and lower functions asynchronously.
            .wasm_component_model_async(true);
        if let Some(pooling) = config.pooling {
            let tables_per_module = crate::limits::Shape::CORE.tables as u32;
            let mut pool = PoolingAllocationConfig::new();
            pool.total_core_instances(pooling.max_instances)
                .total_memories(pooling.max_instances)
                .total_tables(pooling.max_instances.saturating_mul(tables_per_module))
                .max_memories_per_module(1)
                .max_tables_per_module(tables_per_module)
                .max_memory_size(pooling.max_memory_bytes)
                .table_elements(pooling.max_table_elements);
            wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&wasm).map_err(config_error)?;
        let mut linker = Linker::new(&engine);
        imports::add_to_linker(&mut linker).map_err(config_error)?;
        if config.epoch_interruption {
            start_epoch_ticker(&engine);
        }
        let cache_key = crate::cache::engine_key(&engine);
        Ok(Self {
            engine,
            linker,
            component_linker: OnceLock::new(),
            cache_key,
        })
    }

    fn component_linker(&self) -> Result<&component::Linker<GuestState>, Error> {
        if let Some(linker) = self.component_linker.get() {
            return Ok(linker);
        }
        let linker = imports::component_linker(&self.engine).map_err(config_error)?;
        Ok(self.component_linker.get_or_init(|| linker))
    }
}

fn config_error(error: wasmtime::Error) -> Error {
    Error::Config { source: error.into() }
}

impl Runtime {
    /// Creates a runtime with its own engine.
    pub fn new(config: &RuntimeConfig) -> Result<Self, Error> {
        let unmetered = Flavour::new(config, Metering::Unmetered)?;
        let cache = ModuleCache::new(config.cache.clone(), config.cache_limits);
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                config: config.clone(),
                unmetered,
                metered: OnceLock::new(),
                cache,
                compile_limits: config.compile_limits,
            }),
        })
    }

    /// The process-wide runtime with the default configuration: one engine
    /// shared by every run, as Wasmtime recommends.
    pub fn shared() -> &'static Runtime {
        static SHARED: OnceLock<Runtime> = OnceLock::new();
        SHARED
            .get_or_init(|| Runtime::new(&RuntimeConfig::default()).expect("the default engine configuration is valid"))
    }

    /// The engine of runs without a fuel budget, for embedders who need
    /// Wasmtime directly.
    pub fn engine(&self) -> &Engine {
        &self.inner.unmetered.engine
    }

    /// Where compiled modules are kept: the configured [`CacheMode`], except
    /// that a directory that could not be trusted leaves the cache
    /// [`CacheMode::InMemory`], and `OnDisk` carries the canonical directory.
    pub fn cache_mode(&self) -> &CacheMode {
        self.inner.cache.mode()
    }

    /// True when guests are compiled with epoch checks, so that a timeout
    /// stops a guest that computes ([`RuntimeConfig::epoch_interruption`]).
    pub(crate) fn epoch_interruption(&self) -> bool {
        self.inner.config.epoch_interruption
    }

    /// What the compiled-module cache has done so far.
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.cache.stats()
    }

    /// The engine and linkers for runs metered as `metering` says, the
    /// metered ones made on first use.
    pub(crate) fn flavour(&self, metering: Metering) -> Result<&Flavour, Error> {
        let inner = &*self.inner;
        match metering {
            Metering::Unmetered => Ok(&inner.unmetered),
            Metering::Fuel => {
                if let Some(flavour) = inner.metered.get() {
                    return Ok(flavour);
                }
                let flavour = Flavour::new(&inner.config, Metering::Fuel)?;
                Ok(inner.metered.get_or_init(|| flavour))
            }
        }
    }

    /// Reads and compiles a module file for runs without a fuel budget. Its
    /// file name names it in errors.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<GuestModule, Error> {
        self.load_file_for(path, &Limits::default())
    }

    /// Reads and compiles a module file for runs within `limits` (with or
    /// without a fuel budget), so that the first such run does not compile
    /// it again. It still runs under any other limits.
    ///
    /// With the disk cache, a file left unchanged since an earlier load
    /// (same device, inode, size and times, the last change at least two
    /// seconds before that load) is neither read nor hashed: the cache
    /// recorded its content hash, and its code is found by that.
    pub fn load_file_for(&self, path: impl AsRef<Path>, limits: &Limits) -> Result<GuestModule, Error> {
        let path = path.as_ref();
        let name = path
            .file_name()
            .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let meta = std::fs::metadata(path).map_err(|source| Error::ReadModule {
            path: path.to_owned(),
            source,
        })?;
        let cache = &self.inner.cache;
        let source = match cache.file_hash(&meta) {
            Some(hash) => ModuleSource {
                file: Some(path.to_owned()),
                name: name.clone(),
                bytes: OnceLock::new(),
                hash: OnceLock::from(hash),
            },
            None => ModuleSource::new(&name, read_module(path, &name)?, Some(path)),
        };
        let module = self.load(&name, source, Metering::of(limits))?;
        if module.source.bytes.get().is_some()
            && let Some(hash) = module.source.hash.get()
        {
            cache.remember_file(&meta, hash);
        }
        Ok(module)
    }

    /// Compiles a core module or a component from its binary or WAT text,
    /// for runs without a fuel budget, or takes it from the compiled-module
    /// cache.
    pub fn load_bytes(&self, name: &str, bytes: impl AsRef<[u8]>) -> Result<GuestModule, Error> {
        self.load_bytes_for(name, bytes, &Limits::default())
    }

    /// Like [`Runtime::load_bytes`], compiled for runs within `limits`
    /// (see [`Runtime::load_file_for`]).
    pub fn load_bytes_for(&self, name: &str, bytes: impl AsRef<[u8]>, limits: &Limits) -> Result<GuestModule, Error> {
        let bytes = binary(name, Bytes::copy_from_slice(bytes.as_ref()))?;
        self.load(name, ModuleSource::new(name, bytes, None), Metering::of(limits))
    }

    fn load(&self, name: &str, source: ModuleSource, metering: Metering) -> Result<GuestModule, Error> {
        let module = GuestModule {
            name: name.into(),
            runtime: self.clone(),
            source: Arc::new(source),
            first: metering,
            code: Arc::default(),
        };
        module.code(metering)?;
        Ok(module)
    }
}

/// Reads a module file, as a binary.
fn read_module(path: &Path, name: &str) -> Result<Bytes, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::ReadModule {
        path: path.to_owned(),
        source,
    })?;
    binary(name, Bytes::from(bytes))
}

/// `bytes` as a binary: WAT text is parsed first, so a component written as
/// WAT is recognised as one and the cache only ever sees binaries.
fn binary(name: &str, bytes: Bytes) -> Result<Bytes, Error> {
    match as_text(&bytes) {
        Some(text) => Ok(Bytes::from(wat::parse_str(text).map_err(|e| Error::InvalidModule {
            module: name.to_owned(),
            source: e.into(),
        })?)),
        None => Ok(bytes),
    }
}

/// A module's binary and its content hash, each found when first needed:
/// a file the cache knows unchanged is read only if its code must be
/// compiled (for the other engine, or after an eviction).
struct ModuleSource {
    name: String,
    /// Where the bytes are read from when they are not here yet.
    file: Option<PathBuf>,
    bytes: OnceLock<Bytes>,
    hash: OnceLock<[u8; 32]>,
}

impl ModuleSource {
    fn new(name: &str, bytes: Bytes, file: Option<&Path>) -> Self {
        Self {
            name: name.to_owned(),
            file: file.map(Path::to_owned),
            bytes: OnceLock::from(bytes),
            hash: OnceLock::new(),
        }
    }
}

impl cache::Source for ModuleSource {
    fn hash(&self) -> wasmtime::Result<[u8; 32]> {
        match self.hash.get() {
            Some(hash) => Ok(*hash),
            None => Ok(*self
                .hash
                .get_or_init(|| cache::content_hash(self.bytes.get().expect("bytes or a hash")))),
        }
    }

    fn bytes(&self) -> wasmtime::Result<Bytes> {
        if let Some(bytes) = self.bytes.get() {
            return Ok(bytes.clone());
        }
        let path = self.file.as_ref().expect("a source without its bytes has a file");
        let bytes = read_module(path, &self.name)?;
        // The file may have changed since its code was found by its hash.
        if Some(&cache::content_hash(&bytes)) != self.hash.get() {
            return Err(Error::ReadModule {
                path: path.clone(),
                source: std::io::Error::other("the file changed since it was loaded"),
            }
            .into());
        }
        Ok(self.bytes.get_or_init(|| bytes).clone())
    }
}

/// A compiled guest, a core module or a component, ready to run in any
/// number of sandboxes.
///
/// It keeps its binary (or the file it reads it from again), so that a run
/// metered otherwise than the load was for (see [`Runtime::load_file_for`])
/// can have it compiled for its engine.
/// Cloning is cheap and clones share the compiled code.
#[derive(Clone)]
pub struct GuestModule {
    name: Arc<str>,
    runtime: Runtime,
    source: Arc<ModuleSource>,
    /// What the load compiled for.
    first: Metering,
    /// Indexed by [`Metering`]: compiled when a run first needs it.
    code: Arc<[OnceLock<Code>; 2]>,
}

/// The code compiled for one engine, and its pre-linked form once made.
enum Code {
    Core {
        module: Module,
        linked: OnceLock<InstancePre<GuestState>>,
    },
    Component {
        component: Component,
        linked: OnceLock<component::InstancePre<GuestState>>,
    },
}

impl GuestModule {
    /// The name used in errors: the file name, or the name given to `load_bytes`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True for a component (a `wasm32-wasip2` program), false for a core module.
    pub fn is_component(&self) -> bool {
        matches!(self.first_code(), Code::Component { .. })
    }

    /// The runtime this module was compiled for.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn first_code(&self) -> &Code {
        self.code[self.first as usize]
            .get()
            .expect("the load compiled the code it was for")
    }

    /// The code compiled for the engine of `metering`, compiled now (or
    /// taken from the cache) the first time.
    fn code(&self, metering: Metering) -> Result<&Code, Error> {
        let slot = &self.code[metering as usize];
        if let Some(code) = slot.get() {
            return Ok(code);
        }
        let flavour = self.runtime.flavour(metering)?;
        let compiled = self
            .runtime
            .inner
            .cache
            .load(
                &flavour.engine,
                &flavour.cache_key,
                &*self.source,
                &self.runtime.inner.compile_limits,
            )
            .map_err(|e| match e.downcast::<Error>() {
                // Reading the file again failed, or found it changed.
                Ok(error) => error,
                Err(e) => match e.downcast_ref::<compile::Exceeded>() {
                    Some(&exceeded) => Error::compile_limit(&self.name, exceeded),
                    None => Error::InvalidModule {
                        module: self.name.to_string(),
                        source: e.into(),
                    },
                },
            })?;
        let code = match compiled {
            Compiled::Module(module) => Code::Core {
                module,
                linked: OnceLock::new(),
            },
            Compiled::Component(component) => Code::Component {
                component,
                linked: OnceLock::new(),
            },
        };
        Ok(slot.get_or_init(|| code))
    }

    /// The core module for `metering`, linked against the runtime's own
    /// imports (done once), or the first import nothing provides.
    pub(crate) fn linked_core(&self, metering: Metering) -> Result<&InstancePre<GuestState>, Error> {
        let (module, linked) = match self.code(metering)? {
            Code::Core { module, linked } => (module, linked),
            Code::Component { .. } => return Err(self.wrong_kind("a core module")),
        };
        if let Some(pre) = linked.get() {
            return Ok(pre);
        }
        let linker = &self.runtime.flavour(metering)?.linker;
        let pre = linker
            .instantiate_pre(module)
            .map_err(|e| self.link_error(module, linker, e))?;
        Ok(linked.get_or_init(|| pre))
    }

    /// The component for `metering`, linked against WASI 0.2 and 0.3 (done once),
    /// or the import nothing provides.
    pub(crate) fn linked_component(&self, metering: Metering) -> Result<&component::InstancePre<GuestState>, Error> {
        let (component, linked) = match self.code(metering)? {
            Code::Component { component, linked } => (component, linked),
            Code::Core { .. } => return Err(self.wrong_kind("a component")),
        };
        if let Some(pre) = linked.get() {
            return Ok(pre);
        }
        let pre = self
            .runtime
            .flavour(metering)?
            .component_linker()?
            .instantiate_pre(component)
            .map_err(|e| self.component_link_error(e))?;
        Ok(linked.get_or_init(|| pre))
    }

    /// The component linked with WASI and, through `add`, a sandbox's own
    /// component functions (which may shadow WASI's): linked afresh, as
    /// they differ from sandbox to sandbox.
    pub(crate) fn linked_component_with(
        &self,
        metering: Metering,
        add: impl FnOnce(&mut component::Linker<GuestState>) -> wasmtime::Result<()>,
    ) -> Result<component::InstancePre<GuestState>, Error> {
        let Code::Component { component, .. } = self.code(metering)? else {
            return Err(self.wrong_kind("a component"));
        };
        let mut linker = self.runtime.flavour(metering)?.component_linker()?.clone();
        linker.allow_shadowing(true);
        add(&mut linker).map_err(|e| Error::Instantiate {
            module: self.name.to_string(),
            source: e.context("registering a component function").into(),
        })?;
        linker
            .instantiate_pre(component)
            .map_err(|e| self.component_link_error(e))
    }

    /// The core module for `metering`, for linking with a sandbox's own
    /// host functions.
    pub(crate) fn core_module(&self, metering: Metering) -> Result<&Module, Error> {
        match self.code(metering)? {
            Code::Core { module, .. } => Ok(module),
            Code::Component { .. } => Err(self.wrong_kind("a core module")),
        }
    }

    fn wrong_kind(&self, expected: &'static str) -> Error {
        Error::WrongKind {
            module: self.name.to_string(),
            expected,
        }
    }

    /// Names the missing import when linking failed because of one.
    pub(crate) fn link_error(&self, module: &Module, linker: &Linker<GuestState>, error: wasmtime::Error) -> Error {
        let mut scratch = wasmtime::Store::new(linker.engine(), GuestState::scratch());
        let missing = module
            .imports()
            .find(|import| linker.get(&mut scratch, import.module(), import.name()).is_err());
        match missing {
            Some(import) => Error::UnknownImport {
                module: self.name.to_string(),
                import_module: import.module().to_owned(),
                import_name: import.name().to_owned(),
            },
            None => Error::Instantiate {
                module: self.name.to_string(),
                source: error.into(),
            },
        }
    }

    /// A component's link error: Wasmtime names the unmatched import
    /// (an interface, or a function of one) in backquotes.
    fn component_link_error(&self, error: wasmtime::Error) -> Error {
        let reason = format!("{error:#}");
        let import = reason
            .contains("matching implementation was not found")
            .then(|| reason.split('`').nth(1))
            .flatten();
        match import {
            Some(import) => Error::UnknownImport {
                module: self.name.to_string(),
                import_module: import.to_owned(),
                import_name: String::new(),
            },
            None => Error::Instantiate {
                module: self.name.to_string(),
                source: error.into(),
            },
        }
    }
}

/// WAT text, told from a binary by having no NUL byte (every binary starts
/// with `\0asm`) and being UTF-8; anything else is compiled as a binary, so
/// a file with a wrong magic number is reported as such, not as bad WAT.
fn as_text(bytes: &[u8]) -> Option<&str> {
    if bytes.contains(&0) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// Stack beyond the wasm stack on a component's fiber, for the host calls it makes.
const ASYNC_STACK_MARGIN: usize = 1 << 20;

/// Advances the engine's epoch every tick for as long as the engine lives,
/// so every store's epoch deadline doubles as a wall-clock timeout.
fn start_epoch_ticker(engine: &Engine) {
    let engine = engine.weak();
    thread::Builder::new()
        .name("wasm-epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch ticker thread");
}
