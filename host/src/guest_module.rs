//! A compiled guest ([`GuestModule`]): read from a file, a reader or
//! bytes, compiled for the engine a run asks for (or taken from the
//! cache), and kept for any number of runs.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use wasmtime::component::{self, Component};
use wasmtime::{Engine, InstancePre, Module};

use crate::cache::{self, Compiled};
use crate::compile;
use crate::proposals;
use crate::runtime::{EngineKind, Flavour};
use crate::state::GuestState;
use crate::{Error, Limits, Runtime};

impl Runtime {
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

    /// Opens a module file as [`Runtime::load_file_for`] opens it, for a
    /// caller that looks through its bytes (the returned reader gives at
    /// most [`crate::CompileLimits::max_module_bytes`]): a regular file
    /// only, [`Error::ModuleNotAFile`] for a FIFO or a device, before a
    /// byte is read.
    pub fn open_module_file(&self, path: impl AsRef<Path>) -> Result<std::io::Take<std::fs::File>, Error> {
        let (file, _) = open_module(path.as_ref())?;
        Ok(file.take(self.inner.compile_limits.max_module_bytes as u64))
    }

    /// Reads a module, binary or WAT text, from `reader` (such as stdin),
    /// at most one byte past [`crate::CompileLimits::max_module_bytes`] (more is
    /// [`Error::ModuleTooLarge`]), and compiles it for runs within `limits`
    /// as [`Runtime::load_bytes_for`] does. `name` names it in errors.
    pub fn load_reader_for(&self, name: &str, reader: impl Read, limits: &Limits) -> Result<GuestModule, Error> {
        let max = self.inner.compile_limits.max_module_bytes;
        let bytes = binary(name, read_bounded(reader, 0, Path::new(name), name, max)?)?;
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
    let io = |source| Error::read_module(path, source);
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
/// as a binary, into a buffer of the file's size (a large module is read
/// without the copies of a growing one).
fn read_module(file: std::fs::File, path: &Path, name: &str, max: usize) -> Result<Bytes, Error> {
    let size = file.metadata().map_or(0, |meta| meta.len());
    binary(name, read_bounded(file, size, path, &path.display().to_string(), max)?)
}

/// Everything `reader` (the module `module`, read from `path`, `size`
/// bytes long as far as is known) gives, if that is at most `max` bytes;
/// it is read one byte past that at most (a file may have grown since it
/// was sized).
fn read_bounded(reader: impl Read, size: u64, path: &Path, module: &str, max: usize) -> Result<Bytes, Error> {
    let mut bytes = Vec::with_capacity(size.min(max as u64 + 1) as usize);
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::read_module(path, source))?;
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
            Error::invalid_module(name, e)
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
    /// The most that is read from that file ([`crate::CompileLimits::max_module_bytes`]).
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
            let changed = std::io::Error::other("the file changed since it was loaded");
            return Err(Error::read_module(path, changed).into());
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
pub(crate) enum Code {
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
    pub(crate) fn code(&self, kind: EngineKind) -> Result<(&Flavour, &Code), Error> {
        let slot = &self.code[kind.index()];
        if let Some((held_by, code)) = slot.get() {
            return Ok((self.runtime.flavour(*held_by)?, code));
        }
        let runtime = &self.runtime;
        let flavour = runtime.flavour(kind)?;
        let unpooled = || runtime.flavour(kind.unpooled()).map(|unpooled| &unpooled.engine);
        let engines = cache::Engines {
            first: &flavour.engine,
            pooled: flavour.kind.is_pooled(),
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

    /// is valid with them.
    fn invalid(&self, error: wasmtime::Error) -> Error {
        let enabled = &self.runtime.inner.config.proposals;
        let needed = cache::Source::bytes(&*self.source)
            .map(|bytes| proposals::needed(&bytes, enabled))
            .unwrap_or_default();
        match needed.is_empty() {
            true => Error::invalid_module(&self.name, error),
            false => Error::ProposalDisabled {
                module: self.name.to_string(),
                proposals: needed,
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
