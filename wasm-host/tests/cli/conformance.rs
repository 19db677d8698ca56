//! `wasm-host conformance`: the project's own suite, which uses every
//! feature of the specification, passes; a wrong expectation is a failure
//! that says what differed; filters, partitions, expectation files, reports,
//! confinement to the suite, clean-up and the legacy adapter mode behave as
//! `--help` says.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use serde_json::Value;
use tempfile::TempDir;

use crate::support::{self, text, wasm_host};

/// The project's suites, freshly built into a temporary folder of their own.
struct BuiltSuites {
    _dir: TempDir,
    wasi: PathBuf,
    guests: PathBuf,
    wasip3: PathBuf,
}

fn build_suites() -> BuiltSuites {
    let dir = tempfile::tempdir().unwrap();
    let built = xtask::suite::build_into(dir.path()).unwrap();
    let find = |name: &str| built.iter().find(|p| p.ends_with(name)).unwrap().clone();
    BuiltSuites {
        wasi: find("wasi"),
        guests: find("guests"),
        wasip3: find("wasip3"),
        _dir: dir,
    }
}

impl BuiltSuites {
    fn all(&self) -> [&Path; 3] {
        [&self.wasi, &self.guests, &self.wasip3]
    }
}

/// The expectation file the project keeps for its own suites.
fn our_expectations() -> PathBuf {
    xtask::suite::source_dir().join("expectations.toml")
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

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// Every test of a JSON report, by name.
fn json_tests(report: &Value) -> Vec<Value> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|suite| suite["tests"].as_array().unwrap().clone())
        .collect()
}

fn json_test(report: &Value, name: &str) -> Value {
    json_tests(report).into_iter().find(|t| t["name"] == name).unwrap()
}

#[test]
fn the_projects_suite_passes_using_every_feature_of_the_specification() {
    let suites = build_suites();
    let total: usize = suites.all().iter().map(|d| count_tests(d)).sum();
    assert!(total >= 30, "{total} cases");
    let report = suites.wasi.join("report.json");
    let expectations = our_expectations();
    let output = conformance(
        &[
            "-q",
            "-e",
            expectations.to_str().unwrap(),
            "--json-report",
            report.to_str().unwrap(),
        ],
        &suites.all(),
    );
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert_eq!(
        stdout,
        format!("1 failed as expected, 0 passed but were expected to fail\n{total} passed, 0 failed\n")
    );
    // Unknown fields are reported, and the test still runs; -q: no progress.
    assert_eq!(
        text(&output.stderr),
        "wasm-host: warning: wasm-host-wasi/unknown_field_warned.json: unknown field `comment`\n"
    );

    let report = read_json(&report);
    let outcome = |name: &str| json_test(&report, name)["outcome"].as_str().unwrap().to_owned();
    // root, the older dirs, operations with stdin, stderr and several runs.
    for name in [
        "fs_read",
        "fs_readdir",
        "csv_processor_sum",
        "csv_processor_bad_field",
        "csv_processor_twice",
    ] {
        assert_eq!(outcome(name), "pass", "{name}");
    }
    let broken = json_test(&report, "rule_2_broken");
    assert_eq!(broken["outcome"], "xfail");
    assert!(
        broken["failures"][0]
            .as_str()
            .unwrap()
            .contains("breaks validation rule 2"),
        "{broken}"
    );
    // Components of the wasm32-wasip3 suite run, WASI 0.3 imports and all;
    // a guest is talked to while it runs: a server reached at the address it
    // printed, and stdin written after reading its answer to the last.
    // An HTTP service is served, sent requests, and stopped as a signal would stop it.
    for name in [
        "cli_component",
        "cli_component_fails",
        "sockets_echo",
        "live_echo",
        "http_service",
        "http_service_sigterm",
    ] {
        assert_eq!(outcome(name), "pass", "{name}");
    }
}

#[test]
fn a_wrong_expectation_is_reported_as_a_failure_with_what_differed() {
    let suites = build_suites();
    fs::write(suites.wasi.join("stdout_hello.json"), r#"{"stdout": "goodbye\n"}"#).unwrap();
    fs::write(suites.wasi.join("exit_code_42.json"), r#"{"exit_code": 41}"#).unwrap();
    let report = suites.wasi.join("report.json");
    let output = conformance(
        &[
            "--json-report",
            report.to_str().unwrap(),
            "--filter",
            "*_hello",
            "--filter",
            "exit_code_*",
        ],
        &[&suites.wasi],
    );

    assert_eq!(output.status.code(), Some(1), "a failed test fails the run");
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(
            r#"FAIL wasm-host-wasi/stdout_hello: stdout differs at byte 0: got "hello, w", expected "goodbye\n""#
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL wasm-host-wasi/exit_code_42: exit code 42, expected 41"),
        "{stdout}"
    );
    assert_eq!(last_line(&output), "2 passed, 2 failed");

    let report = read_json(&report);
    assert_eq!(report["results"][0]["failed"], 2);
    let exit_test = json_test(&report, "exit_code_42");
    assert_eq!(exit_test["outcome"], "fail");
    assert_eq!(exit_test["executed"], true);
    assert_eq!(exit_test["failures"][0], "exit code 42, expected 41");
    assert!(exit_test["duration_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_live_guest_that_answers_wrongly_fails_at_that_operation() {
    let suites = build_suites();
    let live_echo = fs::read_to_string(suites.wasi.join("live_echo.json")).unwrap();
    let wrong = live_echo.replace(
        r#"{"type": "read", "payload": "two\n"}"#,
        r#"{"type": "read", "payload": "six\n"}"#,
    );
    assert_ne!(wrong, live_echo);
    fs::write(suites.wasi.join("live_echo.json"), wrong).unwrap();
    let sockets_echo = fs::read_to_string(suites.wasip3.join("sockets_echo.json")).unwrap();
    let wrong = sockets_echo.replace(
        r#""type": "recv", "id": "server", "payload": "Hello, world""#,
        r#""type": "recv", "id": "server", "payload": "Hello, moon!""#,
    );
    assert_ne!(wrong, sockets_echo);
    fs::write(suites.wasip3.join("sockets_echo.json"), wrong).unwrap();
    // A server that never prints its address.
    fs::write(
        suites.wasip3.join("cli_component.json"),
        r#"{"proposals": ["sockets"], "operations": [{"type": "run"}, {"type": "connect"}, {"type": "wait"}]}"#,
    )
    .unwrap();

    let output = conformance(
        &[
            "--filter",
            "live_echo",
            "--filter",
            "*_component",
            "--filter",
            "sockets_echo",
        ],
        &[&suites.wasi, &suites.wasip3],
    );
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    for failure in [
        r#"FAIL wasm-host-wasi/live_echo: stdout (after 10 characters) differs at byte 0: got "two\n", expected "six\n""#,
        r#"FAIL wasm-host-wasip3/sockets_echo: recv from `server`: expected "Hello, moon!", got "Hello, world""#,
        r#"FAIL wasm-host-wasip3/cli_component: connect `server`: expected the address as HOST:PORT on stdout, found """#,
    ] {
        assert!(stdout.contains(failure), "{failure}\n{stdout}");
    }
    assert_eq!(last_line(&output), "0 passed, 3 failed", "{stdout}");
}

#[test]
fn a_service_that_answers_wrongly_or_is_never_stopped_fails() {
    let suites = build_suites();
    let service = fs::read_to_string(suites.wasip3.join("http_service.json")).unwrap();
    let wrong = service.replace(r#""body": "GET /"}"#, r#""body": "PUT /"}"#);
    assert_ne!(wrong, service);
    fs::write(suites.wasip3.join("http_service.json"), wrong).unwrap();
    fs::write(
        suites.wasip3.join("http_service_sigterm.json"),
        r#"{"proposals": ["http"], "world": "wasi:http/service", "operations": [{"type": "run"}, {"type": "wait"}]}"#,
    )
    .unwrap();
    let output = conformance(&["--filter", "http_service"], &[&suites.wasip3]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    for failure in [
        r#"FAIL wasm-host-wasip3/http_service: request GET /: body differs at byte 0: got "GET /", expected "PUT /""#,
        "FAIL wasm-host-wasip3/http_service_sigterm: `wait` on a service that was not killed",
    ] {
        assert!(stdout.contains(failure), "{failure}\n{stdout}");
    }
    assert_eq!(last_line(&output), "0 passed, 2 failed", "{stdout}");
}

#[test]
fn expectation_files_skip_and_expect_failures_as_the_reference_runner_does() {
    let suites = build_suites();
    let skip_list = suites.wasi.join("skip.json");
    fs::write(
        &skip_list,
        r#"{"wasm-host-wasi": {"fs_rename": "renames are flaky here"}}"#,
    )
    .unwrap();
    let toml = suites.wasi.join("expectations.toml");
    fs::write(
        &toml,
        r#"version = 1
[[suite]]
name = "wasm-host-wasi"
[[suite.test]]
name = "fs_mkdir"
expected = "fail"
reason = "bug 12"
[[suite.test]]
name = "fs_read"
action = "skip"
"#,
    )
    .unwrap();
    let json = suites.wasi.join("report.json");
    let output = conformance(
        &[
            "--filter",
            "fs_*",
            "--exclude",
            skip_list.to_str().unwrap(),
            "-e",
            toml.to_str().unwrap(),
            "--json-report",
            json.to_str().unwrap(),
        ],
        &[&suites.wasi, &suites.guests],
    );
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "an expected failure that passes fails the run: {stdout}"
    );
    assert!(
        stdout.contains(
            "XPASS wasm-host-wasi/fs_mkdir: passed but was expected to fail (bug 12): update the expectation file"
        ),
        "{stdout}"
    );
    let fs_tests = fs::read_dir(&suites.wasi)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name().to_string_lossy().into_owned();
            name.starts_with("fs_") && name.ends_with(".wasm")
        })
        .count();
    assert_eq!(
        last_line(&output),
        format!("{} passed, 1 failed, 2 skipped", fs_tests - 3)
    );

    let json = read_json(&json);
    assert_eq!(json["results"][0]["xpassed"], 1);
    assert_eq!(json_test(&json, "fs_rename")["reason"], "renames are flaky here");
    assert_eq!(json_test(&json, "fs_read")["reason"], "the expectation file says so");
    assert_eq!(json_test(&json, "fs_mkdir")["outcome"], "xpass");
    assert!(
        json_tests(&json)
            .iter()
            .all(|t| t["name"].as_str().unwrap().starts_with("fs_")),
        "filtered"
    );
}

#[test]
fn a_run_that_selects_no_test_says_so_and_fails() {
    let suites = build_suites();
    let output = conformance(&["--filter", "no_such_test*"], &[&suites.wasi]);
    assert_eq!(output.status.code(), Some(4));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("no test selected"), "{stderr}");
    assert!(
        stderr.contains(&format!("none of {} tests", count_tests(&suites.wasi))),
        "{stderr}"
    );
    assert_eq!(text(&output.stdout), "");
}

#[test]
fn partitions_together_run_every_test_exactly_once() {
    let suites = build_suites();
    let names = |args: &[&str]| -> Vec<String> {
        let report = suites.wasi.join("partition.json");
        let mut all = vec!["--json-report", report.to_str().unwrap()];
        all.extend(args);
        let output = conformance(&all, &[&suites.wasi, &suites.guests]);
        assert!(
            matches!(output.status.code(), Some(0 | 4)),
            "{}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
        if output.status.code() == Some(4) {
            return Vec::new();
        }
        let report = read_json(&report);
        json_tests(&report)
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let everything: BTreeSet<String> = names(&["-e", our_expectations().to_str().unwrap()])
        .into_iter()
        .collect();
    for kind in ["hash", "count"] {
        let mut seen = Vec::new();
        for k in 1..=3 {
            let partition = format!("{kind}:{k}/3");
            let share = names(&["--partition", &partition, "-e", our_expectations().to_str().unwrap()]);
            assert!(
                kind == "hash" || share.len() >= everything.len() / 3,
                "{partition}: {share:?}"
            );
            seen.extend(share);
        }
        seen.sort();
        assert_eq!(seen, everything.iter().cloned().collect::<Vec<_>>(), "{kind}");
    }
    let output = conformance(&["--partition", "hash:4/3"], &[&suites.wasi]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "a partition outside 1..=N is a usage error"
    );
}

#[test]
fn the_junit_report_passes_the_schema_check() {
    let suites = build_suites();
    fs::write(suites.wasi.join("exit_code_42.json"), r#"{"exit_code": 41}"#).unwrap();
    fs::write(suites.wasi.join("fs_read.json"), r#"{"root": "../outside"}"#).unwrap();
    let junit = suites.wasi.join("junit.xml");
    let json = suites.wasi.join("report.json");
    let started = std::time::Instant::now();
    let output = conformance(
        &[
            "--junit",
            junit.to_str().unwrap(),
            "--json-report",
            json.to_str().unwrap(),
            "-e",
            our_expectations().to_str().unwrap(),
        ],
        &suites.all(),
    );
    let wall = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    let xml = fs::read_to_string(&junit).unwrap();
    crate::junit_schema::check(&xml, wall);

    let report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    // One count everywhere: an expected failure passed (the console's and
    // the reference runner's rule), in JUnit a passed case named in a property.
    let console: Vec<usize> = last_line(&output)
        .split(", ")
        .map(|part| part.split(' ').next().unwrap().parse().unwrap())
        .collect();
    let junit_skipped: usize = report.test_suites.iter().map(|s| s.skipped).sum();
    let junit_failed: usize = report.test_suites.iter().map(|s| s.failures + s.errors).sum();
    let junit_passed = report.test_suites.iter().map(|s| s.tests).sum::<usize>() - junit_failed - junit_skipped;
    let json = read_json(&json);
    let json_count = |field: &str| -> usize {
        json["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|suite| suite[field].as_u64().unwrap() as usize)
            .sum()
    };
    let mut junit_counts = vec![junit_passed, junit_failed];
    let mut json_counts = vec![json_count("passed"), json_count("failed")];
    if junit_skipped > 0 {
        junit_counts.push(junit_skipped);
        json_counts.push(json_count("skipped"));
    }
    assert_eq!(console, junit_counts, "console against JUnit");
    assert_eq!(console, json_counts, "console against JSON");
    assert_eq!(json_count("xfailed"), 1);
    let wasi_suite = report
        .test_suites
        .iter()
        .find(|s| s.name.as_str() == "wasm-host-wasi")
        .unwrap();
    let xfail = wasi_suite
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "rule_2_broken")
        .unwrap();
    assert!(
        matches!(xfail.status, quick_junit::TestCaseStatus::Success { .. }),
        "{:?}",
        xfail.status
    );
    assert!(
        wasi_suite
            .properties
            .iter()
            .any(|p| p.name.as_str() == "xfail" && p.value.as_str().starts_with("rule_2_broken: failed as expected: ")),
        "{:?}",
        wasi_suite.properties
    );
    let wasi = report
        .test_suites
        .iter()
        .find(|s| s.name.as_str() == "wasm-host-wasi")
        .unwrap();
    assert_eq!(
        (wasi.failures, wasi.errors),
        (1, 1),
        "an unmet expectation, and a test that could not run"
    );
    let case = |name: &str| wasi.test_cases.iter().find(|c| c.name.as_str() == name).unwrap();
    let hello = case("stdout_hello");
    assert_eq!(
        hello.system_out.as_ref().map(|s| s.as_str().trim_end()),
        Some("hello, world")
    );
    assert_eq!(
        case("stderr_hello").system_err.as_ref().map(|s| s.as_str().trim_end()),
        Some("oops")
    );
    match &case("exit_code_42").status {
        quick_junit::TestCaseStatus::NonSuccess { kind, message, ty, .. } => {
            assert_eq!(*kind, quick_junit::NonSuccessKind::Failure);
            assert_eq!(message.as_ref().unwrap().as_str(), "exit code 42, expected 41");
            assert_eq!(ty.as_ref().unwrap().as_str(), "expectation mismatch");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn each_test_works_on_its_own_copy_and_the_suite_is_never_written() {
    let suites = build_suites();
    let fs_dir = suites.wasi.join("fs-tests.dir");
    let stale = "stale: would not be truncated by fs_write_read";
    fs::write(fs_dir.join("written.cleanup"), stale).unwrap();
    fs::create_dir(fs_dir.join("made.cleanup")).unwrap();
    let output = conformance(&["--filter", "fs_"], &[&suites.wasi, &suites.guests]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    let left: Vec<String> = fs::read_dir(&fs_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        ["hello.txt"],
        "stale test output is removed, and the tests wrote nothing here"
    );
    let output = conformance(&["--filter", "file_reader_write"], &[&suites.guests]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    assert!(
        !suites.guests.join("data.dir/out.cleanup").exists(),
        "written in the test's copy only"
    );
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
fn tests_sharing_a_directory_run_at_once_without_racing() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("shared.dir")).unwrap();
    let wasm = wat::parse_str(CLAIM).unwrap();
    for i in 0..6 {
        fs::write(dir.path().join(format!("claim_{i}.wasm")), &wasm).unwrap();
        fs::write(dir.path().join(format!("claim_{i}.json")), r#"{"root": "shared.dir"}"#).unwrap();
    }
    let output = conformance(&["--jobs", "6"], &[dir.path()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    assert_eq!(last_line(&output), "6 passed, 0 failed");
}

#[test]
fn a_directory_outside_the_suite_fails_that_test_and_is_never_touched() {
    let parent = tempfile::tempdir().unwrap();
    let suite = parent.path().join("suite");
    let outside = parent.path().join("outside");
    fs::create_dir_all(suite.join("inside.dir")).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("old.cleanup"), "not the suite's to remove").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&outside, suite.join("link.dir")).unwrap();
    // Creates `planted.cleanup` in its root directory (oflags 1 = creat,
    // rights 64 = fd_write) and exits 0.
    let wasm = wat::parse_str(support::open_once_wat("planted.cleanup", 1, 64)).unwrap();
    let specs = [
        (
            "absolute",
            format!(r#"{{"root": {:?}}}"#, outside.display().to_string()),
        ),
        ("dotdot", r#"{"root": "../outside"}"#.to_owned()),
        ("legacy_dirs", r#"{"dirs": ["inside.dir/../../outside"]}"#.to_owned()),
        ("symlink", r#"{"root": "link.dir"}"#.to_owned()),
        (
            "operation",
            r#"{"operations": [{"type": "run", "root": "../outside"}, {"type": "wait"}]}"#.to_owned(),
        ),
        ("inside", r#"{"root": "inside.dir"}"#.to_owned()),
    ];
    for (name, spec) in &specs {
        fs::write(suite.join(format!("{name}.wasm")), &wasm).unwrap();
        fs::write(suite.join(format!("{name}.json")), spec).unwrap();
    }
    let output = conformance(&[], &[&suite]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    for (name, reason) in [
        ("absolute", "is absolute"),
        ("dotdot", "has `..`"),
        ("legacy_dirs", "has `..`"),
        ("symlink", "leads out of the suite"),
        ("operation", "has `..`"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.contains(&format!("/{name}:")))
            .unwrap_or_default();
        assert!(line.contains(reason), "{name}: {stdout}");
    }
    assert_eq!(last_line(&output), "1 passed, 5 failed");
    let left: Vec<String> = fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        ["old.cleanup"],
        "nothing planted, nothing cleaned up outside the suite"
    );
}

#[test]
fn a_broken_spec_or_module_fails_that_test_alone_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let returns = wat::parse_str(r#"(module (func (export "_start")))"#).unwrap();
    fs::write(dir.path().join("fine.wasm"), &returns).unwrap();
    fs::write(dir.path().join("bad_spec.wasm"), &returns).unwrap();
    fs::write(dir.path().join("bad_spec.json"), r#"{"exit_code": "zero"}"#).unwrap();
    fs::write(dir.path().join("bad_rule.wasm"), &returns).unwrap();
    fs::write(dir.path().join("bad_rule.json"), r#"{"operations": [{"type": "run"}]}"#).unwrap();
    fs::write(dir.path().join("not_wasm.wasm"), "plain text").unwrap();
    let output = conformance(&[], &[dir.path()]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("bad_spec: invalid bad_spec.json: `exit_code` must be an integer"),
        "{stdout}"
    );
    assert!(
        stdout.contains("bad_rule: invalid bad_rule.json: breaks validation rule 1: each run is paired with a wait"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not_wasm: could not run: not_wasm.wasm is not a valid WebAssembly module"),
        "{stdout}"
    );
    assert_eq!(last_line(&output), "1 passed, 3 failed");
}

#[test]
fn names_and_output_from_a_suite_are_escaped_on_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let module = r#"(module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 16) "\1b]0;owned\07\1b[2J")
      (func (export "_start")
        (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 14))
        (drop (call $w (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
        unreachable))"#;
    fs::write(dir.path().join("evil\u{1b}[31m.wasm"), wat::parse_str(module).unwrap()).unwrap();
    fs::write(dir.path().join("manifest.json"), r#"{"name": "suite\u001b[5m"}"#).unwrap();
    let output = conformance(&[], &[dir.path()]);
    assert_eq!(output.status.code(), Some(1));
    let shown = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(!shown.contains('\u{1b}') && !shown.contains('\u{7}'), "{shown:?}");
    assert!(
        shown.contains(r"FAIL suite\u{1b}[5m/evil\u{1b}[31m: trapped"),
        "{shown}"
    );
    assert!(shown.contains(r"\u{1b}]0;owned\u{7}"), "{shown}");
}

#[test]
fn a_closed_stdout_ends_the_run_quietly_and_the_reports_are_still_written() {
    let suites = build_suites();
    let report = suites.wasi.join("report.json");
    let mut child = wasm_host()
        .args(["conformance", "--json-report", report.to_str().unwrap(), "-e"])
        .arg(our_expectations())
        .arg(&suites.wasi)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before anything is printed, as `| head -0` does.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("error:"), "{stderr}");
    let report = read_json(&report);
    assert_eq!(json_tests(&report).len(), count_tests(&suites.wasi));
}

/// Recurses forever: stops as a stack overflow at --max-stack.
const RECURSE: &str = r#"(module
  (memory (export "memory") 1)
  (func $deep (param i64) (result i64)
    (i64.add (call $deep (i64.add (local.get 0) (i64.const 1))) (local.get 0)))
  (func (export "_start") (drop (call $deep (i64.const 0)))))"#;

#[test]
fn a_large_max_stack_is_a_stack_overflow_of_the_test_not_of_the_runner() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("deep.wasm"), wat::parse_str(RECURSE).unwrap()).unwrap();
    // With host frames under it, more than the 2 MiB of a default thread's stack.
    let output = conformance(&["--max-stack", "2047K"], &[dir.path()]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains("stack overflow"), "{stdout}");
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
    for missing in ["/nonexistent/skip.json", "/nonexistent/expectations.toml"] {
        let output = conformance(&["-e", missing], &[&suites.wasi]);
        assert_eq!(output.status.code(), Some(126));
        let stderr = text(&output.stderr);
        assert!(stderr.contains("cannot read expectations"), "{stderr}");
    }
}

#[test]
fn the_legacy_adapter_mode_runs_each_test_in_its_own_process() {
    let suites = build_suites();
    fs::write(suites.wasi.join("exit_code_42.json"), r#"{"exit_code": 41}"#).unwrap();
    let adapter = xtask::project_root().join("tests/wasi-testsuite/adapter.py");
    let output = wasm_host()
        .args([
            "conformance",
            "--filter",
            "exit_code",
            "--filter",
            "*/fs_read",
            "--adapter",
        ])
        .arg(&adapter)
        .arg(&suites.wasi)
        .arg(&suites.guests)
        .args(["--filter", "csv_processor_twice"])
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
    // exit_code_125, fs_read (root) and csv_processor_twice (stdin, two runs) pass.
    assert_eq!(last_line(&output), "3 passed, 1 failed", "{stdout}");
}

#[test]
fn the_legacy_adapter_refuses_fuel_and_memory_limits_in_either_form() {
    // Refused before any suite is read: an empty folder will do.
    let dir = tempfile::tempdir().unwrap();
    let adapter = xtask::project_root().join("tests/wasi-testsuite/adapter.py");
    let adapter = adapter.to_str().unwrap();
    for limit in [
        ["--fuel", "1000"],
        ["--max-memory", "1M"],
        ["-W", "fuel=1000"],
        ["-W", "max-memory-size=1M"],
        ["-W", "timeout=5s,fuel=1000"],
    ] {
        let output = conformance(&["--adapter", adapter, limit[0], limit[1]], &[dir.path()]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{limit:?}: {stderr}");
        assert!(stderr.contains("--adapter"), "{limit:?}: {stderr}");
    }
    // A timeout limits the adapter's process: taken, and the run goes on
    // to find the folder empty.
    let output = conformance(&["--adapter", adapter, "-W", "timeout=5s"], &[dir.path()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(126), "{stderr}");
    assert!(stderr.contains("holds no *.wasm tests"), "{stderr}");
}

/// Opens `f.txt` until it may not (exit code: the errno), after a pause of
/// `$pause` ms, then holds what it opened for another `$hold` ms and exits 0.
#[cfg(unix)]
fn descriptor_guest(pause_ms: u64, hold_ms: u64, limit: u32) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "f.txt")
  (func $sleep (param $ns i64)
    (i32.store8 (i32.const 1032) (i32.const 0))
    (i32.store (i32.const 1040) (i32.const 1))
    (i64.store (i32.const 1048) (local.get $ns))
    (drop (call $poll_oneoff (i32.const 1024) (i32.const 2048) (i32.const 1) (i32.const 20))))
  (func (export "_start") (local $errno i32) (local $opened i32)
    (call $sleep (i64.const {pause_ns}))
    (block $done
      (loop $open
        (br_if $done (i32.ge_u (local.get $opened) (i32.const {limit})))
        (local.set $errno (call $path_open (i32.const 3) (i32.const 0) (i32.const 256) (i32.const 5)
          (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16)))
        (br_if $done (local.get $errno))
        (local.set $opened (i32.add (local.get $opened) (i32.const 1)))
        (br $open)))
    (call $sleep (i64.const {hold_ns}))
    ;; A hog stops at the limit (errno 33, mfile); a reader opens its one file.
    (if (i32.eqz (i32.or (i32.eq (local.get $errno) (i32.const 33)) (i32.eqz (local.get $errno))))
      (then (call $proc_exit (local.get $errno))))))"#,
        pause_ns = pause_ms * 1_000_000,
        hold_ns = hold_ms * 1_000_000,
    )
}

#[cfg(unix)]
#[test]
fn a_test_that_opens_descriptors_until_it_fails_cannot_starve_the_others() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("files.dir")).unwrap();
    fs::write(dir.path().join("files.dir/f.txt"), "x").unwrap();
    let hog = wat::parse_str(descriptor_guest(0, 400, u32::MAX)).unwrap();
    let reader = wat::parse_str(descriptor_guest(150, 0, 1)).unwrap();
    fs::write(dir.path().join("hog.wasm"), hog).unwrap();
    for i in 0..3 {
        fs::write(dir.path().join(format!("reader_{i}.wasm")), &reader).unwrap();
    }
    for name in ["hog", "reader_0", "reader_1", "reader_2"] {
        fs::write(dir.path().join(format!("{name}.json")), r#"{"root": "files.dir"}"#).unwrap();
    }
    // A process allowed 600 descriptors: the hog may hold its 256, no more.
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 600 && exec "$0" conformance --jobs 4 "$1""#)
        .arg(env!("CARGO_BIN_EXE_wasm-host"))
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", text(&output.stderr));
    assert_eq!(last_line(&output), "4 passed, 0 failed");
}

/// A core module that writes `text` to descriptor `fd` (1 stdout, 2
/// stderr) and exits 0.
fn printing_guest(fd: u32, text: &str) -> Vec<u8> {
    let bytes: String = text.bytes().map(|b| format!("\\{b:02x}")).collect();
    wat::parse_str(format!(
        r#"(module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 16) "{bytes}")
      (func (export "_start")
        (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const {len}))
        (drop (call $w (i32.const {fd}) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        len = text.len()
    ))
    .unwrap()
}

/// A suite in a temporary folder: each test a [`printing_guest`] with its specification.
fn printing_suite(tests: &[(&str, u32, &str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("manifest.json"), r#"{"name": "s"}"#).unwrap();
    for (name, fd, text, spec) in tests {
        fs::write(dir.path().join(format!("{name}.wasm")), printing_guest(*fd, text)).unwrap();
        fs::write(dir.path().join(format!("{name}.json")), spec).unwrap();
    }
    dir
}

const CONNECT: &str = r#"{"operations": [{"type": "run"}, {"type": "connect"}, {"type": "wait"}]}"#;
const REQUEST: &str = r#"{"operations": [{"type": "run"}, {"type": "request"}, {"type": "wait"}]}"#;

#[test]
fn the_runner_connects_only_to_loopback_whatever_a_guest_prints() {
    let suite = printing_suite(&[
        ("connect_metadata", 1, "169.254.169.254:80\n", CONNECT),
        ("connect_named", 1, "db.internal:5432\n", CONNECT),
        (
            "request_metadata",
            2,
            "http://169.254.169.254/latest/meta-data\n",
            REQUEST,
        ),
        ("request_named", 2, "http://metadata.internal/\n", REQUEST),
    ]);
    let output = conformance(&["-q"], &[suite.path()]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}{}", text(&output.stderr));
    for failure in [
        "connect_metadata: connect `server`: refused 169.254.169.254: not a loopback address",
        r#"connect_named: connect `server`: refused "db.internal": the runner resolves no name but localhost"#,
        "request_metadata: request GET /: failed to make the request: refused 169.254.169.254: not a loopback address",
        r#"request_named: request GET /: failed to make the request: refused "metadata.internal": the runner resolves no name"#,
    ] {
        assert!(stdout.contains(failure), "{failure}\n{stdout}");
    }
    assert_eq!(last_line(&output), "0 passed, 4 failed");
}

#[test]
fn a_service_that_trickles_its_answer_cannot_keep_a_request_past_the_timeout() {
    let trickler = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/\n", trickler.local_addr().unwrap());
    std::thread::spawn(move || {
        let (mut connection, _) = trickler.accept().unwrap();
        // A whole, valid response in 3.8 s, a byte at a time: under
        // `requests`' 5 s per read, and past the test's 1 s.
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" {
            std::thread::sleep(std::time::Duration::from_millis(100));
            if std::io::Write::write_all(&mut connection, &[*byte]).is_err() {
                return;
            }
        }
    });
    let suite = printing_suite(&[("trickled", 2, &url, REQUEST)]);
    let output = conformance(&["-q", "--timeout", "1s"], &[suite.path()]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}{}", text(&output.stderr));
    assert!(
        stdout.contains("FAIL") && stdout.contains("trickled: request GET /: timed out waiting for the response"),
        "{stdout}"
    );
}

/// Two tests: `one_passes` and `two_fails`.
fn pass_and_fail_suite() -> TempDir {
    printing_suite(&[
        ("one_passes", 1, "a", r#"{"stdout": "a"}"#),
        ("two_fails", 1, "b", r#"{"stdout": "x"}"#),
    ])
}

#[test]
fn progress_is_a_line_per_test_off_a_terminal_and_nothing_with_quiet() {
    let suite = pass_and_fail_suite();
    let output = conformance(&["--jobs", "1"], &[suite.path()]);
    let mut lines: Vec<String> = text(&output.stderr).lines().map(str::to_owned).collect();
    lines.sort();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("[1/2] ") || lines[0].starts_with("[2/2] "),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("PASS") && l.ends_with("/one_passes")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("FAIL") && l.ends_with("/two_fails")),
        "{lines:?}"
    );
    // The failure and the summary stay on stdout.
    assert_eq!(last_line(&output), "1 passed, 1 failed");

    let quiet = conformance(&["-q"], &[suite.path()]);
    assert_eq!(text(&quiet.stderr), "");
    assert_eq!(text(&quiet.stdout), text(&output.stdout));
}

#[cfg(target_os = "linux")]
#[test]
fn progress_is_a_live_bar_on_a_terminal() {
    let suite = pass_and_fail_suite();
    // util-linux's `script` gives the run a terminal and copies what it drew.
    let command = format!(
        "{} conformance {} >/dev/null",
        env!("CARGO_BIN_EXE_wasm-host"),
        suite.path().display()
    );
    let output = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let drawn = text(&output.stdout);
    assert!(drawn.contains("[") && drawn.contains("/2 "), "{drawn:?}");
    assert!(!drawn.contains("PASS"), "no lines on a terminal: {drawn:?}");
}

#[test]
fn list_prints_the_selected_tests_and_runs_none() {
    let suite = pass_and_fail_suite();
    let report = suite.path().join("report.json");
    let output = conformance(&["--list", "--json-report", report.to_str().unwrap()], &[suite.path()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "s/one_passes\ns/two_fails\n");
    assert!(!report.exists(), "nothing ran");
}

#[test]
fn fail_fast_starts_no_test_after_the_first_failure() {
    let suite = printing_suite(&[
        ("a_fails", 1, "b", r#"{"stdout": "x"}"#),
        ("b_passes", 1, "a", r#"{"stdout": "a"}"#),
        ("c_passes", 1, "a", r#"{"stdout": "a"}"#),
    ]);
    // One at a time, in name order: a fails first, so neither b nor c starts.
    let output = conformance(&["-q", "--jobs", "1", "--fail-fast"], &[suite.path()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(last_line(&output), "0 passed, 1 failed, 2 skipped");
    let output = conformance(&["-q", "--jobs", "1"], &[suite.path()]);
    assert_eq!(last_line(&output), "2 passed, 1 failed");
}

#[test]
fn an_empty_selection_names_its_cause_and_no_tests_decides_the_status() {
    let suite = pass_and_fail_suite();
    // `two_fails` hashes into one of two partitions; the other holds nothing.
    let empty = ["hash:1/2", "hash:2/2"]
        .into_iter()
        .find(|p| {
            conformance(&["-q", "--filter", "two_fails", "--partition", p], &[suite.path()])
                .status
                .code()
                == Some(4)
        })
        .unwrap();
    let output = conformance(&["--filter", "two_fails", "--partition", empty], &[suite.path()]);
    assert_eq!(
        text(&output.stderr),
        format!("wasm-host: error: no test selected: partition {empty} holds none of the 1 tests selected\n")
    );
    let junit = suite.path().join("junit.xml");
    for (action, status, stderr) in [("warn", 0, "wasm-host: warning: no test selected"), ("pass", 0, "")] {
        let output = conformance(
            &[
                "--filter",
                "nothing_at_all",
                "--no-tests",
                action,
                "--junit",
                junit.to_str().unwrap(),
            ],
            &[suite.path()],
        );
        assert_eq!(output.status.code(), Some(status), "{action}");
        assert!(
            text(&output.stderr).starts_with(stderr),
            "{action}: {}",
            text(&output.stderr)
        );
        assert_eq!(last_line(&output), "0 passed, 0 failed");
        crate::junit_schema::check(&fs::read_to_string(&junit).unwrap(), std::time::Duration::from_secs(60));
    }
    let output = conformance(&["--filter", "[bad"], &[suite.path()]);
    assert_eq!(output.status.code(), Some(2), "a bad glob is a usage error");
    assert!(text(&output.stderr).contains("[bad"), "{}", text(&output.stderr));
}
