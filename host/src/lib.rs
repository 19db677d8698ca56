//! Run WebAssembly guests under Wasmtime with exactly the capabilities you
//! grant, and find out precisely how they ended.
//!
//! - [`Runtime`]: one per process ([`Runtime::shared`]), compiling
//!   modules into [`GuestModule`]s through a compiled-module cache
//!   ([`CacheMode`]) so each module is compiled once.
//! - [`Sandbox`]: what a guest is granted (stdin, environment, arguments,
//!   directories, host functions) and its [`Limits`]. Nothing by default.
//! - [`RunOutcome`]: exit code, captured output, `host.log` messages, or a
//!   [`Trap`] classified as a [`TrapKind`].
//! - [`GuestInstance`]: typed calls into library-style guests, and
//!   bounds-checked access to their memory; [`ComponentInstance`]: typed
//!   calls into a component's exports.
//!
//! A guest is a core module (`wasm32-wasip1`) or a component
//! (`wasm32-wasip2`): both load the same way, run under the same
//! [`Sandbox`] and end in the same [`RunOutcome`].
//!
//! ```
//! use host::{Runtime, Sandbox, Termination};
//! let module = Runtime::shared().load_bytes("hello", r#"
//!     (module
//!       (import "host" "log" (func $log (param i32 i32)))
//!       (memory (export "memory") 1)
//!       (data (i32.const 0) "hello")
//!       (func (export "_start") (call $log (i32.const 0) (i32.const 5))))"#)?;
//! let outcome = Sandbox::new().run(&module)?;
//! assert_eq!(outcome.termination, Termination::Exited(0));
//! assert_eq!(outcome.host_log, ["hello"]);
//! # Ok::<(), host::Error>(())
//! ```

//! # From async code
//!
//! The API is synchronous: a call returns when the guest is done. It may be
//! called from anywhere, a Tokio runtime's tasks included: on a
//! multi-thread runtime the guest runs on the caller's worker after
//! `tokio::task::block_in_place` has handed its other tasks to another
//! thread; inside a current-thread runtime (or a task of one) it runs on a
//! thread of its own, one started per call, while the caller's thread
//! waits. Either way the caller's thread is busy until the guest ends, so
//! an async server should call from `tokio::task::spawn_blocking`, where it
//! costs nothing more. The runtime found must have its time driver enabled
//! (`#[tokio::main]` does), and for components that use sockets its I/O
//! driver. Tokio forbids `block_in_place` in a `LocalSet` on a
//! multi-thread runtime: call from `spawn_blocking` there.

#![warn(missing_docs, missing_debug_implementations)]

// The modules form layers, each using only those below it (checked by
// xtask/tests/tidy.rs): outcome, limits, compile, network, text; error; memory; deadline, output,
// stdin, grant; outgoing; state; open; imports, cache; runtime; instance, component; sandbox;
// http; asynchronous; fuzzing.
mod asynchronous;
mod cache;
mod compile;
mod component;
mod deadline;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod grant;
mod http;
mod imports;
mod instance;
mod limits;
mod lookup;
mod memory;
mod network;
mod open;
mod outcome;
mod outgoing;
mod output;
mod proposals;
mod runtime;
mod sandbox;
mod state;
mod stdin;
pub mod text;

pub use cache::{
    CACHE_DIR_ENV, CACHE_ENV, CACHE_MAX_MIB_ENV, CacheLimits, CacheMode, CacheStats, KEY_DIR_ENV, key_dir_from_env,
};
pub use compile::{CompileLimit, CompileLimits};
pub use component::ComponentInstance;
pub use error::{Cause, Error};
pub use http::{HttpService, ServeOptions};
pub use instance::GuestInstance;
pub use limits::Limits;
pub use network::{AddrRule, ParseAddrRuleError};
pub use outcome::{RunOutcome, Termination, Trap, TrapKind};
pub use proposals::{Proposal, UnknownProposal};
pub use runtime::{GuestModule, Pooling, Runtime, RuntimeConfig};
pub use sandbox::{DirAccess, Sandbox};
pub use state::GuestState;
// The versions whose types this API takes and returns (`Val`, `Caller`,
// `StoreContextMut`, `FuncType`, `WasiView`): an embedder names them through
// these instead of pinning the same versions by hand.
pub use {wasmtime, wasmtime_wasi};
