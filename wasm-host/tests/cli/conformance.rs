//! `wasm-host conformance`: the project's own suite passes; a wrong
//! expectation is a failure with a reason that says what differed; filters,
//! skip lists, reports, clean-up, shared directories and the legacy adapter
//! mode behave as `--help` says.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use tempfile::TempDir;

use crate::support::{text, wasm_host};

/// The project's suites, freshly built into a temporary folder of their own.
struct BuiltSuites {
    _dir: TempDir,
    wasi: PathBuf,
    guests: PathBuf,
}

fn build_suites() -> BuiltSuites {
    let dir = tempfile::tempdir().unwrap();
    let built = xtask::suite::build_into(dir.path()).unwrap();
    let find = |name: &str| built.iter().find(|p| p.ends_with(name)).unwrap().clone();
    BuiltSuites {
        wasi: find("wasi"),
        guests: find("guests"),
        _dir: dir,
    }
}

fn conformance(args: &[&str], dirs: &[&Path]) -> Output {
    wasm_host().arg("conformance").args(args).args(dirs).output().unwrap()
}

fn count_tests(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "wasm"))
        .count()
}

fn last_line(output: &Output) -> String {
    text(&output.stdout).lines().last().unwrap_or_default().to_owned()
}

#[test]
fn the_projects_suite_passes_with_at_least_twenty_cases() {
    let suites = build_suites();
    let total = count_tests(&suites.wasi) + count_tests(&suites.guests);
    assert!(total >= 20, "{total} cases");
    let output = conformance(&[], &[&suites.wasi, &suites.guests]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    assert_eq!(text(&output.stdout), format!("{total} passed, 0 failed\n"));
}

#[test]
fn a_wrong_expectation_is_reported_as_a_failure_with_what_differed() {
    let suites = build_suites();
    fs::write(suites.wasi.join("stdout_hello.json"), r#"{"stdout": "goodbye\n"}"#).unwrap();
    fs::write(suites.wasi.join("exit_code_42.json"), r#"{"exit_code": 41}"#).unwrap();
    let report = suites.wasi.join("report.json");
    let output = conformance(&["--json-report", report.to_str().unwrap()], &[&suites.wasi]);

    assert_eq!(output.status.code(), Some(1), "a failed test fails the run");
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(
            r#"FAIL wasm-host-wasi/stdout_hello: stdout differs at byte 0: got "hello, world\n", expected "goodbye\n""#
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL wasm-host-wasi/exit_code_42: exit code 42, expected 41"),
        "{stdout}"
    );
    let total = count_tests(&suites.wasi);
    assert_eq!(last_line(&output), format!("{} passed, 2 failed", total - 2));

    let report: serde_json::Value = serde_json::from_str(&fs::read_to_string(report).unwrap()).unwrap();
    assert_eq!(report["failed"], 2);
    let exit_test = report["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "exit_code_42")
        .unwrap();
    assert_eq!(exit_test["status"], "failed");
    assert_eq!(exit_test["failures"][0], "exit code 42, expected 41");
    assert!(exit_test["duration_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn filter_and_skip_list_select_tests_and_reports_record_skips() {
    let suites = build_suites();
    let skip_list = suites.wasi.join("skip.json");
    fs::write(
        &skip_list,
        r#"{"wasm-host-wasi": {"fs_rename": "renames are flaky here"}}"#,
    )
    .unwrap();
    let junit = suites.wasi.join("junit.xml");
    let json = suites.wasi.join("report.json");
    let output = conformance(
        &[
            "--filter",
            "wasm-host-wasi/fs_",
            "--exclude",
            skip_list.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "--json-report",
            json.to_str().unwrap(),
            "--jobs",
            "1",
        ],
        &[&suites.wasi, &suites.guests],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    let fs_tests = fs::read_dir(&suites.wasi)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name().to_string_lossy().into_owned();
            name.starts_with("fs_") && name.ends_with(".wasm")
        })
        .count();
    assert_eq!(
        last_line(&output),
        format!("{} passed, 0 failed, 1 skipped", fs_tests - 1)
    );

    let junit = fs::read_to_string(junit).unwrap();
    assert!(
        junit.contains(&format!(
            r#"<testsuite name="wasm-host-wasi" tests="{fs_tests}" failures="0" skipped="1""#
        )),
        "{junit}"
    );
    assert!(
        junit.contains(r#"<skipped message="renames are flaky here"/>"#),
        "{junit}"
    );
    assert!(!junit.contains("args_env_echo"), "filtered out: {junit}");
    let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(json).unwrap()).unwrap();
    let skipped = json["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "fs_rename")
        .unwrap();
    assert_eq!(skipped["skip_reason"], "renames are flaky here");
}

#[test]
fn cleanup_files_are_removed_before_and_after_the_run() {
    let suites = build_suites();
    let fs_dir = suites.wasi.join("fs-tests.dir");
    fs::write(
        fs_dir.join("written.cleanup"),
        "stale: would not be truncated by fs_write_read",
    )
    .unwrap();
    fs::create_dir(fs_dir.join("made.cleanup")).unwrap();
    let output = conformance(&["--filter", "fs_"], &[&suites.wasi]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    let left: Vec<String> = fs::read_dir(&fs_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["hello.txt"], "the tests' output is gone too");
}

/// Claims `claim.cleanup` in the shared directory exclusively, holds it for
/// 100 ms, then releases it. Two of these running at once collide: the
/// second `path_open` fails with exist (20), or one's release finds the
/// claim gone (44), and the guest exits with that errno.
const CLAIM: &str = r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file" (func $unlink (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "claim.cleanup")
  (func $check (param $errno i32)
    (if (local.get $errno) (then (call $proc_exit (local.get $errno)))))
  (func (export "_start")
    ;; oflags 5 = creat | excl; rights 64 = fd_write.
    (call $check (call $path_open (i32.const 3) (i32.const 0) (i32.const 256) (i32.const 13)
      (i32.const 5) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 16)))
    (call $check (call $fd_close (i32.load (i32.const 16))))
    ;; One relative monotonic-clock subscription of 100 ms.
    (i32.store8 (i32.const 1032) (i32.const 0))
    (i32.store (i32.const 1040) (i32.const 1))
    (i64.store (i32.const 1048) (i64.const 100000000))
    (call $check (call $poll_oneoff (i32.const 1024) (i32.const 2048) (i32.const 1) (i32.const 20)))
    (call $check (call $unlink (i32.const 3) (i32.const 256) (i32.const 13)))))"#;

#[test]
fn tests_sharing_a_preopened_directory_do_not_race() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("shared.dir")).unwrap();
    let wasm = wat::parse_str(CLAIM).unwrap();
    for i in 0..6 {
        fs::write(dir.path().join(format!("claim_{i}.wasm")), &wasm).unwrap();
        fs::write(
            dir.path().join(format!("claim_{i}.json")),
            r#"{"dirs": ["shared.dir"]}"#,
        )
        .unwrap();
    }
    let output = conformance(&["--jobs", "6"], &[dir.path()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    assert_eq!(last_line(&output), "6 passed, 0 failed");
}

#[test]
fn a_broken_spec_or_module_fails_that_test_alone_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let returns = wat::parse_str(r#"(module (func (export "_start")))"#).unwrap();
    fs::write(dir.path().join("fine.wasm"), &returns).unwrap();
    fs::write(dir.path().join("bad_spec.wasm"), &returns).unwrap();
    fs::write(dir.path().join("bad_spec.json"), r#"{"exit_code": "zero"}"#).unwrap();
    fs::write(dir.path().join("not_wasm.wasm"), "plain text").unwrap();
    let output = conformance(&[], &[dir.path()]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("bad_spec.json: invalid type: string \"zero\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("not_wasm: could not run: not_wasm.wasm is not a valid WebAssembly module"),
        "{stdout}"
    );
    assert_eq!(last_line(&output), "1 passed, 2 failed");
}

#[test]
fn suites_that_cannot_be_run_are_an_error_not_a_pass() {
    let empty = tempfile::tempdir().unwrap();
    let output = conformance(&[], &[empty.path()]);
    assert_eq!(output.status.code(), Some(126));
    assert!(
        text(&output.stderr).contains("holds no *.wasm tests"),
        "{}",
        text(&output.stderr)
    );

    let suites = build_suites();
    let output = conformance(&["--exclude", "/nonexistent/skip.json"], &[&suites.wasi]);
    assert_eq!(output.status.code(), Some(126));
    assert!(
        text(&output.stderr).contains("cannot read skip list"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn the_legacy_adapter_mode_runs_each_test_in_its_own_process() {
    let suites = build_suites();
    fs::write(suites.wasi.join("exit_code_42.json"), r#"{"exit_code": 41}"#).unwrap();
    let adapter = xtask::project_root().join("tests/wasi-testsuite/adapter.py");
    let output = wasm_host()
        .args(["conformance", "--filter", "exit_code", "--adapter"])
        .arg(&adapter)
        .arg(&suites.wasi)
        .env("WASM_HOST", env!("CARGO_BIN_EXE_wasm-host"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}{}", text(&output.stderr));
    assert!(
        stdout.contains("FAIL wasm-host-wasi/exit_code_42: exit code 42, expected 41"),
        "{stdout}"
    );
    assert_eq!(
        last_line(&output),
        "1 passed, 1 failed",
        "exit_code_125 passed: {stdout}"
    );
}
