//! The compiled-module cache: compile each module once per engine
//! configuration, then reuse the machine code, in memory for the life of the
//! process and on disk across processes.
//!
//! Cranelift is the slow part of running a guest (hundreds of milliseconds
//! for a 100 KB Rust guest, against microseconds to instantiate it), and a
//! test suite that runs each test in its own process would otherwise pay it
//! in every process. Entries are keyed by a BLAKE3 hash of the engine's
//! compilation settings and the module's bytes. A disk entry is native code
//! that runs outside the sandbox, so the disk level ([`disk`]) trusts only a
//! directory the running user alone can write and entries authenticated
//! with that user's secret key, kept in the kernel's keyring (where there
//! is none, in a directory of its own, never a cache's); anything else is
//! discarded and rebuilt, never handed to Wasmtime. No guest is granted
//! the key's directory or a cache directory ([`ModuleCache::protected_dirs`]).
//!
//! Both levels are bounded ([`CacheLimits`]): a long-running embedder that
//! loads ever new modules keeps the most recently used ones, in memory by
//! count and on disk by total size (a file's modification time is its last
//! use, so every process sharing the directory agrees on the order).

mod disk;

use bytes::Bytes;
use std::collections::HashMap;
use std::fs::Metadata;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::component::Component;
use wasmtime::{Engine, Module, Precompiled};

use disk::{DiskCache, Entry, Verified};

use crate::compile::{CompileLimits, Exceeded};

/// Set to `off` to disable the cache, or `memory` to keep it in memory only.
pub const CACHE_ENV: &str = "WASM_HOST_CACHE";
/// Overrides the directory of the on-disk cache.
pub const CACHE_DIR_ENV: &str = "WASM_HOST_CACHE_DIR";
/// Overrides [`CacheLimits::disk_bytes`], in MiB.
pub const CACHE_MAX_MIB_ENV: &str = "WASM_HOST_CACHE_MAX_MIB";
/// Overrides the directory of the cache's secret key file, used where there
/// is no kernel keyring (see [`key_dir_from_env`]).
pub const KEY_DIR_ENV: &str = "WASM_HOST_KEY_DIR";

/// Where compiled modules are kept between loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheMode {
    /// Compile on every load.
    Disabled,
    /// Reuse compiled modules within this process only.
    InMemory,
    /// Reuse them within the process and across processes, through files in
    /// this directory. It must be owned by the running user and not writable
    /// by group or others (it is created so if missing); otherwise the cache
    /// stays in memory, with a warning on stderr.
    OnDisk(PathBuf),
}

impl CacheMode {
    /// The mode the environment asks for: `WASM_HOST_CACHE=off` or
    /// `=memory`, else on disk in `WASM_HOST_CACHE_DIR`, else in
    /// `$XDG_CACHE_HOME/wasm-host`, else in `~/.cache/wasm-host`, else in memory.
    pub fn from_env() -> Self {
        match std::env::var(CACHE_ENV).as_deref() {
            Ok("off" | "0" | "false") => return CacheMode::Disabled,
            Ok("memory") => return CacheMode::InMemory,
            _ => {}
        }
        let dir = env_dir(CACHE_DIR_ENV).or_else(default_cache_dir);
        dir.map_or(CacheMode::InMemory, CacheMode::OnDisk)
    }
}

/// The absolute directory the environment variable `name` names; relative
/// ones are ignored, as the XDG specification asks of its base directories.
fn env_dir(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
}

/// `$XDG_CACHE_HOME/wasm-host`, else `~/.cache/wasm-host`.
fn default_cache_dir() -> Option<PathBuf> {
    let [xdg, home] = default_cache_dirs();
    xdg.or(home)
}

/// The default cache directory as `XDG_CACHE_HOME` places it, and as `HOME`
/// does: a run without that variable trusts the second.
fn default_cache_dirs() -> [Option<PathBuf>; 2] {
    [
        env_dir("XDG_CACHE_HOME").map(|c| c.join("wasm-host")),
        env_dir("HOME").map(|h| h.join(".cache").join("wasm-host")),
    ]
}

/// Where the on-disk cache's secret key file lives, apart from every cache
/// directory, where there is no kernel keyring to keep the key
/// (docs/security.md): `WASM_HOST_KEY_DIR`, else
/// `$XDG_STATE_HOME/wasm-host`, else `~/.local/state/wasm-host`; `None`
/// without any of them (the cache then stays in memory, unless the
/// keyring holds the key).
pub fn key_dir_from_env() -> Option<PathBuf> {
    let [xdg, home] = default_key_dirs();
    env_dir(KEY_DIR_ENV).or(xdg).or(home)
}

/// The key's default directory as `XDG_STATE_HOME` places it, and as `HOME`
/// does: a run without `WASM_HOST_KEY_DIR` or that variable keeps its key
/// in the second.
fn default_key_dirs() -> [Option<PathBuf>; 2] {
    [
        env_dir("XDG_STATE_HOME").map(|s| s.join("wasm-host")),
        env_dir("HOME").map(|h| h.join(".local").join("state").join("wasm-host")),
    ]
}

/// How much the compiled-module cache keeps; past a limit, the least
/// recently used entries are dropped (and compiled again if asked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Compiled modules kept in memory. Default 256. A module a
    /// [`crate::GuestModule`] still holds stays alive either way.
    pub memory_modules: usize,
    /// Total size of the entries in the on-disk cache's directory, shared by
    /// every process using it. Default 1 GiB, or `WASM_HOST_CACHE_MAX_MIB`.
    /// A process counts what it writes; when its count passes the bound, the
    /// least recently used entries are deleted down to 90% of it (so one
    /// directory scan pays for many writes). The entry just written is
    /// always kept, even when larger.
    pub disk_bytes: u64,
}

impl Default for CacheLimits {
    fn default() -> Self {
        let disk_mib = std::env::var(CACHE_MAX_MIB_ENV)
            .ok()
            .and_then(|mib| mib.trim().parse::<u64>().ok())
            .unwrap_or(1024);
        Self {
            memory_modules: 256,
            disk_bytes: disk_mib.saturating_mul(1024 * 1024),
        }
    }
}

/// What the cache did since the runtime was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Loads answered from memory.
    pub memory_hits: u64,
    /// Loads answered from a file on disk (no compilation).
    pub disk_hits: u64,
    /// Loads that ran the compiler.
    pub compiled: u64,
    /// Disk entries found corrupt or stale, deleted and rebuilt.
    pub discarded: u64,
    /// Entries dropped to stay within the [`CacheLimits`], from memory or disk.
    pub evicted: u64,
    /// Module files found unchanged since their content hash was recorded,
    /// so neither read nor hashed (`Runtime::load_file`).
    pub unread_files: u64,
}

pub(crate) struct ModuleCache {
    /// The mode in force: `OnDisk` (with the canonical directory) only when
    /// the directory was trusted.
    mode: CacheMode,
    /// What no guest may be granted, whatever the mode (see [`Self::protected_dirs`]).
    protected: Vec<PathBuf>,
    disk: Option<DiskCache>,
    limits: CacheLimits,
    /// By key and whether the load asked for a pooled engine: code a pool
    /// holds and code for the on-demand engine are different objects.
    modules: Mutex<HashMap<([u8; 32], bool), InMemory>>,
    /// Orders uses of in-memory entries, for eviction.
    clock: AtomicU64,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    compiled: AtomicU64,
    discarded: AtomicU64,
    evicted: AtomicU64,
    unread_files: AtomicU64,
}

struct InMemory {
    module: Compiled,
    last_used: u64,
}

/// Compiled code of either kind: a core module or a component.
#[derive(Clone)]
pub(crate) enum Compiled {
    Module(Module),
    Component(Component),
}

impl Compiled {
    /// Compiles `bytes`, a core module or a component as its header says,
    /// if they are within `limits`, giving up after `limits.timeout` (see
    /// [`crate::compile::within`]), into the engine `engines` gives it.
    /// Only a compile is checked: code already compiled costs nothing to
    /// load, so a cache hit skips the check.
    fn compile(engines: &Engines, bytes: &Bytes, limits: &CompileLimits) -> wasmtime::Result<Self> {
        crate::compile::check(bytes, limits)?;
        let component = is_component(bytes);
        engines.place(component, |engine| {
            let (engine, bytes) = (engine.clone(), bytes.clone());
            crate::compile::within(limits.timeout, move || {
                Ok(if component {
                    Compiled::Component(Component::from_binary(&engine, &bytes)?)
                } else {
                    Compiled::Module(Module::from_binary(&engine, &bytes)?)
                })
            })
        })
    }

    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        match self {
            Compiled::Module(module) => module.serialize(),
            Compiled::Component(component) => component.serialize(),
        }
    }

    /// Wasmtime copies the payload into memory of its own.
    ///
    /// # Safety
    /// `entry`'s payload must be what [`Compiled::serialize`] wrote.
    unsafe fn deserialize(engines: &Engines, entry: &Verified) -> wasmtime::Result<Self> {
        let payload = entry.payload();
        let component = Engine::detect_precompiled(payload) == Some(Precompiled::Component);
        engines.place(component, |engine| {
            // SAFETY: as the caller promises; the kind is the one it was written as.
            unsafe {
                Ok(if component {
                    Compiled::Component(Component::deserialize(engine, payload)?)
                } else {
                    Compiled::Module(Module::deserialize(engine, payload)?)
                })
            }
        })
    }

    /// The engine this code is for.
    pub(crate) fn engine(&self) -> &Engine {
        match self {
            Compiled::Module(module) => module.engine(),
            Compiled::Component(component) => component.engine(),
        }
    }
}

/// The engines a load may put code in: core modules in `first`; components,
/// when `first` pools instances, and core modules it refuses (a pool
/// refuses a memory or table larger than its slots), in the one `unpooled`
/// gives, made when first needed. Pooling does not change the code
/// compiled, so both share a disk entry.
pub(crate) struct Engines<'a> {
    pub(crate) first: &'a Engine,
    pub(crate) pooled: bool,
    pub(crate) unpooled: &'a dyn Fn() -> Result<&'a Engine, crate::Error>,
}

impl Engines<'_> {
    /// What `make` gives for the engine of a component (when `component`)
    /// or of a core module, or for the unpooled engine if a pooled one
    /// refused the module. A module past a compile limit is not tried
    /// twice, and one the unpooled engine refuses too gets its refusal.
    fn place(
        &self,
        component: bool,
        make: impl Fn(&Engine) -> wasmtime::Result<Compiled>,
    ) -> wasmtime::Result<Compiled> {
        if !self.pooled {
            return make(self.first);
        }
        if component {
            return make((self.unpooled)()?);
        }
        match make(self.first) {
            Err(error) if !error.is::<Exceeded>() => make((self.unpooled)()?),
            placed => placed,
        }
    }
}

/// A module as the cache sees it: its content hash, and its bytes, needed
/// only to compile it.
pub(crate) trait Source {
    /// [`content_hash`] of the bytes.
    fn hash(&self) -> wasmtime::Result<[u8; 32]>;
    /// The binary module or component.
    fn bytes(&self) -> wasmtime::Result<Bytes>;
}

/// What names a module's bytes in the cache's keys.
pub(crate) fn content_hash(bytes: &[u8]) -> [u8; 32] {
    blake3::hash(bytes).into()
}

/// A file's identity as far as its content goes (device, inode, size,
/// modification and status-change times), or `None` for a file changed
/// within the last two seconds or on a platform without these.
#[cfg(unix)]
fn identity(meta: &Metadata) -> Option<[u8; 32]> {
    use std::os::unix::fs::MetadataExt;
    use std::time::{Duration, SystemTime};
    /// How long a file must have been left alone before its metadata stands
    /// for its content: file times come from a coarse clock (a few ms), so a
    /// file written twice within one tick keeps its times. Past this, any
    /// change moves its status-change time (which no user can set back).
    const SETTLED: Duration = Duration::from_secs(2);
    let changed = SystemTime::UNIX_EPOCH + Duration::new(u64::try_from(meta.ctime()).ok()?, meta.ctime_nsec() as u32);
    if SystemTime::now().duration_since(changed).ok()? < SETTLED {
        return None;
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"wasm-host file identity 1");
    for field in [meta.dev(), meta.ino(), meta.size()] {
        hasher.update(&field.to_le_bytes());
    }
    for (seconds, nanos) in [(meta.mtime(), meta.mtime_nsec()), (meta.ctime(), meta.ctime_nsec())] {
        hasher.update(&seconds.to_le_bytes()).update(&nanos.to_le_bytes());
    }
    Some(hasher.finalize().into())
}

#[cfg(not(unix))]
fn identity(_: &Metadata) -> Option<[u8; 32]> {
    None
}

/// Components share the `\0asm` magic with core modules; their version
/// field has layer 1 where a core module has 0.
fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && &bytes[..4] == b"\0asm" && bytes[6..8] == [1, 0]
}

impl ModuleCache {
    /// A cache in `mode`, its key in `key_dir`; a directory that cannot be
    /// trusted leaves it in memory, saying why on stderr.
    pub(crate) fn new(mode: CacheMode, key_dir: Option<&Path>, limits: CacheLimits) -> Self {
        // The defaults however this run's environment moves them: the
        // user's other runs, without those variables, use them.
        let [xdg_key, home_key] = default_key_dirs();
        let [xdg_cache, home_cache] = default_cache_dirs();
        let mut protected: Vec<PathBuf> = [
            key_dir.map(Path::to_owned),
            key_dir_from_env(),
            xdg_key,
            home_key,
            match &mode {
                CacheMode::OnDisk(dir) => Some(dir.clone()),
                _ => None,
            },
            env_dir(CACHE_DIR_ENV),
            xdg_cache,
            home_cache,
        ]
        .into_iter()
        .flatten()
        .collect();
        protected.sort();
        protected.dedup();
        let (mode, disk) = match mode {
            CacheMode::OnDisk(dir) => match DiskCache::open(&dir, key_dir, Some(disk::USER_KEY), limits.disk_bytes) {
                Ok(disk) => (CacheMode::OnDisk(disk.dir().to_owned()), Some(disk)),
                Err(reason) => {
                    eprintln!("warning: compiled-module cache kept in memory only: {reason}");
                    (CacheMode::InMemory, None)
                }
            },
            mode => (mode, None),
        };
        Self {
            mode,
            protected,
            disk,
            limits,
            modules: Mutex::default(),
            clock: AtomicU64::new(0),
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            compiled: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            unread_files: AtomicU64::new(0),
        }
    }

    /// The mode in force (see [`crate::Runtime::cache_mode`]).
    pub(crate) fn mode(&self) -> &CacheMode {
        &self.mode
    }

    /// The directories no guest may be granted, nor one containing them or
    /// inside them, in every mode: this runtime's key directory and the
    /// one the environment names, and every cache directory whose entries
    /// this user's runs trust (this runtime's, `WASM_HOST_CACHE_DIR`'s, the
    /// default one), the defaults both as `XDG_*_HOME` and as `HOME` place
    /// them, whatever overrides this run. A run that keeps its cache in memory still protects
    /// the key and the caches other runs use.
    pub(crate) fn protected_dirs(&self) -> &[PathBuf] {
        &self.protected
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            compiled: self.compiled.load(Ordering::Relaxed),
            discarded: self.discarded.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            unread_files: self.unread_files.load(Ordering::Relaxed),
        }
    }

    /// The compiled form of the binary module or component `source` for
    /// `engine`, whose [`engine_key`] is `engine_key`: from memory, from
    /// disk, or compiled now (within `limits`) and remembered. The source's
    /// bytes are read only for a compile.
    pub(crate) fn load(
        &self,
        engines: &Engines,
        engine_key: &[u8; 32],
        source: &dyn Source,
        limits: &CompileLimits,
    ) -> wasmtime::Result<Compiled> {
        if self.mode == CacheMode::Disabled {
            self.compiled.fetch_add(1, Ordering::Relaxed);
            return Compiled::compile(engines, &source.bytes()?, limits);
        }
        let key: [u8; 32] = blake3::Hasher::new()
            .update(engine_key)
            .update(&source.hash()?)
            .finalize()
            .into();
        if let Some(module) = self.memory_hit(&key, engines) {
            return Ok(module);
        }
        let module = match self.disk.as_ref().and_then(|disk| self.read(engines, disk, &key)) {
            Some(module) => module,
            None => {
                self.compiled.fetch_add(1, Ordering::Relaxed);
                let module = Compiled::compile(engines, &source.bytes()?, limits)?;
                if let Some(disk) = &self.disk {
                    // A cache that cannot be written only costs speed.
                    let evicted = module.serialize().map(|payload| disk.write(&key, &payload));
                    if let Ok(Ok(evicted)) = evicted {
                        self.evicted.fetch_add(evicted, Ordering::Relaxed);
                    }
                }
                module
            }
        };
        self.remember((key, engines.pooled), module.clone());
        Ok(module)
    }

    /// The code kept in memory for `key` and `engines`: what a load that
    /// asked the same of the pool left, or for an unpooled load, code a
    /// pooled one put in the unpooled engine (a component, a module larger
    /// than a slot).
    fn memory_hit(&self, key: &[u8; 32], engines: &Engines) -> Option<Compiled> {
        let mut modules = self.lock();
        let exact = (*key, engines.pooled);
        let found = if modules.contains_key(&exact) {
            exact
        } else {
            (*key, true)
        };
        let entry = modules.get_mut(&found)?;
        if found != exact && !Engine::same(entry.module.engine(), engines.first) {
            return None;
        }
        entry.last_used = self.tick();
        self.memory_hits.fetch_add(1, Ordering::Relaxed);
        Some(entry.module.clone())
    }

    /// The content hash of the file whose metadata is `meta`, if it was
    /// recorded ([`ModuleCache::remember_file`]) while the file was as it is
    /// now: its bytes need not be read (nor hashed) to find its code.
    pub(crate) fn file_hash(&self, meta: &Metadata) -> Option<[u8; 32]> {
        let hash = self.disk.as_ref()?.read_alias(&identity(meta)?)?;
        self.unread_files.fetch_add(1, Ordering::Relaxed);
        Some(hash)
    }

    /// Records that the file whose metadata is `meta` holds the module whose
    /// content hash is `hash`, unless it changed too recently to be told
    /// from a later change by its metadata.
    pub(crate) fn remember_file(&self, meta: &Metadata, hash: &[u8; 32]) {
        if let (Some(disk), Some(identity)) = (&self.disk, identity(meta)) {
            // A cache that cannot be written only costs speed.
            if let Ok(evicted) = disk.write_alias(&identity, hash) {
                self.evicted.fetch_add(evicted, Ordering::Relaxed);
            }
        }
    }

    /// The entry for `key` from disk, or `None` when there is none or it was
    /// rejected (deleted and counted as discarded).
    fn read(&self, engines: &Engines, disk: &DiskCache, key: &[u8; 32]) -> Option<Compiled> {
        let entry = match disk.read(key) {
            Entry::Missing => return None,
            Entry::Rejected => {
                self.discarded.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            Entry::Verified(entry) => entry,
        };
        // SAFETY: the payload is what `Compiled::serialize` wrote under this
        // key: its MAC is keyed with a secret no guest can read, checked
        // over a copy in memory that no later write to the file changes.
        // Wasmtime itself rejects artifacts from another version or
        // configuration.
        match unsafe { Compiled::deserialize(engines, &entry) } {
            Ok(module) => {
                self.disk_hits.fetch_add(1, Ordering::Relaxed);
                Some(module)
            }
            Err(_) => {
                self.discarded.fetch_add(1, Ordering::Relaxed);
                disk.remove(key);
                None
            }
        }
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    /// Keeps `module` in memory, dropping the least recently used entries
    /// past [`CacheLimits::memory_modules`].
    fn remember(&self, key: ([u8; 32], bool), module: Compiled) {
        let mut modules = self.lock();
        let last_used = self.tick();
        modules.insert(key, InMemory { module, last_used });
        while modules.len() > self.limits.memory_modules {
            let oldest = *modules
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(key, _)| key)
                .expect("the map is not empty");
            modules.remove(&oldest);
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<([u8; 32], bool), InMemory>> {
        self.modules.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What sets apart the code `engine` compiles (its version and every
/// compilation setting, fuel instrumentation included), as part of the keys
/// of the modules compiled for it.
pub(crate) fn engine_key(engine: &Engine) -> [u8; 32] {
    let mut hasher = StableHasher(blake3::Hasher::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize().into()
}

/// Feeds `Hash` implementations into BLAKE3, for a key that is stable
/// across processes (unlike `DefaultHasher`'s).
struct StableHasher(blake3::Hasher);

impl Hasher for StableHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.finalize();
        u64::from_le_bytes(digest.as_bytes()[..8].try_into().expect("a BLAKE3 digest has 32 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use wasmtime::Config;

    use super::*;

    /// A module's bytes as their own source.
    impl Source for Bytes {
        fn hash(&self) -> wasmtime::Result<[u8; 32]> {
            Ok(content_hash(self))
        }

        fn bytes(&self) -> wasmtime::Result<Bytes> {
            Ok(self.clone())
        }
    }

    /// Which engines `place` asks `make` for, in turn: a module refused by
    /// a pooled engine for any reason but a compile limit is tried again
    /// unpooled; one past a limit is not (a second compile would wait out
    /// the compile timeout twice); a component goes unpooled at once.
    #[test]
    fn place_retries_unpooled_only_what_the_pool_refused() {
        let (pooled, unpooled) = (Engine::default(), Engine::default());
        let unpooled_engine = || Ok(&unpooled);
        let engines = Engines {
            first: &pooled,
            pooled: true,
            unpooled: &unpooled_engine,
        };
        let asked = |component: bool, refusal: fn() -> wasmtime::Error| {
            let tried = std::cell::RefCell::new(Vec::new());
            let placed = engines.place(component, |engine| {
                tried.borrow_mut().push(Engine::same(engine, &pooled));
                Err(refusal())
            });
            let Err(error) = placed else {
                panic!("every engine refused it")
            };
            (tried.into_inner(), error)
        };
        let over_a_limit = || {
            Exceeded {
                limit: crate::CompileLimit::TimeMillis,
                value: 50,
                max: 50,
            }
            .into()
        };
        let (tried, error) = asked(false, over_a_limit);
        assert_eq!(tried, [true], "past a compile limit: tried once, pooled");
        assert!(error.is::<Exceeded>());
        let (tried, _) = asked(false, || wasmtime::format_err!("the pool's slots are too small"));
        assert_eq!(tried, [true, false], "refused by the pool: tried again unpooled");
        let (tried, _) = asked(true, over_a_limit);
        assert_eq!(tried, [false], "a component: unpooled at once");
    }

    /// The runtime's two engines differ in fuel instrumentation only.
    #[test]
    fn an_entry_compiled_under_one_configuration_is_never_served_to_another() {
        let dir = tempfile::tempdir().unwrap();
        let engine = |fuel: bool| Engine::new(Config::new().consume_fuel(fuel)).unwrap();
        let key_dir = tempfile::tempdir().unwrap();
        let cache = || {
            ModuleCache::new(
                CacheMode::OnDisk(dir.path().to_owned()),
                Some(key_dir.path()),
                CacheLimits::default(),
            )
        };
        let module = Bytes::from(wat::parse_str("(module (func (export \"f\") (result i32) i32.const 7))").unwrap());
        let (fuelled, plain) = (engine(true), engine(false));
        let load = |cache: &ModuleCache, engine: &Engine| {
            let unpooled = || Ok(engine);
            let engines = Engines {
                first: engine,
                pooled: false,
                unpooled: &unpooled,
            };
            cache
                .load(&engines, &engine_key(engine), &module, &CompileLimits::default())
                .unwrap();
        };
        load(&cache(), &fuelled);

        let second = cache();
        load(&second, &plain);
        let compiled_fresh = CacheStats {
            compiled: 1,
            ..CacheStats::default()
        };
        assert_eq!(
            second.stats(),
            compiled_fresh,
            "compiled for its own settings: neither a disk hit nor a discarded entry of the other's"
        );
        for engine in [&fuelled, &plain] {
            let fresh = cache();
            load(&fresh, engine);
            assert_eq!(fresh.stats().disk_hits, 1, "each configuration keeps its own entry");
        }
    }

    /// An authentic entry Wasmtime refuses is deleted at once, not left for
    /// the next load to refuse again, even when no new entry replaces it
    /// (here the compile that follows is over its limits).
    #[test]
    fn an_entry_wasmtime_refuses_is_deleted_even_when_no_new_one_replaces_it() {
        let (dir, key_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let cache = ModuleCache::new(
            CacheMode::OnDisk(dir.path().to_owned()),
            Some(key_dir.path()),
            CacheLimits::default(),
        );
        let engine = Engine::default();
        let module = Bytes::from(wat::parse_str("(module (func (export \"f\") (result i32) i32.const 7))").unwrap());
        let key: [u8; 32] = blake3::Hasher::new()
            .update(&engine_key(&engine))
            .update(&Source::hash(&module).unwrap())
            .finalize()
            .into();
        let disk = cache.disk.as_ref().expect("a disk cache");
        disk.write(&key, b"authentic, but no module").unwrap();

        let unpooled = || Ok(&engine);
        let engines = Engines {
            first: &engine,
            pooled: false,
            unpooled: &unpooled,
        };
        let too_tight = CompileLimits {
            max_function_body_bytes: 1,
            ..CompileLimits::default()
        };
        assert!(cache.load(&engines, &engine_key(&engine), &module, &too_tight).is_err());
        assert_eq!(cache.stats().discarded, 1);
        assert!(matches!(disk.read(&key), Entry::Missing), "the entry is deleted");
    }
}
