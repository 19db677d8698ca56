//! Run WebAssembly guests under Wasmtime with exactly the capabilities you
//! grant, and find out precisely how they ended.
//!
//! - [`Runtime`]: one per process ([`Runtime::shared`]), compiling
//!   modules into [`GuestModule`]s through a compiled-module cache
//!   ([`CacheMode`]) so each module is compiled once.
//! - [`Sandbox`]: what a guest is granted (stdin, environment, arguments,
//!   directories, host functions) and its [`Limits`]. Nothing by default.
//!   The embedder's own data for each run ([`Sandbox::data`]) is what its
//!   host functions and `bindgen!` bindings read ([`GuestState::data`]).
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
//! Each entry point has an async form that awaits the same work under the
//! same deadline: [`Sandbox::run_async`], [`Sandbox::instantiate_async`],
//! [`Sandbox::instantiate_component_async`], [`GuestInstance::call_async`],
//! [`ComponentInstance::call_async`],
//! [`ComponentInstance::call_bindings_async`] and [`HttpService::shutdown_async`]
//! ([`Sandbox::serve_http`] itself returns at once: the service runs on
//! threads of its own). Each runs the guest on a thread of its own, started
//! when the future is first polled, so no executor thread waits on a guest;
//! the futures are `Send`, need no multi-thread runtime (nor any runtime:
//! any executor will do), and those of `Sandbox` own what they need, so
//! they may be spawned. The cost is a thread started per future: for many
//! short calls into one instance, the sync API called from
//! `tokio::task::spawn_blocking` costs less.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), host::Error> {
//! use host::{Runtime, Sandbox};
//! let module = Runtime::shared().load_bytes("empty", r#"(module (func (export "_start")))"#)?;
//! let outcome = Sandbox::new().run_async(&module).await?;
//! assert!(outcome.success());
//! # Ok(())
//! # }
//! ```
//!
//! Dropping a future cancels its guest: its deadline ends at once, so it
//! stops at its next check (an epoch tick, 10 ms, while it computes; at
//! once in `poll_oneoff`, within 50 ms reading a live stdin; a host
//! function of the embedder's own is not interrupted), then its thread
//! ends and its store is dropped, giving back its memory, pool slot and
//! descriptors. An instance whose call was cancelled is gone: it answers
//! [`Error::Cancelled`]. A computing guest is stopped only by a runtime
//! with [`epoch_interruption`](RuntimeConfig#structfield.epoch_interruption) (the default).
//!
//! The sync API may be called from anywhere too, a Tokio runtime's tasks
//! included: on a multi-thread runtime the guest runs on the caller's
//! worker after `tokio::task::block_in_place` has handed its other tasks to
//! another thread; inside a current-thread runtime (or a task of one) it
//! runs on a thread of its own, one started per call, while the caller's
//! thread waits. Either way the caller's thread is busy until the guest
//! ends. The runtime found must have its time driver enabled
//! (`#[tokio::main]` does), and for components that use sockets its I/O
//! driver. Tokio forbids `block_in_place` in a `LocalSet` on a
//! multi-thread runtime: use the async forms there.

#![warn(missing_docs, missing_debug_implementations)]

// The modules form layers, each using only those below it (checked by
// xtask/tests/tidy.rs): setters, text; outcome, limits, compile, network; error; memory;
// deadline, output, stdin, grant; outgoing; state; open; imports, cache; runtime; guest_module;
// linking; instance, component; sandbox; launch; http; asynchronous; fuzzing.
mod asynchronous;
mod cache;
mod compile;
mod component;
mod deadline;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod grant;
mod guest_module;
mod http;
mod imports;
mod instance;
mod launch;
mod limits;
mod linking;
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
mod setters;
mod state;
mod stdin;
pub mod text;

pub use cache::{
    CACHE_DIR_ENV, CACHE_ENV, CACHE_MAX_MIB_ENV, CacheLimits, CacheMode, CacheStats, KEY_DIR_ENV, key_dir_from_env,
};
pub use compile::{CompileLimit, CompileLimits};
pub use component::ComponentInstance;
pub use error::{Cause, DataError, Error};
pub use guest_module::GuestModule;
pub use http::{HttpService, ServeOptions};
pub use instance::GuestInstance;
pub use limits::Limits;
pub use network::{AddrRule, ParseAddrRuleError};
pub use outcome::{RunOutcome, Termination, Trap, TrapKind};
pub use proposals::{Proposal, UnknownProposal};
pub use runtime::{Pooling, Runtime, RuntimeConfig};
pub use sandbox::{DirAccess, Sandbox};
pub use state::GuestState;
// The versions whose types this API takes and returns (`Val`, `Caller`,
// `StoreContextMut`, `FuncType`, `WasiView`): an embedder names them through
// these instead of pinning the same versions by hand.
pub use {wasmtime, wasmtime_wasi};
