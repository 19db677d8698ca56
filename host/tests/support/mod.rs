//! Set-up shared by the integration tests: loading guests and fixtures.
#![allow(dead_code)] // each test file uses only some of these

use std::path::PathBuf;

use host::{GuestModule, Runtime};

/// The guest crate `name` from `guests/`, built (once per test process) and compiled.
pub fn guest(name: &str) -> GuestModule {
    let path = xtask::guests::artifact(name).unwrap_or_else(|e| panic!("building guest {name}: {e:#}"));
    Runtime::shared()
        .load_file(&path)
        .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
}

/// A module written inline as WAT.
pub fn wat(name: &str, source: &str) -> GuestModule {
    Runtime::shared()
        .load_bytes(name, source)
        .unwrap_or_else(|e| panic!("compiling {name}: {e}"))
}

/// A file under the shared `tests/` folder at the project root.
pub fn shared_test_file(relative: &str) -> PathBuf {
    xtask::project_root().join("tests").join(relative)
}

/// A WAT fixture from `tests/fixtures/`, compiled.
pub fn fixture(file_name: &str) -> GuestModule {
    Runtime::shared()
        .load_file(shared_test_file(&format!("fixtures/{file_name}")))
        .unwrap_or_else(|e| panic!("loading fixture {file_name}: {e}"))
}
