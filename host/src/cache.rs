//! The compiled-module cache: compile each module once per engine
//! configuration, then reuse the machine code, in memory for the life of the
//! process and on disk across processes.
//!
//! Cranelift is the slow part of running a guest (hundreds of milliseconds
//! for a 100 KB Rust guest, against microseconds to instantiate it), and a
//! test suite that runs each test in its own process would otherwise pay it
//! in every process. Entries are keyed by a SHA-256 of the engine's
//! compilation settings and the module's bytes, and each file carries a
//! SHA-256 of its own payload: a corrupt, truncated or stale entry is
//! detected, discarded and rebuilt, never handed to Wasmtime unchecked.
//!
//! Both levels are bounded ([`CacheLimits`]): a long-running embedder that
//! loads ever new modules keeps the most recently used ones, in memory by
//! count and on disk by total size (a file's modification time is its last
//! use, so every process sharing the directory agrees on the order).

use std::collections::HashMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

/// Marks a cache file as ours, in this layout: magic, SHA-256 of the payload, payload.
const MAGIC: &[u8; 8] = b"WHCACHE1";
const HEADER_LEN: usize = MAGIC.len() + 32;

/// Set to `off` to disable the cache, or `memory` to keep it in memory only.
pub const CACHE_ENV: &str = "WASM_HOST_CACHE";
/// Overrides the directory of the on-disk cache.
pub const CACHE_DIR_ENV: &str = "WASM_HOST_CACHE_DIR";
/// Overrides [`CacheLimits::disk_bytes`], in MiB.
pub const CACHE_MAX_MIB_ENV: &str = "WASM_HOST_CACHE_MAX_MIB";

/// The name every cache entry's file ends with.
const ENTRY_EXTENSION: &str = "cwasm";

/// Where compiled modules are kept between loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheMode {
    /// Compile on every load.
    Disabled,
    /// Reuse compiled modules within this process only.
    InMemory,
    /// Reuse them within the process and across processes, through files in this directory.
    OnDisk(PathBuf),
}

impl CacheMode {
    /// The mode the environment asks for: `WASM_HOST_CACHE=off` or
    /// `=memory`, else on disk in `WASM_HOST_CACHE_DIR`, else in
    /// `$CARGO_TARGET_DIR/wasm-host-cache`, else in this project's
    /// `target/wasm-host-cache` when built from a checkout that still
    /// exists, else in `$XDG_CACHE_HOME/wasm-host` or `~/.cache/wasm-host`.
    pub fn from_env() -> Self {
        match std::env::var(CACHE_ENV).as_deref() {
            Ok("off" | "0" | "false") => return CacheMode::Disabled,
            Ok("memory") => return CacheMode::InMemory,
            _ => {}
        }
        let env_dir = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let checkout_target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
        let dir = env_dir(CACHE_DIR_ENV)
            .or_else(|| env_dir("CARGO_TARGET_DIR").map(|t| t.join("wasm-host-cache")))
            .or_else(|| {
                checkout_target
                    .is_dir()
                    .then(|| checkout_target.join("wasm-host-cache"))
            })
            .or_else(|| env_dir("XDG_CACHE_HOME").map(|c| c.join("wasm-host")))
            .or_else(|| env_dir("HOME").map(|h| h.join(".cache").join("wasm-host")));
        dir.map_or(CacheMode::InMemory, CacheMode::OnDisk)
    }
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
    /// The entry just written is always kept, even when larger.
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
}

pub(crate) struct ModuleCache {
    mode: CacheMode,
    limits: CacheLimits,
    engine_key: [u8; 32],
    modules: Mutex<HashMap<[u8; 32], InMemory>>,
    /// Orders uses of in-memory entries, for eviction.
    clock: AtomicU64,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    compiled: AtomicU64,
    discarded: AtomicU64,
    evicted: AtomicU64,
}

struct InMemory {
    module: Module,
    last_used: u64,
}

impl ModuleCache {
    pub(crate) fn new(engine: &Engine, mode: CacheMode, limits: CacheLimits) -> Self {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            mode,
            limits,
            engine_key: hasher.0.finalize().into(),
            modules: Mutex::default(),
            clock: AtomicU64::new(0),
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            compiled: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            compiled: self.compiled.load(Ordering::Relaxed),
            discarded: self.discarded.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }

    /// The compiled form of the binary module `bytes`: from memory, from
    /// disk, or compiled now and remembered.
    pub(crate) fn load(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Module> {
        if self.mode == CacheMode::Disabled {
            self.compiled.fetch_add(1, Ordering::Relaxed);
            return Module::from_binary(engine, bytes);
        }
        let key: [u8; 32] = Sha256::new()
            .chain_update(self.engine_key)
            .chain_update(bytes)
            .finalize()
            .into();
        if let Some(entry) = self.lock().get_mut(&key) {
            entry.last_used = self.tick();
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(entry.module.clone());
        }
        let file = match &self.mode {
            CacheMode::OnDisk(dir) => Some(dir.join(format!("{}.{ENTRY_EXTENSION}", hex(&key)))),
            _ => None,
        };
        let module = match file.as_deref().and_then(|file| self.read(engine, file)) {
            Some(module) => module,
            None => {
                self.compiled.fetch_add(1, Ordering::Relaxed);
                let module = Module::from_binary(engine, bytes)?;
                // A cache that cannot be written only costs speed.
                if let Some(file) = &file
                    && write(file, &module).is_ok()
                {
                    self.trim_disk(file);
                }
                module
            }
        };
        self.remember(key, module.clone());
        Ok(module)
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    /// Keeps `module` in memory, dropping the least recently used entries
    /// past [`CacheLimits::memory_modules`].
    fn remember(&self, key: [u8; 32], module: Module) {
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

    /// Deletes the least recently used entries of `written`'s directory
    /// until they fit in [`CacheLimits::disk_bytes`], never `written` itself.
    /// Another process may be trimming too: a file already gone is skipped.
    fn trim_disk(&self, written: &Path) {
        let Some(Ok(dir)) = written.parent().map(fs::read_dir) else {
            return;
        };
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = dir
            .flatten()
            .filter(|entry| entry.path().extension().is_some_and(|e| e == ENTRY_EXTENSION))
            .filter_map(|entry| {
                let meta = entry.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), entry.path()))
            })
            .collect();
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        entries.sort();
        for (_, len, path) in entries {
            if total <= self.limits.disk_bytes {
                break;
            }
            if path != written && fs::remove_file(&path).is_ok() {
                total -= len;
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A verified entry from disk, or `None` (deleting the file) when it is
    /// missing, corrupt or was compiled for another engine.
    fn read(&self, engine: &Engine, path: &Path) -> Option<Module> {
        let mut file = fs::File::open(path).ok()?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).ok()?;
        let verified = data.len() >= HEADER_LEN
            && &data[..MAGIC.len()] == MAGIC
            && data[MAGIC.len()..HEADER_LEN] == Sha256::digest(&data[HEADER_LEN..])[..];
        // SAFETY: the payload is byte for byte what `Module::serialize` wrote
        // into this file (its checksum matches), and Wasmtime itself rejects
        // artifacts from another version or configuration.
        let module = verified
            .then(|| unsafe { Module::deserialize(engine, &data[HEADER_LEN..]) }.ok())
            .flatten();
        match module {
            Some(module) => {
                self.disk_hits.fetch_add(1, Ordering::Relaxed);
                // The modification time records the last use, for `trim_disk`.
                let _ = file.set_modified(SystemTime::now());
                Some(module)
            }
            None => {
                self.discarded.fetch_add(1, Ordering::Relaxed);
                let _ = fs::remove_file(path);
                None
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], InMemory>> {
        self.modules.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes the entry under a temporary name and renames it into place, so a
/// concurrent reader in another process sees a whole file or none.
fn write(file: &Path, module: &Module) -> wasmtime::Result<()> {
    let payload = module.serialize()?;
    let dir = file.parent().expect("cache files live in a directory");
    fs::create_dir_all(dir)?;
    let temp = dir.join(format!(".{}.{}.tmp", std::process::id(), unique()));
    let mut out = fs::File::create(&temp)?;
    out.write_all(MAGIC)?;
    out.write_all(&Sha256::digest(&payload))?;
    out.write_all(&payload)?;
    drop(out);
    fs::rename(&temp, file).inspect_err(|_| {
        let _ = fs::remove_file(&temp);
    })?;
    Ok(())
}

fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds `Hash` implementations into SHA-256, for a key that is stable
/// across processes (unlike `DefaultHasher`'s).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("a SHA-256 digest has 32 bytes"))
    }
}
