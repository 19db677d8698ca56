//! The host's integration tests: one module per scenario, all linked into one
//! test binary. Each binary links all of Wasmtime and Cranelift; a binary
//! per scenario took most of `target/` and of the link time
//! (docs/performance.md, *A small build*).
//!
//! Run one scenario with `cargo test -p host --test all csv_processor`.

mod api;
mod async_api;
mod async_context;
mod blocking_calls;
#[cfg(unix)]
mod cache_trust;
mod compile_limits;
mod components;
mod concurrency;
mod config_reader;
mod csv_processor;
mod errors;
mod exit_codes;
mod file_access;
mod fuzz_property;
mod host_imports;
mod hostile;
mod http_service;
mod large_module;
mod limits;
mod live_stdio;
mod malformed_modules;
mod memory_bounds;
mod module_cache;
mod network;
mod plugin;
mod pooling;
mod primes;
mod proposals;
mod string_processor;
mod support;
mod wat_add;
