//! What every command-line test needs: the binary, and its output as text.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The `wasm-host` binary cargo built for these tests.
pub fn wasm_host() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wasm-host"))
}

/// Output bytes as text (invalid UTF-8 replaced).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `wasm-host ARGS` with `stdin` as its standard input.
pub fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = wasm_host()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// A file under the shared `tests/` folder at the project root.
pub fn shared_test_file(relative: &str) -> PathBuf {
    xtask::project_root().join("tests").join(relative)
}
