//! What every command-line test needs: the binary, its output as text,
//! and the small guests and files more than one test makes.

use std::io::Write;
use std::path::{Path, PathBuf};
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

/// A WASI command that opens `path` once, relative to the first granted
/// directory (descriptor 3), with `oflags` and `rights` (WASI's bits), and
/// exits with the errno: 0 when it could.
pub fn open_once_wat(path: &str, oflags: u16, rights: u64) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) {path:?})
  (func (export "_start")
    (call $proc_exit (call $path_open (i32.const 3) (i32.const 0) (i32.const 256) (i32.const {len})
      (i32.const {oflags}) (i64.const {rights}) (i64.const 0) (i32.const 0) (i32.const 16)))))"#,
        len = path.len(),
    )
}

/// Makes a FIFO at `path`, with nothing at either end.
#[cfg(unix)]
pub fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}
