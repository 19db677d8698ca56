//! The one error type of the library: every way a guest can fail to load,
//! link or be called, typed so that callers can match on it.

use std::borrow::Cow;
use std::path::PathBuf;

use crate::compile::{CompileLimit, Exceeded};
use crate::outcome::{Termination, Trap};

/// Why the host could not load, link or call a guest.
///
/// Each message says what failed at its own level; the error underneath
/// (the file system's, Wasmtime's) is its [`source`](std::error::Error::source),
/// so that a report that walks the chain (`anyhow`'s `{:#}`) shows each
/// cause once.
///
/// A guest that runs and then exits or traps is not an error of [`Sandbox::run`]
/// (that is a [`RunOutcome`]); these are the failures that stop a guest
/// from running at all, or a call into a library-style guest that did not
/// return.
///
/// [`Sandbox::run`]: crate::Sandbox::run
/// [`RunOutcome`]: crate::RunOutcome
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine could not be created with the configuration given.
    #[error("invalid runtime configuration")]
    Config {
        /// Wasmtime's explanation.
        #[source]
        source: Cause,
    },

    /// The module file could not be read.
    #[error("cannot read module {path}")]
    ReadModule {
        /// The file that was asked for.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },

    /// The module file is not a regular file (a FIFO, a device, a socket,
    /// a directory): refused before anything is read from it.
    #[error("cannot read module {path}: it is {found}, not a regular file")]
    ModuleNotAFile {
        /// The file that was asked for.
        path: PathBuf,
        /// What it is instead, such as "a FIFO".
        found: &'static str,
    },

    /// The module's file or stream holds more than
    /// [`crate::CompileLimits::max_module_bytes`]: refused after reading at
    /// most one byte past it.
    #[error("{module} is larger than {max} bytes, the module size limit")]
    ModuleTooLarge {
        /// The module's name (its file name, or the name given).
        module: String,
        /// The limit.
        max: u64,
    },

    /// The bytes are not a valid WebAssembly module (empty, truncated, wrong
    /// magic or version, failed validation).
    #[error("{module} is not a valid WebAssembly module")]
    InvalidModule {
        /// The module's name (usually its file name).
        module: String,
        /// Why: the WAT parser's or Wasmtime's error.
        #[source]
        source: Cause,
    },

    /// The module uses WebAssembly proposals the runtime does not enable
    /// ([`crate::RuntimeConfig::proposals`]).
    #[error("{module} uses the WebAssembly proposal {}, which is not enabled", names(.proposals))]
    ProposalDisabled {
        /// The module's name.
        module: String,
        /// Each proposal it needs.
        proposals: Vec<crate::Proposal>,
    },

    /// The module is past one of the runtime's [`crate::CompileLimits`]:
    /// refused before Cranelift saw it, or given up on when its compile
    /// took too long.
    #[error("{module} is past a compile limit: {limit} is {value}, at most {max}")]
    CompileLimit {
        /// The module's name.
        module: String,
        /// Which limit.
        limit: CompileLimit,
        /// What the module has; for time, how long was waited.
        value: u64,
        /// The limit's value.
        max: u64,
    },

    /// A component that serves HTTP (it exports `wasi:http/handler` or
    /// `wasi:http/incoming-handler`, not `wasi:cli/run`) was run as a
    /// command: serve it with [`crate::Sandbox::serve_http`] instead.
    #[error("{module} is an HTTP service, not a command: serve it (`wasm-host serve`)")]
    HttpService {
        /// The module's name.
        module: String,
    },

    /// Serving HTTP could not start or end: the listener could not be
    /// used, or the service's thread failed.
    #[error("cannot serve HTTP with {module}")]
    Serve {
        /// The module's name.
        module: String,
        /// Why.
        #[source]
        source: Cause,
    },

    /// A core module was given where only a component will do, or the
    /// other way round (such as [`crate::Sandbox::instantiate`] of a component).
    #[error("{module} is not {expected}")]
    WrongKind {
        /// The module's name.
        module: String,
        /// What was needed: "a core module" or "a component".
        expected: &'static str,
    },

    /// The module imports a function the host does not provide.
    #[error("{module} imports `{import_module}::{import_name}`, which this host does not provide")]
    UnknownImport {
        /// The module's name.
        module: String,
        /// The import's module namespace, e.g. `env`.
        import_module: String,
        /// The import's field name.
        import_name: String,
    },

    /// An export the host needs is missing.
    #[error("{module} does not export `{export}`")]
    MissingExport {
        /// The module's name.
        module: String,
        /// The export that was looked for.
        export: String,
    },

    /// A bare function name that more than one of a component's exported
    /// instances has: the caller must say which.
    #[error("{module} exports `{export}` more than once: name one of {}", candidates.join(", "))]
    AmbiguousExport {
        /// The module's name.
        module: String,
        /// The name that was looked for.
        export: String,
        /// The full names that match it.
        candidates: Vec<String>,
    },

    /// An export exists but its type is not the one asked for.
    #[error("export `{export}` of {module} has type {found}, not {expected}")]
    ExportSignature {
        /// The module's name.
        module: String,
        /// The export's name.
        export: String,
        /// The type the caller asked for.
        expected: String,
        /// The type the module declares.
        found: String,
    },

    /// A directory could not be granted (it does not exist, is not a
    /// directory, or is in `/proc`, the host process's own memory).
    #[error("cannot grant directory {host_path} to the guest")]
    Preopen {
        /// The host directory asked for.
        host_path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },

    /// A directory grant is, contains or lies inside a directory that
    /// holds the compiled-module cache's secret key or entries this user's
    /// runs trust, whatever this runtime's cache mode: a guest that could
    /// read the key or write an entry could plant native code for later runs.
    #[error(
        "refusing to grant {host_path} to the guest: it is, contains or lies inside {protected_dir}, \
         which holds the compiled-module cache or its key, trusted as native code outside the sandbox \
         (grant a directory beside it)"
    )]
    GrantCoversCache {
        /// The host directory asked for.
        host_path: PathBuf,
        /// The key's or a cache's directory it overlaps.
        protected_dir: PathBuf,
    },

    /// Instantiation failed for another reason (an imported type that does
    /// not match, an initial memory above the limit, a start function that trapped).
    #[error("cannot instantiate {module}")]
    Instantiate {
        /// The module's name.
        module: String,
        /// Wasmtime's explanation.
        #[source]
        source: Cause,
    },

    /// The bindings a component was linked with
    /// ([`crate::Sandbox::component_bindings`]) need data of a type the
    /// sandbox does not hold ([`crate::Sandbox::data`]): refused before
    /// the component is instantiated.
    #[error("the bindings {module} is linked with need data the sandbox does not hold")]
    MissingData {
        /// The module's name.
        module: String,
        /// The type needed, and the one held, if any.
        #[source]
        source: DataError,
    },

    /// A call into the guest trapped.
    #[error("{module} {trap}")]
    Trap {
        /// The module's name.
        module: String,
        /// What kind of trap, and Wasmtime's message.
        trap: Trap,
    },

    /// A call into the guest ended with `proc_exit` instead of returning.
    #[error("{module} called proc_exit({code})")]
    Exit {
        /// The module's name.
        module: String,
        /// The code the guest passed to `proc_exit`.
        code: i32,
    },

    /// An instance whose async call was cancelled (its future dropped
    /// while the guest ran): the guest was stopped and its store freed,
    /// so the instance can no longer be used.
    #[error("{module} was stopped when an async call into it was cancelled")]
    Cancelled {
        /// The module's name.
        module: String,
    },

    /// A host-side read or write of guest memory fell outside it.
    #[error("guest memory access out of bounds: {len} bytes at offset {offset}, memory is {size} bytes")]
    MemoryOutOfBounds {
        /// Start of the access.
        offset: u64,
        /// Length of the access.
        len: u64,
        /// Current size of the guest's memory.
        size: u64,
    },
}

/// The embedder's data a host function or bindings asked for is not there:
/// the sandbox was given none ([`Sandbox::data`](crate::Sandbox::data)), or
/// data of another type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", match held {
    Some(held) => format!("the sandbox's data is a `{held}`, not the `{wanted}` asked for"),
    None => format!("the sandbox was given no data (a `{wanted}` was asked for)"),
})]
pub struct DataError {
    pub(crate) wanted: &'static str,
    pub(crate) held: Option<&'static str>,
}

impl DataError {
    /// The type asked for, as `std::any::type_name` names it.
    pub fn wanted(&self) -> &'static str {
        self.wanted
    }

    /// The type of the data the sandbox holds, `None` when it holds none.
    pub fn held(&self) -> Option<&'static str> {
        self.held
    }
}

/// The error underneath an [`Error`]: Wasmtime's or the WAT parser's, its
/// own causes reachable through [`std::error::Error::source`].
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The proposals' names, as the command line spells them: `gc, threads`.
fn names(proposals: &[crate::Proposal]) -> String {
    proposals.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
}

impl Error {
    /// The module this error is about, when the message already names it
    /// (its name, or the file asked for); `None` for errors of the runtime,
    /// of a grant or of a memory access, which a front end should prefix
    /// with the module itself. Matched exhaustively, so a new variant must
    /// choose.
    pub fn module(&self) -> Option<Cow<'_, str>> {
        match self {
            Error::ReadModule { path, .. } | Error::ModuleNotAFile { path, .. } => Some(path.to_string_lossy()),
            Error::InvalidModule { module, .. }
            | Error::ModuleTooLarge { module, .. }
            | Error::CompileLimit { module, .. }
            | Error::ProposalDisabled { module, .. }
            | Error::WrongKind { module, .. }
            | Error::HttpService { module }
            | Error::Serve { module, .. }
            | Error::UnknownImport { module, .. }
            | Error::MissingExport { module, .. }
            | Error::AmbiguousExport { module, .. }
            | Error::ExportSignature { module, .. }
            | Error::Instantiate { module, .. }
            | Error::MissingData { module, .. }
            | Error::Trap { module, .. }
            | Error::Exit { module, .. }
            | Error::Cancelled { module } => Some(Cow::Borrowed(module)),
            Error::Config { .. }
            | Error::Preopen { .. }
            | Error::GrantCoversCache { .. }
            | Error::MemoryOutOfBounds { .. } => None,
        }
    }

    pub(crate) fn compile_limit(module: &str, exceeded: Exceeded) -> Self {
        Error::CompileLimit {
            module: module.to_owned(),
            limit: exceeded.limit,
            value: exceeded.value,
            max: exceeded.max,
        }
    }

    /// Instantiating `module` failed, as `source` says.
    pub(crate) fn instantiate(module: &str, source: wasmtime::Error) -> Self {
        Error::Instantiate {
            module: module.to_owned(),
            source: source.into(),
        }
    }

    /// `module` is not the kind of guest the operation needs.
    pub(crate) fn wrong_kind(module: &str, expected: &'static str) -> Self {
        Error::WrongKind {
            module: module.to_owned(),
            expected,
        }
    }

    /// `module` has no export `export`, or none of the kind needed.
    pub(crate) fn missing_export(module: &str, export: &str) -> Self {
        Error::MissingExport {
            module: module.to_owned(),
            export: export.to_owned(),
        }
    }

    /// The export `export` of `module` is `found`, not what the call
    /// `expected`.
    pub(crate) fn export_signature(module: &str, export: &str, expected: String, found: String) -> Self {
        Error::ExportSignature {
            module: module.to_owned(),
            export: export.to_owned(),
            expected,
            found,
        }
    }

    /// The module file `path` could not be read.
    pub(crate) fn read_module(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::ReadModule {
            path: path.to_owned(),
            source,
        }
    }

    /// `module` is no valid WebAssembly, as `source` says.
    pub(crate) fn invalid_module(module: &str, source: impl Into<Cause>) -> Self {
        Error::InvalidModule {
            module: module.to_owned(),
            source: source.into(),
        }
    }

    /// The error a call into a library-style guest returns when the guest
    /// ended there instead of returning.
    pub(crate) fn ended(module: &str, termination: Termination) -> Self {
        let module = module.to_owned();
        match termination {
            Termination::Exited(code) => Error::Exit { module, code },
            Termination::Trapped(trap) => Error::Trap { module, trap },
        }
    }
}
