//! The runtime: the Wasmtime engines of a process, the linkers every guest
//! is instantiated against, and the compiled-module cache; the modules
//! compiled for them are `crate::guest_module`'s.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::thread;

use wasmtime::component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Linker, PoolingAllocationConfig};

use crate::cache::{self, CacheLimits, CacheMode, CacheStats, ModuleCache};
use crate::compile::CompileLimits;
use crate::deadline::EPOCH_TICK;
use crate::imports;
use crate::proposals::{self, Proposal};
use crate::setters::setters;
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
    /// cache's entries where there is no kernel keyring to keep it (see
    /// docs/security.md), never inside a cache directory; `None` then keeps
    /// the cache in memory. No guest is granted it, whatever the mode.
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
    /// How many of a trapped guest's innermost frames its
    /// [`crate::Trap::backtrace`] keeps (0: none). Default 20, as
    /// Wasmtime's: capturing them costs a trap time and memory in
    /// proportion (a stack overflow has thousands).
    pub backtrace_frames: usize,
}

setters!(
/// Chained setters, one per setting, from [`RuntimeConfig::default`]: the
/// struct is `#[non_exhaustive]`, so that a new setting is not a breaking
/// change.
RuntimeConfig {
    max_wasm_stack: usize,
    cache: CacheMode,
    cache_key_dir: Option<PathBuf>,
    cache_limits: CacheLimits,
    compile_limits: CompileLimits,
    pooling: Option<Pooling>,
    epoch_interruption: bool,
    backtrace_frames: usize,
});

impl RuntimeConfig {
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
    /// How much of a slot's memory (and of each of its tables) stays
    /// resident when its instance ends, reset in place instead of given
    /// back to the kernel (Linux): the next instance in the slot takes no
    /// page faults there. It costs that memory for every
    /// slot once used, so it suits many short runs of the same module
    /// (`wasm-host test` keeps 4 MiB). 0, the default, gives it all back.
    pub keep_resident_bytes: usize,
}

impl Default for Pooling {
    fn default() -> Self {
        let limits = crate::Limits::default();
        Self {
            max_instances: 256,
            max_memory_bytes: limits.max_memory_bytes,
            max_table_elements: limits.max_table_elements,
            keep_resident_bytes: 0,
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
            backtrace_frames: 20,
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
    pub(crate) inner: Arc<RuntimeInner>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct RuntimeInner {
    pub(crate) config: RuntimeConfig,
    /// Indexed by [`EngineKind::index`]: the default engine made with the
    /// runtime, the others when first needed. `None` is a pool that could
    /// not be reserved, whose runs go to the on-demand engine.
    flavours: [OnceLock<Option<Flavour>>; 4],
    pub(crate) cache: ModuleCache,
    pub(crate) compile_limits: CompileLimits,
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

    pub(crate) fn index(self) -> usize {
        self.metering as usize * 2 + usize::from(self.pooled)
    }
}

/// One engine, the linkers for it, and its key in the module cache.
pub(crate) struct Flavour {
    /// What this engine is: an engine asked for with a pool is made without
    /// one when the pool cannot be reserved.
    pub(crate) kind: EngineKind,
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<GuestState>,
    /// WASI 0.2 and 0.3 for components, made when the first component is linked.
    component_linker: OnceLock<component::Linker<GuestState>>,
    pub(crate) cache_key: [u8; 32],
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
            .wasm_component_model_async(true)
            .wasm_backtrace_max_frames(std::num::NonZeroUsize::new(config.backtrace_frames));
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
            // Reset in place by copying and zeroing every kept page: not by
            // PAGEMAP_SCAN, whose scan Wasmtime 48 asks only for pages in
            // memory, so that a dirty page swapped out would keep an earlier
            // instance's data (wasmtime PR #14357).
            pool.linear_memory_keep_resident(pooling.keep_resident_bytes)
                .table_keep_resident(pooling.keep_resident_bytes);
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

    pub(crate) fn component_linker(&self) -> Result<&component::Linker<GuestState>, Error> {
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
    pub(crate) fn flavour(&self, kind: EngineKind) -> Result<&Flavour, Error> {
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
