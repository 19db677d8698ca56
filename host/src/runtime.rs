//! The runtime: one Wasmtime engine per process, the linker every guest is
//! instantiated against, and modules compiled for that engine.

use std::collections::BTreeSet;
use std::fmt;
use std::io::Read;
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
use crate::proposals::{self, Proposal};
use crate::state::GuestState;
use crate::{Error, Limits};

/// Engine-wide settings. Everything per-run lives in [`crate::Limits`] instead.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Largest wasm call stack a guest may use, in bytes; deeper recursion is
    /// a [`crate::TrapKind::StackOverflow`]. Default 512 KiB, as Wasmtime's.
    pub max_wasm_stack: usize,
    /// Where compiled modules are kept. Default: [`CacheMode::from_env`].
    pub cache: CacheMode,
    /// The directory of the secret key that authenticates the on-disk
    /// cache's entries, never inside a cache directory; `None` keeps the
    /// cache in memory. No guest is granted it, whatever the mode.
    /// Default: [`crate::key_dir_from_env`].
    pub cache_key_dir: Option<PathBuf>,
    /// How many compiled modules the cache keeps. Default: [`CacheLimits::default`].
    pub cache_limits: CacheLimits,
    /// What a module may be to be compiled, and how long compiling it may
    /// take. Default: [`CompileLimits::default`].
    pub compile_limits: CompileLimits,
    /// Pre-reserve slots for core modules' instances (Wasmtime's pooling
    /// allocator) instead of mapping memory for each one: a run of a small
    /// guest is cheaper (docs/performance.md). Default
    /// `Some(Pooling::default())`; `None` allocates every instance on demand. Nothing is refused for want of a
    /// slot: a run finds the runtime's on-demand engine instead when every
    /// slot is taken, when its module's memory or table is larger than a
    /// slot, or when its [`crate::Limits`] allow more than a slot holds.
    /// Components always allocate on demand. Where the machine cannot
    /// reserve the pool's address space (a `ulimit -v`), the runtime
    /// allocates on demand.
    pub pooling: Option<Pooling>,
    /// Compile epoch checks into guests, so that a run's
    /// [`crate::Limits::timeout`] stops a guest that computes past it.
    /// Default `true`. Off, a tight loop runs faster and a large module
    /// compiles faster (the figures: docs/performance.md), no ticker
    /// thread runs, and the timeout still ends every host call that waits
    /// (`poll_oneoff`, stdin), but a guest that only computes runs on: the
    /// embedder must stop it another way (`wasm-host run` ends its process).
    pub epoch_interruption: bool,
    /// WebAssembly proposals guests may use beyond those always on. Default
    /// none: a module that needs one is refused with
    /// [`Error::ProposalDisabled`]. Guests of a runtime with
    /// [`Proposal::Gc`], [`Proposal::Exceptions`] or [`Proposal::Threads`]
    /// allocate on demand: the pool holds neither GC heaps nor shared memories.
    pub proposals: BTreeSet<Proposal>,
}

/// Chained setters, one per setting, from [`RuntimeConfig::default`]: the
/// struct is `#[non_exhaustive]`, so that a new setting is not a breaking
/// change.
impl RuntimeConfig {
    /// Sets [`RuntimeConfig::max_wasm_stack`](#structfield.max_wasm_stack).
    pub fn max_wasm_stack(mut self, max_wasm_stack: usize) -> Self {
        self.max_wasm_stack = max_wasm_stack;
        self
    }

    /// Sets [`RuntimeConfig::cache`](#structfield.cache).
    pub fn cache(mut self, cache: CacheMode) -> Self {
        self.cache = cache;
        self
    }

    /// Sets [`RuntimeConfig::cache_key_dir`](#structfield.cache_key_dir).
    pub fn cache_key_dir(mut self, cache_key_dir: Option<PathBuf>) -> Self {
        self.cache_key_dir = cache_key_dir;
        self
    }

    /// Sets [`RuntimeConfig::cache_limits`](#structfield.cache_limits).
    pub fn cache_limits(mut self, cache_limits: CacheLimits) -> Self {
        self.cache_limits = cache_limits;
        self
    }

    /// Sets [`RuntimeConfig::compile_limits`](#structfield.compile_limits).
    pub fn compile_limits(mut self, compile_limits: CompileLimits) -> Self {
        self.compile_limits = compile_limits;
        self
    }

    /// Sets [`RuntimeConfig::pooling`](#structfield.pooling).
    pub fn pooling(mut self, pooling: Option<Pooling>) -> Self {
        self.pooling = pooling;
        self
    }

    /// Sets [`RuntimeConfig::epoch_interruption`](#structfield.epoch_interruption).
    pub fn epoch_interruption(mut self, epoch_interruption: bool) -> Self {
        self.epoch_interruption = epoch_interruption;
        self
    }

    /// Sets [`RuntimeConfig::proposals`](#structfield.proposals).
    pub fn proposals(mut self, proposals: impl IntoIterator<Item = Proposal>) -> Self {
        self.proposals = proposals.into_iter().collect();
        self
    }
}

/// Sizes for the pooling allocator: slots are reserved once and reused, so
/// instantiation costs no `mmap`. A guest that needs more than a slot holds,
/// or finds every slot taken, runs on demand instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pooling {
    /// How many core-module guests the pool holds at once.
    pub max_instances: u32,
    /// A slot's linear memory; a run whose [`crate::Limits::max_memory_bytes`]
    /// is larger runs on demand.
    pub max_memory_bytes: usize,
    /// A slot's tables; a run whose [`crate::Limits::max_table_elements`] is
    /// larger runs on demand.
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
            cache_key_dir: cache::key_dir_from_env(),
            cache_limits: CacheLimits::default(),
            compile_limits: CompileLimits::default(),
            pooling: Some(Pooling::default()),
            epoch_interruption: true,
            proposals: BTreeSet::new(),
        }
    }
}

/// Wasmtime engines set up for sandboxed guests, with the WASI preview 1
/// and `host` imports linked in.
///
/// Runs without a fuel budget use an engine that does not instrument code
/// for fuel (instrumentation slows a CPU-bound guest: docs/performance.md); the
/// first run that sets [`crate::Limits::fuel`] creates a second, metered
/// engine, and modules are compiled for it when such a run needs them.
/// Likewise core modules run in the pool of [`RuntimeConfig::pooling`], and
/// components, and any run the pool cannot hold, in an engine that
/// allocates on demand, made when first needed.
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

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct RuntimeInner {
    config: RuntimeConfig,
    /// Indexed by [`EngineKind::index`]: the default engine made with the
    /// runtime, the others when first needed. `None` is a pool that could
    /// not be reserved, whose runs go to the on-demand engine.
    flavours: [OnceLock<Option<Flavour>>; 4],
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
    fn of(limits: &Limits) -> Self {
        match limits.fuel {
            Some(_) => Metering::Fuel,
            None => Metering::Unmetered,
        }
    }
}

/// Which of a runtime's engines a run asks for: metered or not, and with
/// its core instances from the pool or allocated on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EngineKind {
    metering: Metering,
    pooled: bool,
}

impl EngineKind {
    /// The same metering, allocating on demand.
    pub(crate) fn unpooled(self) -> Self {
        Self { pooled: false, ..self }
    }

    pub(crate) fn is_pooled(self) -> bool {
        self.pooled
    }

    fn index(self) -> usize {
        self.metering as usize * 2 + usize::from(self.pooled)
    }
}

/// One engine, the linkers for it, and its key in the module cache.
pub(crate) struct Flavour {
    /// What this engine is: an engine asked for with a pool is made without
    /// one when the pool cannot be reserved.
    kind: EngineKind,
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<GuestState>,
    /// WASI 0.2 and 0.3 for components, made when the first component is linked.
    component_linker: OnceLock<component::Linker<GuestState>>,
    cache_key: [u8; 32],
}

impl Flavour {
    fn new(config: &RuntimeConfig, kind: EngineKind) -> Result<Self, Error> {
        let mut wasm = Config::new();
        // Timeouts interrupt the guest at the next epoch check; fuel counts
        // instructions, only for runs that ask for a deterministic budget.
        wasm.epoch_interruption(config.epoch_interruption)
            .consume_fuel(kind.metering == Metering::Fuel)
            .max_wasm_stack(config.max_wasm_stack)
            // Components run on a fiber of this size (see `crate::component`),
            // which must hold the whole wasm stack and the host calls beyond it.
            .async_stack_size(config.max_wasm_stack + ASYNC_STACK_MARGIN)
            // WASI 0.3 components lift and lower functions asynchronously.
            .wasm_component_model_async(true);
        proposals::configure(&mut wasm, &config.proposals);
        if let Some(pooling) = config.pooling.filter(|_| kind.pooled) {
            // Core modules only (components go to the on-demand engine), so
            // a slot is one instance of `Shape::CORE` and no fiber stacks
            // are reserved: core modules run on the caller's stack.
            let tables_per_module = crate::limits::Shape::CORE.tables as u32;
            let mut pool = PoolingAllocationConfig::new();
            pool.total_core_instances(pooling.max_instances)
                .total_memories(pooling.max_instances)
                .total_tables(pooling.max_instances.saturating_mul(tables_per_module))
                .total_stacks(0)
                .total_component_instances(0)
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
            kind,
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
    ///
    /// ```
    /// let mut config = host::RuntimeConfig::default();
    /// config.cache = host::CacheMode::InMemory;
    /// let runtime = host::Runtime::new(&config)?;
    /// let module = runtime.load_bytes("empty", r#"(module (func (export "_start")))"#)?;
    /// assert!(host::Sandbox::new().run(&module)?.success());
    /// # Ok::<(), host::Error>(())
    /// ```
    pub fn new(config: &RuntimeConfig) -> Result<Self, Error> {
        let mut config = config.clone();
        if config.proposals.iter().any(|p| p.needs_on_demand()) {
            config.pooling = None;
        }
        let runtime = Self {
            inner: Arc::new(RuntimeInner {
                config: config.clone(),
                flavours: Default::default(),
                cache: ModuleCache::new(
                    config.cache.clone(),
                    config.cache_key_dir.as_deref(),
                    config.cache_limits,
                ),
                compile_limits: config.compile_limits,
            }),
        };
        // The main engine now, so that a bad configuration is an error here
        // and the pool is reserved (or found impossible) once.
        runtime.flavour(runtime.main_kind())?;
        Ok(runtime)
    }

    /// The process-wide runtime with the default configuration: its
    /// engines shared by every run, as Wasmtime recommends.
    pub fn shared() -> &'static Runtime {
        static SHARED: OnceLock<Runtime> = OnceLock::new();
        SHARED
            .get_or_init(|| Runtime::new(&RuntimeConfig::default()).expect("the default engine configuration is valid"))
    }

    /// The engine of core modules' runs without a fuel budget, for
    /// embedders who need Wasmtime directly: it pools instances when the
    /// runtime does.
    pub fn engine(&self) -> &Engine {
        &self.flavour(self.main_kind()).expect("made with the runtime").engine
    }

    /// The engine made with the runtime: unmetered, pooled if configured so.
    fn main_kind(&self) -> EngineKind {
        EngineKind {
            metering: Metering::Unmetered,
            pooled: self.inner.config.pooling.is_some(),
        }
    }

    /// Where compiled modules are kept: the configured [`CacheMode`], except
    /// that a directory that could not be trusted leaves the cache
    /// [`CacheMode::InMemory`], and `OnDisk` carries the canonical directory.
    pub fn cache_mode(&self) -> &CacheMode {
        self.inner.cache.mode()
    }

    /// The directories no guest may be granted (see `ModuleCache::protected_dirs`).
    pub(crate) fn protected_dirs(&self) -> &[PathBuf] {
        self.inner.cache.protected_dirs()
    }

    /// True when guests are compiled with epoch checks, so that a timeout
    /// stops a guest that computes ([`RuntimeConfig::epoch_interruption`]).
    pub(crate) fn epoch_interruption(&self) -> bool {
        self.inner.config.epoch_interruption
    }

    /// The stack a thread running a guest needs: the whole wasm stack and
    /// the host calls beyond it (`crate::asynchronous`).
    pub(crate) fn guest_stack_size(&self) -> usize {
        self.inner.config.max_wasm_stack + ASYNC_STACK_MARGIN
    }

    /// What the compiled-module cache has done so far.
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.cache.stats()
    }

    /// The engine a run within `limits` asks for: metered if it has a fuel
    /// budget, pooled if the runtime pools and a slot holds what the limits
    /// allow.
    pub(crate) fn kind_for(&self, limits: &Limits) -> EngineKind {
        let fits = |pool: &Pooling| {
            limits.max_memory_bytes <= pool.max_memory_bytes && limits.max_table_elements <= pool.max_table_elements
        };
        EngineKind {
            metering: Metering::of(limits),
            pooled: self.inner.config.pooling.as_ref().is_some_and(fits),
        }
    }

    /// The engine and linkers of `kind`, made on first use; a pool that
    /// cannot be reserved gives the on-demand engine instead.
    fn flavour(&self, kind: EngineKind) -> Result<&Flavour, Error> {
        let slot = &self.inner.flavours[kind.index()];
        let made = match slot.get() {
            Some(made) => made,
            None => {
                let made = match Flavour::new(&self.inner.config, kind) {
                    Ok(flavour) => Some(flavour),
                    // Its address space could not be reserved (`ulimit -v`).
                    Err(_) if kind.pooled => None,
                    Err(error) => return Err(error),
                };
                slot.get_or_init(|| made)
            }
        };
        match made {
            Some(flavour) => Ok(flavour),
            None => self.flavour(kind.unpooled()),
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
        let max = self.inner.compile_limits.max_module_bytes;
        let (file, meta) = open_module(path)?;
        let cache = &self.inner.cache;
        let source = match cache.file_hash(&meta) {
            Some(hash) => ModuleSource {
                file: Some(path.to_owned()),
                name: name.clone(),
                max_bytes: max,
                bytes: OnceLock::new(),
                hash: OnceLock::from(hash),
            },
            None => ModuleSource::new(&name, read_module(file, path, &name, max)?, Some(path), max),
        };
        let module = self.load(&name, source, self.kind_for(limits))?;
        if module.source.bytes.get().is_some()
            && let Some(hash) = module.source.hash.get()
        {
            cache.remember_file(&meta, hash);
        }
        Ok(module)
    }

    /// Reads a module, binary or WAT text, from `reader` (such as stdin),
    /// at most one byte past [`CompileLimits::max_module_bytes`] (more is
    /// [`Error::ModuleTooLarge`]), and compiles it for runs within `limits`
    /// as [`Runtime::load_bytes_for`] does. `name` names it in errors.
    pub fn load_reader_for(&self, name: &str, reader: impl Read, limits: &Limits) -> Result<GuestModule, Error> {
        let max = self.inner.compile_limits.max_module_bytes;
        let bytes = binary(name, read_bounded(reader, Path::new(name), name, max)?)?;
        self.load(name, ModuleSource::new(name, bytes, None, max), self.kind_for(limits))
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
        let max = self.inner.compile_limits.max_module_bytes;
        self.load(name, ModuleSource::new(name, bytes, None, max), self.kind_for(limits))
    }

    fn load(&self, name: &str, source: ModuleSource, kind: EngineKind) -> Result<GuestModule, Error> {
        let module = GuestModule {
            name: name.into(),
            runtime: self.clone(),
            source: Arc::new(source),
            first: kind,
            code: Arc::default(),
        };
        module.code(kind)?;
        Ok(module)
    }
}

/// Opens the module file `path` for reading, refusing anything but a
/// regular file. Opened without waiting (a FIFO's
/// `open` would wait for a writer), then checked as opened: a FIFO or a
/// device (a link to `/dev/zero`) is refused before a byte is read.
fn open_module(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), Error> {
    let io = |source| Error::ReadModule {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(Error::ModuleNotAFile {
            path: path.to_owned(),
            found: file_kind(&meta.file_type()),
        });
    }
    Ok((file, meta))
}

/// What a file that is not a regular one is, for [`Error::ModuleNotAFile`].
fn file_kind(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() { "a directory" } else { "not a file" }
}

/// Reads the module file `file` (opened by [`open_module`] from `path`),
/// as a binary.
fn read_module(file: std::fs::File, path: &Path, name: &str, max: usize) -> Result<Bytes, Error> {
    binary(name, read_bounded(file, path, &path.display().to_string(), max)?)
}

/// Everything `reader` (the module `module`, read from `path`) gives, if
/// that is at most `max` bytes; it is read one byte past that at most (a
/// file may have grown since it was sized).
fn read_bounded(reader: impl Read, path: &Path, module: &str, max: usize) -> Result<Bytes, Error> {
    let mut bytes = Vec::new();
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::ReadModule {
            path: path.to_owned(),
            source,
        })?;
    match bytes.len() > max {
        true => Err(Error::ModuleTooLarge {
            module: module.to_owned(),
            max: max as u64,
        }),
        false => Ok(Bytes::from(bytes)),
    }
}

/// `bytes` as a binary: WAT text is parsed first, so a component written as
/// WAT is recognised as one and the cache only ever sees binaries.
fn binary(name: &str, bytes: Bytes) -> Result<Bytes, Error> {
    match as_text(&bytes) {
        Some(text) => Ok(Bytes::from(wat::parse_str(text).map_err(|mut e| {
            // `--> NAME:line:col` instead of `<anon>`.
            e.set_path(name);
            Error::InvalidModule {
                module: name.to_owned(),
                source: e.into(),
            }
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
    /// The most that is read from that file ([`CompileLimits::max_module_bytes`]).
    max_bytes: usize,
    bytes: OnceLock<Bytes>,
    hash: OnceLock<[u8; 32]>,
}

impl ModuleSource {
    fn new(name: &str, bytes: Bytes, file: Option<&Path>, max_bytes: usize) -> Self {
        Self {
            name: name.to_owned(),
            file: file.map(Path::to_owned),
            max_bytes,
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
        let (file, _) = open_module(path)?;
        let bytes = read_module(file, path, &self.name, self.max_bytes)?;
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
/// metered otherwise than the load was for (see [`Runtime::load_file_for`]),
/// or that the pool cannot hold, can have it compiled for its engine.
/// Cloning is cheap and clones share the compiled code.
#[derive(Clone)]
pub struct GuestModule {
    name: Arc<str>,
    runtime: Runtime,
    source: Arc<ModuleSource>,
    /// What the load compiled for.
    first: EngineKind,
    /// Indexed by [`EngineKind::index`] of the engine asked for: the code
    /// and the engine that holds it (the on-demand one for a component or
    /// a module the pool refused), found when a run first needs it.
    code: Arc<[OnceLock<(EngineKind, Code)>; 4]>,
}

impl fmt::Debug for GuestModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuestModule")
            .field("name", &self.name)
            .field("component", &self.is_component())
            .finish_non_exhaustive()
    }
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
        let (_, code) = self.code[self.first.index()]
            .get()
            .expect("the load compiled the code it was for");
        matches!(code, Code::Component { .. })
    }

    /// The runtime this module was compiled for.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The code for runs that ask for the engine `kind`, and the engine that
    /// holds it: compiled now (or taken from the cache) the first time.
    fn code(&self, kind: EngineKind) -> Result<(&Flavour, &Code), Error> {
        let slot = &self.code[kind.index()];
        if let Some((held_by, code)) = slot.get() {
            return Ok((self.runtime.flavour(*held_by)?, code));
        }
        let runtime = &self.runtime;
        let flavour = runtime.flavour(kind)?;
        let unpooled = || runtime.flavour(kind.unpooled()).map(|unpooled| &unpooled.engine);
        let engines = cache::Engines {
            first: &flavour.engine,
            pooled: flavour.kind.pooled,
            unpooled: &unpooled,
        };
        let compiled = runtime
            .inner
            .cache
            .load(
                &engines,
                &flavour.cache_key,
                &*self.source,
                &runtime.inner.compile_limits,
            )
            .map_err(|e| match e.downcast::<Error>() {
                // Reading the file again failed, or found it changed.
                Ok(error) => error,
                Err(e) => match e.downcast_ref::<compile::Exceeded>() {
                    Some(&exceeded) => Error::compile_limit(&self.name, exceeded),
                    None => self.invalid(e),
                },
            })?;
        let flavour = match Engine::same(compiled.engine(), &flavour.engine) {
            true => flavour,
            false => runtime.flavour(kind.unpooled())?,
        };
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
        let (_, code) = slot.get_or_init(|| (flavour.kind, code));
        Ok((flavour, code))
    }

    /// The engine that runs asking for `kind` are instantiated in.
    pub(crate) fn engine(&self, kind: EngineKind) -> Result<&Engine, Error> {
        Ok(&self.code(kind)?.0.engine)
    }

    /// The linker of that engine, for linking with a sandbox's own host functions.
    pub(crate) fn core_linker(&self, kind: EngineKind) -> Result<&Linker<GuestState>, Error> {
        Ok(&self.code(kind)?.0.linker)
    }

    /// The core module for `kind`, linked against the runtime's own
    /// imports (done once), or the first import nothing provides.
    pub(crate) fn linked_core(&self, kind: EngineKind) -> Result<&InstancePre<GuestState>, Error> {
        let (flavour, code) = self.code(kind)?;
        let (module, linked) = match code {
            Code::Core { module, linked } => (module, linked),
            Code::Component { .. } => return Err(self.wrong_kind("a core module")),
        };
        if let Some(pre) = linked.get() {
            return Ok(pre);
        }
        let pre = flavour
            .linker
            .instantiate_pre(module)
            .map_err(|e| self.link_error(module, &flavour.linker, e))?;
        Ok(linked.get_or_init(|| pre))
    }

    /// The component for `kind`, linked against WASI 0.2 and 0.3 (done once),
    /// or the import nothing provides.
    pub(crate) fn linked_component(&self, kind: EngineKind) -> Result<&component::InstancePre<GuestState>, Error> {
        let (flavour, code) = self.code(kind)?;
        let (component, linked) = match code {
            Code::Component { component, linked } => (component, linked),
            Code::Core { .. } => return Err(self.wrong_kind("a component")),
        };
        if let Some(pre) = linked.get() {
            return Ok(pre);
        }
        let pre = flavour
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
        kind: EngineKind,
        add: impl FnOnce(&mut component::Linker<GuestState>) -> wasmtime::Result<()>,
    ) -> Result<component::InstancePre<GuestState>, Error> {
        let (flavour, Code::Component { component, .. }) = self.code(kind)? else {
            return Err(self.wrong_kind("a component"));
        };
        let mut linker = flavour.component_linker()?.clone();
        linker.allow_shadowing(true);
        add(&mut linker).map_err(|e| Error::Instantiate {
            module: self.name.to_string(),
            source: e.context("registering a component function").into(),
        })?;
        linker
            .instantiate_pre(component)
            .map_err(|e| self.component_link_error(e))
    }

    /// The core module for `kind`, for linking with a sandbox's own
    /// host functions.
    pub(crate) fn core_module(&self, kind: EngineKind) -> Result<&Module, Error> {
        match self.code(kind)?.1 {
            Code::Core { module, .. } => Ok(module),
            Code::Component { .. } => Err(self.wrong_kind("a core module")),
        }
    }

    /// A module Wasmtime refused: named by the proposals it needs, when it
    /// is valid with them.
    fn invalid(&self, error: wasmtime::Error) -> Error {
        let enabled = &self.runtime.inner.config.proposals;
        let needed = cache::Source::bytes(&*self.source)
            .map(|bytes| proposals::needed(&bytes, enabled))
            .unwrap_or_default();
        match needed.is_empty() {
            true => Error::InvalidModule {
                module: self.name.to_string(),
                source: error.into(),
            },
            false => Error::ProposalDisabled {
                module: self.name.to_string(),
                proposals: needed,
            },
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
