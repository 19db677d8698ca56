//! The `wasm-host` command line, driven as a user would: one test binary
//! with a module per subcommand.
//!
//! Run one with `cargo test -p wasm-host --test cli run::`.

mod completions;
mod components;
mod conformance;
mod invoke;
mod junit_schema;
mod proposals;
mod run;
#[cfg(unix)]
mod serve;
mod support;
mod test_runner;
mod wasmtime_options;
