//! What every command-line test needs: the binary, and its output as text.

use std::path::PathBuf;
use std::process::Command;

/// The `wasm-host` binary cargo built for these tests.
pub fn wasm_host() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wasm-host"))
}

/// Output bytes as text (invalid UTF-8 replaced).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A file under the shared `tests/` folder at the project root.
pub fn shared_test_file(relative: &str) -> PathBuf {
    xtask::project_root().join("tests").join(relative)
}
