//! `wasmtime run`'s `-W` and `-S` options on `wasm-host run`: each key
//! means the limit or grant it means under wasmtime, and any other key is
//! refused by name. (`-W fuel` and `-W max-memory-size` are beside their
//! native twins in run.rs; the proposals in proposals.rs.)

use std::process::{Output, Stdio};

use crate::run::{LOAD_ERROR, TIMEOUT, USAGE, assert_fails};
use crate::support::{self, text, wasm_host};

fn wat(dir: &tempfile::TempDir, name: &str, source: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, source).unwrap();
    path.to_str().unwrap().to_owned()
}

fn run_with_env(args: &[&str]) -> Output {
    wasm_host()
        .args(args)
        .env("WASM_HOST_TEST_INHERITED", "from the host")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn w_timeout_and_s_inherit_env_are_timeout_and_the_hosts_environment() {
    let echo = support::shared_test_file("conformance/wasi/args_env_echo.wat");
    let echo = echo.to_str().unwrap();
    let output = run_with_env(&["run", "-W", "timeout=2s", "-S", "inherit-env", echo]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout)
            .lines()
            .any(|line| line == "WASM_HOST_TEST_INHERITED=from the host"),
        "{}",
        text(&output.stdout)
    );
    // --env still decides the names it sets.
    let output = run_with_env(&[
        "run",
        "-S",
        "inherit-env",
        "--env",
        "WASM_HOST_TEST_INHERITED=mine",
        echo,
    ]);
    let stdout = text(&output.stdout);
    let values: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("WASM_HOST_TEST_INHERITED="))
        .collect();
    assert_eq!(values, ["WASM_HOST_TEST_INHERITED=mine"]);
    // Without it, nothing of the host's.
    let output = run_with_env(&["run", "-W", "timeout=2s", echo]);
    assert!(!text(&output.stdout).contains("WASM_HOST_TEST_INHERITED"));

    let dir = tempfile::tempdir().unwrap();
    let spin = wat(
        &dir,
        "spin.wat",
        r#"(module (func (export "_start") (loop $l (br $l))))"#,
    );
    let output = run_with_env(&["run", "-W", "timeout=1s", "-S", "inherit-env", &spin]);
    assert_fails(&output, TIMEOUT, &["spin.wat timed out after 1s"]);
    // A bare number is seconds, as wasmtime reads it.
    assert_fails(
        &run_with_env(&["run", "-W", "timeout=1", &spin]),
        TIMEOUT,
        &["after 1s"],
    );
}

#[test]
fn any_other_w_or_s_key_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let module = wat(&dir, "m.wat", r#"(module (func (export "_start")))"#);
    for (args, says) in [
        (["-W", "timeout=1s,simd"], "unknown -W option `simd`"),
        (["-S", "inherit-env,tcp"], "unknown -S option `tcp`"),
        (["-W", "fuel=lots"], "-W fuel"),
        (["-S", "cli=n"], "always provides"),
    ] {
        let output = run_with_env(&["run", args[0], args[1], &module]);
        assert_eq!(output.status.code(), Some(USAGE), "{args:?}");
        assert!(
            text(&output.stderr).contains(says),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
    // The keys that map to what wasm-host always does are accepted.
    let output = run_with_env(&["run", "-S", "cli,http=n", "-S", "inherit-network=n", &module]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_ne!(output.status.code(), Some(LOAD_ERROR));
}
