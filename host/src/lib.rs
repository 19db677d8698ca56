//! Run WebAssembly guests under Wasmtime with exactly the capabilities you
//! grant, and find out precisely how they ended.
//!
//! - [`Runtime`]: one engine per process ([`Runtime::shared`]), compiling
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

#![warn(missing_docs)]

// The modules form layers, each using only those below it (checked by
// xtask/tests/tidy.rs): outcome, limits, compile, network; error; memory; deadline, output,
// stdin; outgoing; state; open; imports, cache; runtime; instance, component; sandbox;
// http; fuzzing.
mod cache;
mod compile;
mod component;
mod deadline;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
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
mod runtime;
mod sandbox;
mod state;
mod stdin;

pub use cache::{CACHE_DIR_ENV, CACHE_ENV, CACHE_MAX_MIB_ENV, CacheLimits, CacheMode, CacheStats};
pub use compile::{CompileLimit, CompileLimits};
pub use component::ComponentInstance;
pub use error::{Cause, Error};
pub use http::{HttpService, ServeOptions};
pub use instance::GuestInstance;
pub use limits::Limits;
pub use network::{AddrRule, ParseAddrRuleError};
pub use outcome::{RunOutcome, Termination, Trap, TrapKind};
pub use runtime::{GuestModule, Pooling, Runtime, RuntimeConfig};
pub use sandbox::{DirAccess, Sandbox};
pub use state::GuestState;
