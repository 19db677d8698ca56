//! `wasm-host test` as cargo's runner: the fixture crate
//! `guests/test_fixture` (tests that pass, fail, panic, return an error,
//! never end, are ignored, should panic) run through it directly, through
//! `cargo test --target ...` and `cargo nextest run --target ...`, against
//! the same crate's native `cargo test`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::support::{self, text, wasm_host};

const TARGETS: [&str; 2] = ["wasm32-wasip1", "wasm32-wasip2"];

fn fixture_dir() -> PathBuf {
    xtask::project_root().join("guests").join("test_fixture")
}

/// `cargo ARGS` on the fixture crate, its artifacts with the guests' own.
fn cargo_on_fixture(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .args(args)
        .arg("--manifest-path")
        .arg(xtask::guests::manifest_path())
        .arg("--target-dir")
        .arg(xtask::guests::target_dir())
        .args(["-p", "test_fixture"])
        // Native libtest's report and ours both change with it.
        .env_remove("RUST_BACKTRACE");
    command
}

/// The fixture's test binary for `target`, built once per test process.
fn fixture_binary(target: &'static str) -> PathBuf {
    static BUILT: OnceLock<BTreeMap<&str, PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        TARGETS
            .into_iter()
            .map(|target| {
                let output = cargo_on_fixture(&["test", "--no-run", "--message-format", "json", "--target", target])
                    .output()
                    .unwrap();
                assert!(output.status.success(), "{}", text(&output.stderr));
                let executable = text(&output.stdout)
                    .lines()
                    .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                    .find_map(|message| message["executable"].as_str().map(PathBuf::from))
                    .expect("cargo names the test binary");
                (target, executable)
            })
            .collect()
    })[target]
        .clone()
}

/// The runner line cargo is given: `wasm-host test`.
fn runner() -> String {
    format!("{} test", env!("CARGO_BIN_EXE_wasm-host"))
}

fn runner_variable(target: &str) -> String {
    format!("CARGO_TARGET_{}_RUNNER", target.to_uppercase().replace('-', "_"))
}

/// `cargo ARGS --target TARGET` on the fixture, wasm-host that target's runner.
fn cargo_through_runner(target: &str, args: &[&str]) -> Command {
    let mut command = cargo_on_fixture(args);
    command
        .args(["--target", target])
        .env(runner_variable(target), runner());
    command
}

/// `wasm-host test BINARY ARGS` as cargo runs it for the fixture (the
/// package directory in CARGO_MANIFEST_DIR).
fn run_fixture(target: &'static str, args: &[&str]) -> Output {
    wasm_host()
        .arg("test")
        .arg(fixture_binary(target))
        .args(args)
        .env("CARGO_MANIFEST_DIR", fixture_dir())
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

/// Each `test NAME ... VERDICT` line of libtest's console report.
fn verdicts(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("test ")?.split_once(" ... "))
        .map(|(name, verdict)| (name.to_owned(), verdict.to_owned()))
        .collect()
}

/// Each test nextest ran, PASS or FAIL (any failure: FAIL, TIMEOUT, SIGNAL).
fn nextest_verdicts(stderr: &str) -> BTreeMap<String, String> {
    stderr
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let (status, rest) = line.split_once(' ')?;
            let name = rest.rsplit(" test_fixture ").next()?;
            match status {
                "PASS" => Some((name.to_owned(), "ok".to_owned())),
                "FAIL" | "TIMEOUT" | "SIGABRT" | "SIGSEGV" => Some((name.to_owned(), "FAILED".to_owned())),
                _ => None,
            }
        })
        .collect()
}

fn verdict_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(name, verdict)| (format!("tests::{name}"), verdict.to_string()))
        .collect()
}

#[test]
fn every_test_gets_its_own_verdict_line_and_a_failure_its_own_output() {
    for target in TARGETS {
        let output = run_fixture(target, &[]);
        let stdout = text(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(101),
            "{target}: {stdout}{}",
            text(&output.stderr)
        );
        let should_panic = "ignored, #[should_panic] cannot be checked where a panic aborts (wasm); run it natively";
        assert_eq!(
            verdicts(&stdout),
            verdict_map(&[
                ("cannot_write_to_its_read_only_directory", "ok"),
                ("fails_an_assertion", "FAILED"),
                ("ignored_and_failing", "ignored, fails when run"),
                ("ignored_and_passing", "ignored"),
                ("never_ends", "FAILED"),
                ("never_ends_either", "ignored, never ends"),
                ("panics", "FAILED"),
                ("passes", "ok"),
                ("reads_its_granted_package_directory", "ok"),
                ("returns_an_error", "FAILED"),
                ("sees_its_granted_variable", "ok"),
                ("should_panic", should_panic),
            ]),
            "{target}: {stdout}"
        );
        for own_output in [
            "---- tests::fails_an_assertion stdout ----\noutput before the failure\n",
            "arithmetic is broken",
            "about to panic\n",
            "a deliberate panic",
            "Error: \"the test returned an error\"",
            "---- tests::never_ends stdout ----\ncounting for ever\n",
            "wasm-host: tests::never_ends timed out after 3s",
        ] {
            assert!(stdout.contains(own_output), "{target}: no {own_output:?} in {stdout}");
        }
        assert!(
            stdout.contains("\nfailures:\n    tests::fails_an_assertion\n    tests::never_ends\n    tests::panics\n    tests::returns_an_error\n"),
            "{target}: {stdout}"
        );
        assert!(
            stdout.contains(
                "test result: FAILED. 4 passed; 4 failed; 4 ignored; 0 measured; 0 filtered out; finished in "
            ),
            "{target}: {stdout}"
        );
    }
}

/// Tests run compiled without epoch checks: the first one past its timeout
/// is reported as timed out, its output kept, and its thread left
/// computing (wasm-host says so on stderr) until the process exits; the
/// tests that start after it run compiled with the checks, so a second one
/// is stopped at its timeout instead of left computing too. The others
/// pass, and the process ends (`output` returns).
#[test]
fn tests_past_their_timeout_fail_alone_and_only_the_first_is_left_computing() {
    for target in TARGETS {
        let output = run_fixture(
            target,
            &[
                "--exact",
                "tests::never_ends",
                "tests::never_ends_either",
                "tests::passes",
                "--include-ignored",
                "--test-threads",
                "1",
            ],
        );
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        assert_eq!(output.status.code(), Some(101), "{target}: {stdout}{stderr}");
        assert_eq!(
            verdicts(&stdout),
            verdict_map(&[
                ("never_ends", "FAILED"),
                ("never_ends_either", "FAILED"),
                ("passes", "ok")
            ]),
            "{target}: {stdout}"
        );
        for timed_out in [
            "---- tests::never_ends stdout ----\ncounting for ever\nwasm-host: tests::never_ends timed out after 3s\n",
            "wasm-host: tests::never_ends_either timed out after 3s\n",
        ] {
            assert!(stdout.contains(timed_out), "{target}: no {timed_out:?} in {stdout}");
        }
        assert_eq!(
            stderr.matches("computes on past its timeout").count(),
            1,
            "{target}: {stderr}"
        );
        assert!(
            stderr.contains("wasm-host: tests::never_ends computes on past its timeout"),
            "{target}: {stderr}"
        );
    }
}

#[test]
fn filters_skips_exact_names_and_ignored_tests_select_as_libtest_does() {
    let target = TARGETS[0];
    let exact = run_fixture(target, &["--exact", "tests::passes"]);
    assert_eq!(exact.status.code(), Some(0));
    assert_eq!(verdicts(&text(&exact.stdout)), verdict_map(&[("passes", "ok")]));
    assert!(text(&exact.stdout).contains("1 passed; 0 failed; 0 ignored; 0 measured; 11 filtered out"));

    let filtered = run_fixture(target, &["grant", "read", "--skip", "variable"]);
    assert_eq!(
        verdicts(&text(&filtered.stdout)),
        verdict_map(&[
            ("reads_its_granted_package_directory", "ok"),
            ("cannot_write_to_its_read_only_directory", "ok")
        ])
    );

    let ignored = run_fixture(target, &["--ignored", "--skip", "never_ends"]);
    assert_eq!(ignored.status.code(), Some(101));
    assert_eq!(
        verdicts(&text(&ignored.stdout)),
        verdict_map(&[("ignored_and_failing", "FAILED"), ("ignored_and_passing", "ok")])
    );

    let terse = run_fixture(
        target,
        &["-q", "ignored_and_passing", "--include-ignored", "--test-threads=1"],
    );
    assert_eq!(terse.status.code(), Some(0));
    assert!(
        text(&terse.stdout).starts_with("\nrunning 1 test\n.\n"),
        "{}",
        text(&terse.stdout)
    );
}

/// The report reads as native libtest's, pretty and terse, with
/// `--show-output`'s closing list of the passed tests and what each
/// printed: through cargo with the runner, the same text as native `cargo
/// test` gives (only the result line's count of tests filtered out differs:
/// the wasm-only tests).
#[test]
fn the_report_reads_as_native_libtests() {
    let report = |output: &Output| {
        let stdout = text(&output.stdout);
        let (report, result) = stdout.split_once("\ntest result: ").expect("a result line");
        let counts = result.split(" filtered out").next().unwrap().to_owned();
        (report.to_owned(), counts.rsplit_once(';').unwrap().0.to_owned())
    };
    for format in [&[][..], &["-q"]] {
        let libtest_args = [
            &["--", "--show-output"],
            format,
            &["--exact", "tests::passes", "tests::ignored_and_passing"],
        ]
        .concat();
        let native = cargo_on_fixture(&["test", "--lib"])
            .args(&libtest_args)
            .output()
            .unwrap();
        let (native_report, native_counts) = report(&native);
        assert!(
            native_report.contains("\nsuccesses:\n\n---- tests::passes stdout ----\noutput of a passing test\n\n\nsuccesses:\n    tests::passes\n"),
            "{native_report}"
        );
        assert_eq!(native_counts, "ok. 1 passed; 0 failed; 1 ignored; 0 measured");
        for target in TARGETS {
            let wasm = cargo_through_runner(target, &["test", "--lib"])
                .args(&libtest_args)
                .output()
                .unwrap();
            assert_eq!(
                report(&wasm),
                (native_report.clone(), native_counts.clone()),
                "{target} {format:?}"
            );
        }
    }
    // Each test in its own instance still: a panic (run first, in the
    // harness's order) ends no other test.
    for target in TARGETS {
        let with_a_panic = run_fixture(target, &["--show-output", "--exact", "tests::panics", "tests::passes"]);
        let stdout = text(&with_a_panic.stdout);
        assert_eq!(
            verdicts(&stdout),
            verdict_map(&[("panics", "FAILED"), ("passes", "ok")]),
            "{target}: {stdout}"
        );
        assert!(
            stdout.contains("\nsuccesses:\n    tests::passes\n\nfailures:\n"),
            "{target}: {stdout}"
        );
    }
}

/// Native `cargo test --lib -- ARGS` of the fixture, then the same through
/// cargo with the runner for each target: libtest's report up to the point
/// where the two may differ (`until`: the failures' own output, a
/// wasm panic's, or the result line, whose count of the tests filtered
/// out differs by the wasm-only tests).
fn native_and_wasm_reports(args: &[&str], until: &str) -> (String, Vec<String>) {
    native_and_wasm_reports_with(args, until, |_| {})
}

/// [`native_and_wasm_reports`], each cargo command changed by `with`
/// first (its environment).
fn native_and_wasm_reports_with(args: &[&str], until: &str, with: impl Fn(&mut Command)) -> (String, Vec<String>) {
    let report = |output: &Output| {
        let stdout = text(&output.stdout);
        stdout.split(until).next().unwrap().to_owned()
    };
    let mut native = cargo_on_fixture(&["test", "--lib"]);
    with(native.arg("--").args(args));
    let native = native.output().unwrap();
    let wasm = TARGETS.iter().map(|target| {
        let mut wasm = cargo_through_runner(target, &["test", "--lib"]);
        with(wasm.arg("--").args(args));
        report(&wasm.output().unwrap())
    });
    (report(&native), wasm.collect())
}

/// Native libtest's report of `args` (as [`native_and_wasm_reports`]),
/// once the runner's for each target is found to be the same.
fn report_as_native(args: &[&str], until: &str) -> String {
    report_as_native_with(args, until, |_| {})
}

/// [`report_as_native`], each cargo command changed by `with` first.
fn report_as_native_with(args: &[&str], until: &str, with: impl Fn(&mut Command)) -> String {
    let (native, wasm) = native_and_wasm_reports_with(args, until, with);
    for (target, wasm) in TARGETS.iter().zip(wasm) {
        assert_eq!(wasm, native, "{target}, {args:?}");
    }
    native
}

/// In libtest's terse format a failed test gets a line of its own,
/// `NAME --- FAILED`, the line of marks it cuts short ending with the
/// count so far, and the marks after it start a new line (found by the
/// red team: the runner wrote an `F` among the marks).
#[test]
fn a_failure_in_the_terse_format_gets_its_own_line_as_in_libtest() {
    let args = [
        "-q",
        "--test-threads",
        "1",
        "--exact",
        "tests::ignored_and_passing",
        "tests::passes",
        "tests::returns_an_error",
    ];
    let native = report_as_native(&args, "\nfailures:\n");
    assert_eq!(
        native, "\nrunning 3 tests\ni. 2/3\ntests::returns_an_error --- FAILED\n",
        "native libtest's"
    );
}

/// On one test thread libtest writes `test NAME ... ` before the test runs,
/// so that with `--nocapture` the test's own output follows it on the
/// same line, then the verdict (found by the red team: the runner wrote
/// the output first, then the whole verdict line).
#[test]
fn nocapture_on_one_thread_writes_a_tests_output_after_its_name_as_libtest() {
    let args = ["--nocapture", "--test-threads", "1", "--exact", "tests::passes"];
    let native = report_as_native(&args, "\ntest result: ");
    assert_eq!(
        native, "\nrunning 1 test\ntest tests::passes ... output of a passing test\nok\n",
        "native libtest's"
    );
}

/// `cargo test -q -- --format pretty` is pretty (`--format` wins over
/// `--quiet`, which cargo passes after the arguments), and an option given
/// twice is libtest's error, as natively (found by the red team: the
/// runner went by the last one of each).
#[test]
fn arguments_are_read_as_libtest_reads_them() {
    let args = ["--format", "pretty", "--exact", "tests::passes"];
    let native = cargo_on_fixture(&["test", "--lib", "-q"])
        .arg("--")
        .args(args)
        .output()
        .unwrap();
    let report = |output: &Output| text(&output.stdout).split("\ntest result: ").next().unwrap().to_owned();
    assert_eq!(report(&native), "\nrunning 1 test\ntest tests::passes ... ok\n");
    for target in TARGETS {
        let wasm = cargo_through_runner(target, &["test", "--lib", "-q"])
            .arg("--")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(report(&wasm), report(&native), "{target}");
        let twice = run_fixture(target, &["--color", "always", "--color", "never"]);
        // 101 from a module; a component's exit says only "failed" (1).
        assert!(!twice.status.success(), "{target}");
        assert!(
            text(&twice.stderr).contains("Option 'color' given more than once"),
            "{target}: {}",
            text(&twice.stderr)
        );
    }
}

/// An ignored test's reason (the `ignore` attribute's text) is on its verdict line
/// (`ignored, REASON`), and the terse format gives it after the result
/// line when it is the one test (found by the red team: the runner wrote
/// `ignored` alone, and no reason line).
#[test]
fn an_ignored_tests_reason_is_reported_as_libtest_reports_it() {
    let args = [
        "--test-threads",
        "1",
        "--exact",
        "tests::ignored_and_failing",
        "tests::passes",
    ];
    let native = report_as_native(&args, "\ntest result: ");
    assert!(
        native.contains("test tests::ignored_and_failing ... ignored, fails when run\n"),
        "native libtest's: {native}"
    );
    let (native, wasm) = native_and_wasm_reports(&["-q", "--exact", "tests::ignored_and_failing"], "\nrunning 0 tests");
    let reason = "test: tests::ignored_and_failing, ignore_message: fails when run\n";
    assert!(native.contains(reason), "native libtest's: {native}");
    for (target, wasm) in TARGETS.iter().zip(wasm) {
        assert!(wasm.contains(reason), "{target}: {wasm}");
    }
}

/// On one test thread libtest reports the tests in the harness's order,
/// an ignored one where it comes (found by the red team: the runner
/// reported the ignored tests first).
#[test]
fn on_one_thread_an_ignored_test_is_reported_where_it_comes_as_in_libtest() {
    let args = [
        "--test-threads",
        "1",
        "--exact",
        "tests::fails_an_assertion",
        "tests::ignored_and_passing",
        "tests::passes",
    ];
    let native = report_as_native(&args, "\nfailures:\n");
    assert_eq!(
        native,
        "\nrunning 3 tests\ntest tests::fails_an_assertion ... FAILED\ntest tests::ignored_and_passing ... ignored\ntest tests::passes ... ok\n",
        "native libtest's"
    );
}

/// `--color always` writes the escapes libtest writes: the terminal's own
/// (terminfo's `setaf` and `sgr0`, `\x1b(B\x1b[m` for an xterm), and none
/// where TERM names no terminal (found by the red team: the runner always
/// wrote `\x1b[0m`).
#[test]
fn colours_are_the_terminals_as_libtests_are() {
    let args = [
        "--color",
        "always",
        "--test-threads",
        "1",
        "--exact",
        "tests::ignored_and_passing",
        "tests::passes",
    ];
    for term in [Some("xterm"), None] {
        let native = report_as_native_with(&args, " 1 passed;", |command| {
            match term {
                Some(term) => command.env("TERM", term),
                None => command.env_remove("TERM"),
            };
        });
        match term {
            Some(_) => assert!(
                native.contains("\x1b[32mok\x1b(B\x1b[m"),
                "native libtest's: {native:?}"
            ),
            None => assert!(!native.contains('\x1b'), "native libtest's: {native:?}"),
        }
    }
}

/// A test's output is reported as libtest captures it: its stdout and
/// stderr in one, in the order it wrote them (found by the red team: the
/// runner gave all of its stdout, then all of its stderr).
#[test]
fn a_tests_stdout_and_stderr_are_reported_in_the_order_written() {
    let written = "---- tests::panics stdout ----\nabout to panic\nthen on stdout\n";
    let native = cargo_on_fixture(&["test", "--lib"])
        .args(["--", "--exact", "tests::panics"])
        .output()
        .unwrap();
    assert!(
        text(&native.stdout).contains(written),
        "native libtest's: {}",
        text(&native.stdout)
    );
    for target in TARGETS {
        let stdout = text(&run_fixture(target, &["--exact", "tests::panics"]).stdout);
        assert!(stdout.contains(written), "{target}: {stdout}");
    }
}

/// Verdicts in libtest's colours, an xterm's, with `--color always`; none
/// on a pipe unless asked (`colours_are_the_terminals_as_libtests_are`
/// holds the escapes to native libtest's).
#[test]
fn verdicts_are_coloured_when_asked_and_not_on_a_pipe() {
    let run = |color: &[&str]| {
        let output = wasm_host()
            .arg("test")
            .arg(fixture_binary(TARGETS[0]))
            .args([
                "--exact",
                "tests::passes",
                "tests::panics",
                "tests::ignored_and_passing",
            ])
            .args(color)
            .env("CARGO_MANIFEST_DIR", fixture_dir())
            .env("TERM", "xterm")
            .output()
            .unwrap();
        text(&output.stdout)
    };
    let coloured = run(&["--color", "always"]);
    for painted in [
        "test tests::passes ... \x1b[32mok\x1b(B\x1b[m\n",
        "test tests::panics ... \x1b[31mFAILED\x1b(B\x1b[m\n",
        "test tests::ignored_and_passing ... \x1b[33mignored\x1b(B\x1b[m\n",
        "test result: \x1b[31mFAILED\x1b(B\x1b[m. 1 passed; 1 failed",
    ] {
        assert!(coloured.contains(painted), "no {painted:?} in {coloured:?}");
    }
    let piped = run(&[]);
    assert!(!piped.contains('\x1b'), "{piped}");
    assert_eq!(verdicts(&piped).len(), 3);
}

/// libtest reads RUST_TEST_NOCAPTURE (anything but 0) as `--nocapture`.
#[test]
fn rust_test_nocapture_shows_a_passing_tests_output_as_it_comes() {
    let run = |value| {
        let output = wasm_host()
            .arg("test")
            .arg(fixture_binary(TARGETS[0]))
            .args(["--exact", "tests::passes"])
            .env("RUST_TEST_NOCAPTURE", value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        text(&output.stdout).contains("output of a passing test")
    };
    assert!(run("1"));
    assert!(!run("0"));
}

/// libtest refuses a RUST_TEST_THREADS that is no positive number (where
/// no --test-threads is given) rather than run on every CPU (found by the
/// red team: the runner ignored it).
#[test]
fn a_rust_test_threads_that_is_no_count_is_refused_as_libtest_refuses_it() {
    let refused = "RUST_TEST_THREADS is `0`, should be a positive integer";
    let native = cargo_on_fixture(&["test", "--lib"])
        .args(["--", "--exact", "tests::passes"])
        .env("RUST_TEST_THREADS", "0")
        .output()
        .unwrap();
    assert!(!native.status.success());
    assert!(
        text(&native.stderr).contains(refused),
        "native libtest's: {}",
        text(&native.stderr)
    );
    let run = |args: &[&str]| {
        wasm_host()
            .arg("test")
            .arg(fixture_binary(TARGETS[0]))
            .args(["--exact", "tests::passes"])
            .args(args)
            .env("RUST_TEST_THREADS", "0")
            .output()
            .unwrap()
    };
    let output = run(&[]);
    assert!(!output.status.success(), "{}", text(&output.stdout));
    assert!(text(&output.stderr).contains(refused), "{}", text(&output.stderr));
    assert_eq!(
        run(&["--test-threads", "2"]).status.code(),
        Some(0),
        "the argument wins"
    );
    // A program that is no harness reads no RUST_TEST_THREADS.
    let program = wasm_host()
        .args(["test", "--env", "APP_MODE=test"])
        .arg(xtask::guests::artifact("config_reader").unwrap())
        .env("RUST_TEST_THREADS", "0")
        .output()
        .unwrap();
    assert_eq!(program.status.code(), Some(0), "{}", text(&program.stderr));
}

#[test]
fn nothing_is_granted_without_the_packages_metadata_or_a_flag() {
    let args = ["granted", "--skip", "never_ends"];
    let bare = wasm_host()
        .arg("test")
        .arg(fixture_binary(TARGETS[0]))
        .args(args)
        .env_remove("CARGO_MANIFEST_DIR")
        .output()
        .unwrap();
    assert_eq!(
        verdicts(&text(&bare.stdout)),
        verdict_map(&[
            ("reads_its_granted_package_directory", "FAILED"),
            ("sees_its_granted_variable", "FAILED")
        ])
    );
    // Flags grant as `run`'s do, at the guest path given: the package
    // directory at its absolute path and at ".".
    let dir = fixture_dir().canonicalize().unwrap();
    let flagged = wasm_host()
        .args(["test", "--env", "FIXTURE_GREETING=hello", "--dir-ro"])
        .arg(&dir)
        .arg("--dir-ro")
        .arg(format!("{}::.", dir.display()))
        .arg(fixture_binary(TARGETS[0]))
        .args(args)
        .env_remove("CARGO_MANIFEST_DIR")
        .output()
        .unwrap();
    assert_eq!(flagged.status.code(), Some(0), "{}", text(&flagged.stdout));
}

#[test]
fn the_junit_and_json_reports_list_every_test() {
    let dir = tempfile::tempdir().unwrap();
    let (junit, json) = (dir.path().join("junit.xml"), dir.path().join("report.json"));
    let output = wasm_host()
        .arg("test")
        .arg("--junit")
        .arg(&junit)
        .arg("--json-report")
        .arg(&json)
        .arg(fixture_binary(TARGETS[1]))
        .args(["--skip", "never_ends"])
        .env("CARGO_MANIFEST_DIR", fixture_dir())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(101));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let tests = report["results"][0]["tests"].as_array().unwrap();
    let outcomes: BTreeMap<&str, &str> = tests
        .iter()
        .map(|test| (test["name"].as_str().unwrap(), test["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(outcomes.len(), 10, "{outcomes:?}");
    assert_eq!(outcomes["tests::panics"], "fail");
    assert_eq!(outcomes["tests::passes"], "pass");
    assert_eq!(outcomes["tests::ignored_and_failing"], "skip");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 10, "{xml}");
    assert!(xml.contains("a deliberate panic"), "the failure's own output: {xml}");
}

#[test]
fn a_program_that_is_no_harness_runs_as_wasm_host_run_runs_it() {
    let module = xtask::guests::artifact("config_reader").unwrap();
    let output = wasm_host()
        .args(["test", "--env", "APP_MODE=test"])
        .arg(&module)
        .arg("--list")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "mode=test\nlog_level=info\n");
}

/// A program run whole (a `harness = false` test, merged doctests) that
/// traps gets its wasm backtrace when `RUST_BACKTRACE` asks, as a test of
/// a harness does (natively std prints a panic's), and none otherwise.
#[test]
fn rust_backtrace_shows_a_trapped_programs_wasm_frames() {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("program.wat");
    std::fs::write(
        &program,
        r#"(module (func $fails_here (unreachable)) (func (export "_start") (call $fails_here)))"#,
    )
    .unwrap();
    let stderr = |backtrace: Option<&str>| {
        let mut command = wasm_host();
        command.arg("test").arg(&program).env_remove("CARGO_MANIFEST_DIR");
        match backtrace {
            Some(value) => command.env("RUST_BACKTRACE", value),
            None => command.env_remove("RUST_BACKTRACE"),
        };
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(134), "{}", text(&output.stderr));
        text(&output.stderr)
    };
    for asked in ["1", "full"] {
        let stderr = stderr(Some(asked));
        assert!(
            stderr.contains("wasm backtrace:") && stderr.contains("!fails_here"),
            "RUST_BACKTRACE={asked}: {stderr}"
        );
    }
    for unasked in [None, Some("0")] {
        let stderr = stderr(unasked);
        assert!(!stderr.contains("wasm backtrace:"), "{unasked:?}: {stderr}");
    }
}

/// A program run whole reads wasm-host's own stdin through the worker that
/// reads descriptor 0: its bytes, and an error where it cannot be read (a
/// directory), not an end of input.
#[test]
fn a_program_run_whole_reads_wasm_hosts_stdin_and_its_errors() {
    let module = xtask::guests::artifact("csv_processor").unwrap();
    let module = module.to_str().unwrap();
    // The timeout bounds a run that never sees its input end.
    let args = ["test", "--timeout", "20s", module];
    let piped = support::run_with_stdin(&args, b"1,2,3\n");
    assert_eq!((piped.status.code(), text(&piped.stdout).trim()), (Some(0), "6"));

    let directory = tempfile::tempdir().unwrap();
    let unreadable = wasm_host()
        .args(args)
        .stdin(std::fs::File::open(directory.path()).unwrap())
        .output()
        .unwrap();
    assert_eq!(unreadable.status.code(), Some(1), "{}", text(&unreadable.stderr));
    assert!(
        text(&unreadable.stderr).contains("cannot read stdin"),
        "{}",
        text(&unreadable.stderr)
    );
}

/// Native `cargo test` of the fixture (no test that never ends), then the
/// same through cargo with wasm-host as each target's runner: the same
/// verdict for every test both can run, and the same exit status.
#[test]
fn cargo_test_with_the_runner_gives_native_verdicts() {
    let libtest_args = ["--", "--skip", "never_ends", "--include-ignored"];
    let native = cargo_on_fixture(&["test"]).args(libtest_args).output().unwrap();
    let mut native_verdicts = verdicts(&text(&native.stdout));
    // Natively a panic unwinds, so libtest can check it; not under wasm.
    assert_eq!(
        native_verdicts.remove("tests::should_panic - should panic").as_deref(),
        Some("ok")
    );
    assert_eq!(native_verdicts.len(), 6, "{}", text(&native.stdout));
    for target in TARGETS {
        let wasm = cargo_through_runner(target, &["test"])
            .args(libtest_args)
            .output()
            .unwrap();
        let mut wasm_verdicts = verdicts(&text(&wasm.stdout));
        assert!(
            wasm_verdicts
                .remove("tests::should_panic")
                .unwrap()
                .starts_with("ignored, #[should_panic]")
        );
        let sandbox_only: Vec<String> = wasm_verdicts
            .extract_if(.., |name, _| !native_verdicts.contains_key(name))
            .map(|(name, _)| name)
            .collect();
        assert_eq!(sandbox_only.len(), 3, "the grant tests, wasm only: {sandbox_only:?}");
        assert_eq!(wasm_verdicts, native_verdicts, "{target}: {}", text(&wasm.stdout));
        assert_eq!(wasm.status.code(), native.status.code(), "{target}");
    }
}

/// `RUST_BACKTRACE` gives a panicking test's wasm backtrace under its
/// failure, as std prints a native one: `1` the frames of the test's own
/// code (std's short backtrace, names without hashes), `full` all.
#[test]
fn rust_backtrace_shows_a_failed_tests_wasm_frames() {
    for target in TARGETS {
        let failure = |backtrace: Option<&str>| {
            let mut command = wasm_host();
            command
                .arg("test")
                .arg(fixture_binary(target))
                .args(["--exact", "tests::fails_an_assertion"])
                .env("CARGO_MANIFEST_DIR", fixture_dir());
            match backtrace {
                Some(value) => command.env("RUST_BACKTRACE", value),
                None => command.env_remove("RUST_BACKTRACE"),
            };
            let output = command.output().unwrap();
            assert_eq!(output.status.code(), Some(101), "{target}");
            let stdout = text(&output.stdout);
            let (_, failure) = stdout.split_once("---- tests::fails_an_assertion stdout ----").unwrap();
            failure.split_once("\n\n\n").unwrap().0.to_owned()
        };
        for unset in [failure(None), failure(Some("0"))] {
            assert!(!unset.contains("wasm backtrace:"), "{target}: {unset}");
        }
        let short = failure(Some("1"));
        let (reason, frames) = short.split_once("wasm backtrace:\n").expect(&short);
        assert!(reason.contains("arithmetic is broken"), "{target}: {short}");
        let test_frame = frames
            .lines()
            .find(|line| line.contains("fails_an_assertion"))
            .expect(&short);
        assert!(
            test_frame.ends_with("!test_fixture::tests::fails_an_assertion"),
            "{target}: {short}"
        );
        assert!(frames.contains("::panicking::assert_failed"), "{target}: {short}");
        assert!(
            !frames.contains("short_backtrace") && !frames.contains("!abort"),
            "{target}: {short}"
        );
        let full = failure(Some("full"));
        assert!(
            full.contains("__rust_end_short_backtrace") && full.contains("!abort"),
            "{target}: {full}"
        );
    }
}

/// A harness by its bytes (libtest's entry point named in them) whose one
/// test, `the_test`, calls `$test` of `functions`.
fn one_test_harness(functions: &str) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "the_test: test\n")
  (data (i32.const 200) "test_main_static")
  {functions}
  (func (export "_start")
    ;; `--list --format terse` (3 arguments) lists the test; with
    ;; `--ignored` (4) none; anything else runs it.
    (drop (call $sizes (i32.const 0) (i32.const 4)))
    (if (i32.eq (i32.load (i32.const 0)) (i32.const 4))
      (then
        (i32.store (i32.const 16) (i32.const 100))
        (i32.store (i32.const 20) (i32.const 15))
        (drop (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))
        (call $exit (i32.const 0))))
    (if (i32.eq (i32.load (i32.const 0)) (i32.const 5))
      (then (call $exit (i32.const 0))))
    (call $test)))"#
    )
}

/// `wasm-host test HARNESS` (a WAT file in `dir`) with `RUST_BACKTRACE`
/// set to `backtrace`: its report on stdout.
fn failed_harness_report(dir: &std::path::Path, harness: &str, backtrace: &str) -> String {
    let path = dir.join("harness.wat");
    std::fs::write(&path, harness).unwrap();
    let output = wasm_host()
        .arg("test")
        .arg(&path)
        .env("RUST_BACKTRACE", backtrace)
        .env_remove("CARGO_MANIFEST_DIR")
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(101), "{stdout}");
    assert!(stdout.contains("wasm backtrace:"), "{stdout}");
    stdout
}

/// The name section is the module's: a function name holding a line
/// break and other control characters must not forge a line of the report.
const HOSTILE_NAME: &str = r#"$"evil\ntest forged ... ok\r\u{1b}[31m""#;

#[test]
fn a_function_name_cannot_forge_a_line_of_a_wasm_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let harness = one_test_harness(&format!(
        "(func {HOSTILE_NAME} (unreachable)) (func $test (call {HOSTILE_NAME}))"
    ));
    for backtrace in ["1", "full"] {
        let stdout = failed_harness_report(dir.path(), &harness, backtrace);
        assert!(
            !stdout.lines().any(|line| line.starts_with("test forged")),
            "RUST_BACKTRACE={backtrace}: {stdout}"
        );
        assert!(stdout.contains(r"evil\ntest forged ... ok\r\u{1b}[31m"), "{stdout}");
    }
    // `wasm-host run` prints the same backtrace.
    let output = wasm_host()
        .arg("run")
        .arg(dir.path().join("harness.wat"))
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(stderr.contains("wasm backtrace:"), "{stderr}");
    assert!(!stderr.lines().any(|line| line.starts_with("test forged")), "{stderr}");
}

/// A test that fails deep in its helpers (as natively, where std prints
/// every frame) still has its own frame in the backtrace RUST_BACKTRACE
/// asks for: Wasmtime keeps only the 20 innermost by default, and a
/// panic's own machinery takes half of them.
#[test]
fn rust_backtrace_reaches_a_test_that_failed_deep_in_its_helpers() {
    let dir = tempfile::tempdir().unwrap();
    let helpers: String = (1..40)
        .map(|depth| format!("(func $helper{depth} (call $helper{}))", depth - 1))
        .collect();
    let harness = one_test_harness(&format!(
        "(func $helper0 (unreachable)) {helpers} (func $test (call $helper39))"
    ));
    for backtrace in ["1", "full"] {
        let stdout = failed_harness_report(dir.path(), &harness, backtrace);
        assert!(stdout.contains("!test\n"), "RUST_BACKTRACE={backtrace}: {stdout}");
    }
}

/// rustdoc's merged doctests (edition 2024) cannot be listed or run one at
/// a time (their arguments are compiled in): through the runner they run
/// whole in one instance, as under any runner, with the verdicts native
/// `cargo test --doc` gives them; a failing one ends the rest, and the
/// runner says so.
#[test]
fn merged_doctests_run_whole_with_native_verdicts() {
    let doctests = |target: Option<&'static str>, args: &[&str]| {
        let mut cargo = match target {
            Some(target) => cargo_through_runner(target, &["test", "--doc"]),
            None => cargo_on_fixture(&["test", "--doc"]),
        };
        cargo.arg("--").args(args).output().unwrap()
    };
    let native = doctests(None, &[]);
    let native_verdicts = verdicts(&text(&native.stdout));
    let [(passing, ok), (failing, failed)] = [0, 1].map(|i| native_verdicts.iter().nth(i).unwrap());
    assert!(passing.contains("add_one") && ok == "ok", "{native_verdicts:?}");
    assert!(
        failing.contains("broken_example") && failed == "FAILED",
        "{native_verdicts:?}"
    );
    let native_passing = doctests(None, &["add_one"]);
    assert!(native_passing.status.success());
    for target in TARGETS {
        let wasm = doctests(Some(target), &["add_one"]);
        let stdout = text(&wasm.stdout);
        assert!(wasm.status.success(), "{target}: {stdout}{}", text(&wasm.stderr));
        assert_eq!(verdicts(&stdout), verdicts(&text(&native_passing.stdout)), "{target}");
        assert!(stdout.contains("1 passed; 0 failed"), "{target}: {stdout}");

        // The failing one is the last begun: its line is cut after its name
        // (rustdoc's own line follows).
        let wasm = doctests(Some(target), &[]);
        let (stdout, stderr) = (text(&wasm.stdout), text(&wasm.stderr));
        assert_eq!(wasm.status.code(), native.status.code(), "{target}: {stdout}{stderr}");
        let wasm_verdicts = verdicts(&stdout);
        assert_eq!(wasm_verdicts.get(passing), Some(ok), "{target}: {stdout}");
        let cut = wasm_verdicts.get(failing).unwrap();
        assert!(cut.starts_with("all doctests ran"), "{target}: {stdout}");
        assert_eq!(wasm_verdicts.len(), 2, "{target}: {stdout}");
        assert!(
            stderr.contains("so this doctest's trap ended the rest"),
            "{target}: {stderr}"
        );
        assert!(
            !stderr.contains("a failing doctest"),
            "{target}: captured, as libtest captures it"
        );

        let wasm = doctests(Some(target), &["--nocapture"]);
        assert!(
            text(&wasm.stderr).contains("a failing doctest"),
            "{target}: {}",
            text(&wasm.stderr)
        );
    }
}

/// A test's output past `--max-output` (1 MiB by default) is dropped, as
/// `wasm-host run` drops it, and said so, as `run` says it: natively
/// libtest keeps it all. A listing cut so would lose tests: an error.
#[test]
fn output_cut_at_max_output_is_said_and_a_cut_listing_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let harness = dir.path().join("harness.wat");
    // Its test writes its listing's line (15 bytes) three times.
    let say = r#"(func $say
        (i32.store (i32.const 16) (i32.const 100))
        (i32.store (i32.const 20) (i32.const 15))
        (drop (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24))))"#;
    std::fs::write(
        &harness,
        one_test_harness(&format!("{say} (func $test (call $say) (call $say) (call $say))")),
    )
    .unwrap();
    let run = |args: &[&str]| {
        wasm_host()
            .arg("test")
            .args(args)
            .arg(&harness)
            .arg("--nocapture")
            .env_remove("CARGO_MANIFEST_DIR")
            .output()
            .unwrap()
    };
    let cut = run(&["--max-output", "20"]);
    let (stdout, stderr) = (text(&cut.stdout), text(&cut.stderr));
    assert_eq!(cut.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
    assert!(
        stderr.contains("wasm-host: the_test: stdout was cut at the --max-output limit"),
        "{stderr}"
    );
    let whole = run(&[]);
    assert!(!text(&whole.stderr).contains("was cut"), "{}", text(&whole.stderr));

    let listing = run(&["--max-output", "5"]);
    let stderr = text(&listing.stderr);
    assert_eq!(listing.status.code(), Some(126), "{}{stderr}", text(&listing.stdout));
    assert!(stderr.contains("--max-output"), "{stderr}");
}

/// Merged doctests run whole in one instance, so a test's timeout (the
/// package's or the runner's) is theirs together: one that never ends
/// still ends, and the runner says how to give them longer. Here merged
/// doctests by their bytes (the variable rustdoc's runner reads, and its
/// crate's name), which sleep 300ms.
#[test]
fn merged_doctests_share_one_tests_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let doctests = dir.path().join("doctests.wat");
    std::fs::write(
        &doctests,
        r#"(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 400) "RUSTDOC_DOCTEST_RUN_NB_TEST")
  (func $doctest_runner_2024::main)
  (func (export "_start")
    ;; One subscription: the monotonic clock, 300ms from now.
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 300000000))
    (drop (call $poll (i32.const 0) (i32.const 128) (i32.const 1) (i32.const 256)))))"#,
    )
    .unwrap();
    let run = |timeout: &str| {
        wasm_host()
            .args(["test", "--timeout", timeout])
            .arg(&doctests)
            .env_remove("CARGO_MANIFEST_DIR")
            .output()
            .unwrap()
    };
    let cut = run("100ms");
    let stderr = text(&cut.stderr);
    assert_eq!(cut.status.code(), Some(142), "{stderr}");
    assert!(
        stderr.contains("the timeout of one test is theirs together"),
        "{stderr}"
    );
    let given_longer = run("2s");
    assert_eq!(given_longer.status.code(), Some(0), "{}", text(&given_longer.stderr));
}

/// nextest lists through the runner, then runs one test per invocation
/// (`--exact NAME --nocapture`): the same verdicts as native `cargo test`,
/// the test that never ends cut at the package's timeout, the grant tests
/// (wasm only) passing.
#[test]
fn nextest_with_the_runner_gives_native_verdicts() {
    let native = cargo_on_fixture(&["test"])
        .args(["--", "--skip", "never_ends"])
        .output()
        .unwrap();
    let mut expected = verdicts(&text(&native.stdout));
    expected.retain(|_, verdict| !verdict.starts_with("ignored"));
    expected.remove("tests::should_panic - should panic");
    expected.insert("tests::never_ends".to_owned(), "FAILED".to_owned());
    // The package's grants hold under nextest too (it sets CARGO_MANIFEST_DIR).
    expected.extend(verdict_map(&[
        ("cannot_write_to_its_read_only_directory", "ok"),
        ("reads_its_granted_package_directory", "ok"),
        ("sees_its_granted_variable", "ok"),
    ]));
    for target in TARGETS {
        let nextest = cargo_through_runner(target, &["nextest", "run", "--no-fail-fast"])
            .output()
            .unwrap();
        let mut got = nextest_verdicts(&text(&nextest.stderr));
        // nextest passes a test libtest reports as ignored.
        assert_eq!(
            got.remove("tests::should_panic").as_deref(),
            Some("ok"),
            "{target}: {}",
            text(&nextest.stderr)
        );
        assert_eq!(got, expected, "{target}: {}", text(&nextest.stderr));
        assert_eq!(
            nextest.status.code(),
            Some(100),
            "{target}: nextest's status when a test failed"
        );
    }
}

/// A copy of the fixture's test binary for `target` in `dir`, so that the
/// durations its runs remember beside it are its own.
fn fixture_copy(target: &'static str, dir: &std::path::Path) -> PathBuf {
    let binary = dir.join(format!("fixture-{target}.wasm"));
    std::fs::copy(fixture_binary(target), &binary).unwrap();
    binary
}

fn run_binary(binary: &std::path::Path, args: &[&str]) -> Output {
    wasm_host()
        .arg("test")
        .arg(binary)
        .args(args)
        .env("CARGO_MANIFEST_DIR", fixture_dir())
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

/// `MICROSECONDS<TAB>NAME` lines of a durations file, by name.
fn remembered(path: &std::path::Path) -> BTreeMap<String, u64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let (micros, name) = line.split_once('\t').unwrap();
            (name.to_owned(), micros.parse().unwrap())
        })
        .collect()
}

/// Each test's duration is remembered beside the binary for the next run
/// to start the longest first; what was remembered of tests no longer
/// listed is dropped, and what was planted there (lines, a FIFO, a
/// directory) changes no verdict and hangs nothing.
#[test]
fn durations_are_remembered_beside_the_binary_and_a_planted_file_changes_no_verdict() {
    let dir = tempfile::tempdir().unwrap();
    for target in TARGETS {
        let binary = fixture_copy(target, dir.path());
        let durations = dir.path().join(format!("fixture-{target}.wasm.wasm-host-durations"));
        let args = ["--exact", "tests::passes", "tests::panics", "--test-threads", "2"];
        let expected = verdict_map(&[("passes", "ok"), ("panics", "FAILED")]);
        let run = |planted: &str| {
            let output = run_binary(&binary, &args);
            assert_eq!(
                output.status.code(),
                Some(101),
                "{target}, {planted}: {}",
                text(&output.stderr)
            );
            assert_eq!(verdicts(&text(&output.stdout)), expected, "{target}, {planted}");
        };

        std::fs::write(&durations, "1\ttests::gone\n100000000\ttests::passes\nnot a line\n").unwrap();
        run("lines");
        let kept = remembered(&durations);
        assert_eq!(
            kept.keys().collect::<Vec<_>>(),
            ["tests::panics", "tests::passes"],
            "{target}"
        );
        assert!(kept["tests::passes"] < 100_000_000, "{target}: {kept:?}");

        std::fs::remove_file(&durations).unwrap();
        support::mkfifo(&durations);
        run("a FIFO");
        assert_eq!(remembered(&durations).len(), 2, "{target}: the FIFO replaced");

        std::fs::remove_file(&durations).unwrap();
        std::fs::create_dir(&durations).unwrap();
        run("a directory");
        std::fs::remove_dir(&durations).unwrap();
    }
    // Nothing left behind but the binaries.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), TARGETS.len());
}

/// On one thread the order changes no wall time: tests run in the
/// harness's order (as libtest runs them), whatever was remembered.
#[test]
fn one_test_thread_keeps_the_harness_order_whatever_was_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let binary = fixture_copy(TARGETS[0], dir.path());
    let durations = dir
        .path()
        .join(format!("fixture-{}.wasm.wasm-host-durations", TARGETS[0]));
    let tests = ["tests::fails_an_assertion", "tests::panics", "tests::passes"];
    let planted: String = (tests.iter().enumerate())
        .map(|(i, name)| format!("{}\t{name}\n", i + 1))
        .collect();
    std::fs::write(&durations, planted).unwrap();
    let output = run_binary(&binary, &[&["--exact", "--test-threads", "1"][..], &tests[..]].concat());
    let order: Vec<String> = text(&output.stdout)
        .lines()
        .filter_map(|line| Some(line.strip_prefix("test ")?.split_once(" ... ")?.0.to_owned()))
        .collect();
    assert_eq!(order, tests, "{}", text(&output.stdout));
}

/// A report asked for in a directory the tests are granted read-write
/// replaces a symbolic link a guest planted at its name (WASI's
/// `path_symlink` takes any relative target) rather than writing through
/// it to a file outside the grant (here `victim`) with the report, which
/// carries the guest's own output (found by the red team).
#[test]
fn a_report_in_a_granted_directory_is_not_written_through_a_guests_link() {
    let (granted, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let up = "../".repeat(granted.path().components().count());
    let target = format!("{up}{}", victim.display().to_string().trim_start_matches('/'));
    let plant = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_symlink" (func $symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "{target}")
  (data (i32.const 2048) "junit.xml")
  (func (export "_start")
    (call $exit (call $symlink (i32.const 256) (i32.const {}) (i32.const 3) (i32.const 2048) (i32.const 9)))))"#,
        target.len()
    );
    let wat = outside.path().join("plant.wat");
    std::fs::write(&wat, plant).unwrap();
    let planted = wasm_host()
        .arg("run")
        .arg("--dir")
        .arg(format!("{}::.", granted.path().display()))
        .arg(&wat)
        .env("WASM_HOST_CACHE", "off")
        .output()
        .unwrap();
    assert_eq!(planted.status.code(), Some(0), "{}", text(&planted.stderr));
    let output = wasm_host()
        .arg("test")
        .arg("--dir")
        .arg(granted.path())
        .arg("--junit")
        .arg(granted.path().join("junit.xml"))
        .arg(fixture_binary(TARGETS[0]))
        .args(["--skip", "never_ends"])
        .env("CARGO_MANIFEST_DIR", fixture_dir())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(101), "{}", text(&output.stderr));
    let now = std::fs::read_to_string(&victim).unwrap();
    assert_eq!(
        now, "precious",
        "a file outside the grant was overwritten by the report"
    );
}
