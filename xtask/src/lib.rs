//! Project automation shared by the `xtask` binary and the host's tests:
//! where the project lives, how the wasm guests are found and built, and
//! how the conformance suite and the benchmarks' large module are built.

pub mod guests;
pub mod large_module;
pub mod suite;

use std::path::{Path, PathBuf};

/// The root of the repository (the directory holding the workspace `Cargo.toml`).
pub fn project_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the project root")
}

/// Cargo's target directory for the host workspace: `$CARGO_TARGET_DIR` if
/// set, else `target/` at the project root.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => std::path::absolute(dir).unwrap_or_else(|_| project_root().join("target")),
        None => project_root().join("target"),
    }
}
