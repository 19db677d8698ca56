//! `wasm-host run` and the top-level command line, driven as a user would:
//! grants reach the guest, the guest's exit code becomes the process's,
//! output streams as it is written, and every way a module can fail to start
//! gives a one-line message and the documented status.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Output, Stdio};

use tempfile::TempDir;

use crate::support::{self, run_with_stdin, text, wasm_host};

// The statuses `wasm-host run --help` documents.
pub(crate) const USAGE: i32 = 2;
pub(crate) const LOAD_ERROR: i32 = 126;
pub(crate) const TRAP: i32 = 134;
pub(crate) const TIMEOUT: i32 = 142;
const OUT_OF_FUEL: i32 = 152;

fn run(args: &[&str]) -> Output {
    wasm_host().args(args).stdin(Stdio::null()).output().unwrap()
}

/// A program of the conformance suite, whose WAT source wasm-host runs directly.
fn suite_program(name: &str) -> String {
    let path = support::shared_test_file(&format!("conformance/wasi/{name}.wat"));
    path.to_str().unwrap().to_owned()
}

/// Writes a WAT module into `dir` and returns its path.
fn wat_file(dir: &TempDir, name: &str, source: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, source).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Asserts the documented status and a single stderr line saying `expected`,
/// followed only by indented lines: a trap's wasm backtrace, a WAT error's
/// source excerpt.
pub(crate) fn assert_fails(output: &Output, status: i32, expected: &[&str]) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(status), "stderr: {stderr}");
    let mut lines = stderr.lines();
    let message = lines.next().unwrap_or_default();
    let detail = |line: &str| line.starts_with(' ') || (status == TRAP && line == "wasm backtrace:");
    assert!(lines.all(detail), "one line, then details: {stderr:?}");
    for part in expected {
        assert!(message.contains(part), "{stderr:?} does not say {part:?} first");
    }
    assert!(stderr.starts_with("wasm-host: "), "{stderr}");
}

#[test]
fn version_prints_the_name_and_version_the_adapter_contract_wants() {
    let output = run(&["--version"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        text(&output.stdout),
        format!("wasm-host {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_help_of_every_subcommand_documents_its_options_and_statuses() {
    let cases: [(&[&str], &[&str]); 5] = [
        (
            &["--help"],
            &["run", "serve", "conformance", "completions", "126", "134", "142", "152"],
        ),
        (
            &["serve", "--help"],
            &[
                "--addr <HOST:PORT>",
                "[default: 0.0.0.0:8080]",
                "--allow-http <ADDR>",
                "--env <NAME[=VAL]>",
                "--timeout <DURATION>",
                "<COMPONENT>",
                "Serving HTTP on http://ADDR/",
                "SIGTERM",
            ],
        ),
        (
            &["run", "--help"],
            &[
                "--env <NAME[=VAL]>",
                "--argv0 <NAME>",
                "--dir <HOST[::GUEST]>",
                "--dir-ro",
                "--arg <ARG>",
                "--allow-http <ADDR>",
                "--capture",
                "--timeout <DURATION>",
                "[default: 10s]",
                "--fuel <N>",
                "--max-memory <BYTES>",
                "[default: 256M]",
                "--max-output <BYTES>",
                "--max-descriptors <N>",
                "--max-function-locals <N>",
                "--compile-timeout <DURATION>",
                "[default: 1m]",
                "[default: 256]",
                "--max-stack <BYTES>",
                "<MODULE>",
                "0-125",
                "126",
                "134",
                "142",
                "152",
            ],
        ),
        (
            &["conformance", "--help"],
            &[
                "<DIR>",
                "--jobs <N>",
                "--filter <GLOB>",
                "--partition <KIND:K/N>",
                "--expectations <FILE>",
                "\"root\"",
                "\"operations\"",
                "--json-report <FILE>",
                "--junit <FILE>",
                "--adapter <ADAPTER.py>",
                "--timeout",
                "manifest.json",
                "*.cleanup",
                "N passed, N failed",
                "126",
            ],
        ),
        (&["help", "run"], &["--dir-ro", "142"]),
    ];
    for (args, expected) in cases {
        let output = run(args);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        let help = text(&output.stdout);
        for part in expected {
            assert!(
                help.contains(part),
                "`wasm-host {}` does not mention {part}",
                args.join(" ")
            );
        }
    }
}

#[test]
fn a_module_file_that_does_not_exist_is_a_load_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.wasm");
    let output = run(&["run", missing.to_str().unwrap()]);
    assert_fails(&output, LOAD_ERROR, &["cannot read module", missing.to_str().unwrap()]);
}

#[test]
fn a_file_that_is_not_a_wasm_module_is_a_load_error() {
    let dir = tempfile::tempdir().unwrap();
    let text_file = wat_file(&dir, "notes.wasm", "just some notes\n");
    assert_fails(
        &run(&["run", &text_file]),
        LOAD_ERROR,
        &["notes.wasm is not a valid WebAssembly module"],
    );
    let truncated = dir.path().join("truncated.wasm");
    std::fs::write(&truncated, b"\0asm\x01\0\0\0\x01").unwrap();
    assert_fails(
        &run(&["run", truncated.to_str().unwrap()]),
        LOAD_ERROR,
        &["truncated.wasm is not a valid WebAssembly module"],
    );
}

#[test]
fn a_module_without_start_is_a_load_error() {
    let dir = tempfile::tempdir().unwrap();
    let library = wat_file(
        &dir,
        "library.wat",
        r#"(module (func (export "add") (param i32 i32) (result i32) local.get 0))"#,
    );
    assert_fails(
        &run(&["run", &library]),
        LOAD_ERROR,
        &["library.wat does not export `_start`"],
    );
}

#[test]
fn an_unknown_import_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let module = wat_file(
        &dir,
        "needs_more.wat",
        r#"(module (import "env" "launch_missiles" (func)) (func (export "_start")))"#,
    );
    assert_fails(
        &run(&["run", &module]),
        LOAD_ERROR,
        &["needs_more.wat imports `env::launch_missiles`"],
    );
}

#[test]
fn granting_a_directory_that_does_not_exist_is_a_load_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let output = run(&["run", "--dir", missing.to_str().unwrap(), &suite_program("fs_read")]);
    assert_fails(
        &output,
        LOAD_ERROR,
        &["fs_read.wat", "cannot grant directory", missing.to_str().unwrap()],
    );
}

#[test]
fn a_bad_command_line_is_a_usage_error() {
    let program = suite_program("exit_returns");
    let cases: [(&[&str], &str); 6] = [
        (&["run"], "<MODULE>"),
        (
            &["run", "--timeout", "5", &program],
            "expected a duration such as `500ms`",
        ),
        (&["run", "--env", "=x", &program], "not NAME=VALUE or NAME"),
        (
            &["run", "--env", "WASM_HOST_TEST_NEVER_SET", &program],
            "WASM_HOST_TEST_NEVER_SET is not set in wasm-host's environment",
        ),
        (
            &["run", "--max-memory", "12X", &program],
            "expected a byte count such as `4096`",
        ),
        (&["completions", "tcsh"], "possible values: bash"),
    ];
    for (args, says) in cases {
        let output = run(args);
        assert_eq!(output.status.code(), Some(USAGE), "{args:?}");
        assert!(
            text(&output.stderr).contains(says),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
}

#[test]
fn args_and_env_reach_the_guest_and_everything_after_the_module_is_an_argument() {
    let output = run(&[
        "run",
        "--env",
        "E1=env1",
        "--env",
        "E2=env2",
        "--arg",
        "a1",
        &suite_program("args_env_echo"),
        "a2",
        "--env",
        "-x",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "a1\na2\n--env\n-x\nE1=env1\nE2=env2\n");
}

#[test]
fn the_hosts_own_environment_is_never_passed() {
    let output = wasm_host()
        .args(["run", &suite_program("no_args_or_env_by_default")])
        .env("WASM_HOST_TEST_SECRET", "leaked")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "exit 1: extra args, 2: env present");
    assert_eq!(text(&output.stdout), "nothing granted\n");
}

fn data_dir() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hello through the command line\n").unwrap();
    dir
}

#[test]
fn a_granted_directory_reaches_the_guest_at_its_guest_path() {
    let dir = data_dir();
    let grant = format!("{}::/data", dir.path().display());
    let output = run(&["run", "--dir-ro", &grant, &suite_program("fs_read")]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "hello through the command line\n");
}

#[test]
fn a_read_only_grant_refuses_writes_and_a_read_write_grant_allows_them() {
    let dir = data_dir();
    let written = dir.path().join("written.cleanup");
    let host_path = dir.path().to_str().unwrap();

    let refused = run(&["run", "--dir-ro", host_path, &suite_program("fs_write_read")]);
    // fs_write_read exits with the errno WASI returned: 63, perm.
    assert_eq!(refused.status.code(), Some(63), "{}", text(&refused.stderr));
    assert!(!written.exists(), "nothing was created through a read-only grant");

    let allowed = run(&["run", "--dir", host_path, &suite_program("fs_write_read")]);
    assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed.stderr));
    assert_eq!(text(&allowed.stdout), "written by the guest\n");
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "written by the guest\n");
}

#[test]
fn the_guests_exit_code_is_the_exit_status() {
    let proc_exit_13 = support::shared_test_file("fixtures/proc_exit_13.wat");
    for (program, code) in [
        (proc_exit_13.to_str().unwrap().to_owned(), 13),
        (suite_program("exit_code_125"), 125),
        (suite_program("exit_returns"), 0),
    ] {
        let output = run(&["run", &program]);
        assert_eq!(output.status.code(), Some(code), "{program}");
        assert!(output.stderr.is_empty(), "a guest's own exit needs no message");
    }
}

#[test]
fn a_trap_gives_the_trap_status_and_names_the_trap() {
    let dir = tempfile::tempdir().unwrap();
    let module = wat_file(
        &dir,
        "crash.wat",
        r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#,
    );
    assert_fails(&run(&["run", &module]), TRAP, &["crash.wat trapped: unreachable"]);
}

#[test]
fn a_trap_shows_the_wasm_backtrace_with_names_unless_asked_not_to() {
    let dir = tempfile::tempdir().unwrap();
    let module = wat_file(
        &dir,
        "nested.wat",
        r#"(module
             (func $inner_function unreachable)
             (func $outer_function (call $inner_function))
             (func (export "_start") (call $outer_function)))"#,
    );
    let output = run(&["run", &module]);
    assert_fails(&output, TRAP, &["nested.wat trapped: unreachable"]);
    let stderr = text(&output.stderr);
    let (_, frames) = stderr.split_once("wasm backtrace:\n").expect(&stderr);
    let inner = frames.find("inner_function").expect(&stderr);
    let outer = frames.find("outer_function").expect(&stderr);
    assert!(inner < outer, "innermost frame first: {stderr}");

    let quiet = run(&["run", "--no-backtrace", &module]);
    assert_eq!(quiet.status.code(), Some(TRAP));
    let stderr = text(&quiet.stderr);
    assert!(
        stderr.starts_with("wasm-host: nested.wat trapped: unreachable"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "no backtrace: {stderr}");
}

#[test]
fn a_wat_error_names_the_file_line_and_column_and_shows_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let module = wat_file(&dir, "typo.wat", "(module\n  (func (export \"_start\") i32.konst 1))\n");
    let output = run(&["run", &module]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(LOAD_ERROR), "{stderr}");
    let mut lines = stderr.lines();
    let first = lines.next().unwrap();
    assert!(
        first.starts_with("wasm-host: error: typo.wat is not a valid"),
        "{stderr}"
    );
    assert!(first.contains("typo.wat:2:"), "file, line and column: {stderr}");
    assert!(
        lines.any(|line| line.contains("2 |") && line.contains("i32.konst 1")),
        "the line itself: {stderr}"
    );
}

#[test]
fn output_is_streamed_while_the_guest_runs_until_the_timeout_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let module = wat_file(
        &dir,
        "ticker.wat",
        r#"(module
             (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
             (memory (export "memory") 1)
             (data (i32.const 256) "tick\n")
             (func (export "_start")
               (i32.store (i32.const 0) (i32.const 256))
               (i32.store (i32.const 4) (i32.const 5))
               (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
               (loop $forever (br $forever))))"#,
    );
    let mut child = wasm_host()
        .args(["run", "--timeout", "2s", &module])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "tick\n");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the line arrived while the guest was still running"
    );
    let output = child.wait_with_output().unwrap();
    assert_fails(&output, TIMEOUT, &["ticker.wat timed out after 2s"]);
}

/// A start function and `_start` that each take most of `--timeout`: one
/// timeout covers the run, output captured (the library stops the guest)
/// or streamed (the process's watchdog does).
#[test]
fn one_timeout_covers_the_start_function_and_start_together() {
    let module = support::shared_test_file("fixtures/slow_start_and_main.wat");
    let module = module.to_str().unwrap();
    for capture in [&["--capture"][..], &[]] {
        let args = [&["run", "--timeout", "1s"], capture, &[module]].concat();
        assert_fails(&run(&args), TIMEOUT, &["slow_start_and_main.wat timed out after 1s"]);
    }
}

#[test]
fn fuel_stack_memory_and_descriptor_limits_apply() {
    let dir = tempfile::tempdir().unwrap();
    let spin = wat_file(
        &dir,
        "spin.wat",
        r#"(module (func (export "_start") (loop $l (br $l))))"#,
    );
    assert_fails(
        &run(&["run", "--fuel", "100000", &spin]),
        OUT_OF_FUEL,
        &["spin.wat ran out of fuel"],
    );
    // wasmtime's spelling, in one list as wasmtime takes it.
    assert_fails(
        &run(&["run", "-W", "timeout=20s,fuel=100000", &spin]),
        OUT_OF_FUEL,
        &["spin.wat ran out of fuel"],
    );

    let recurse = wat_file(
        &dir,
        "recurse.wat",
        r#"(module (func $f (call $f)) (func (export "_start") (call $f)))"#,
    );
    assert_fails(
        &run(&["run", "--max-stack", "64K", &recurse]),
        TRAP,
        &["recurse.wat trapped: stack overflow"],
    );

    // Exits 1 when growing memory by 4 MiB fails, 0 when it succeeds.
    let grow = wat_file(
        &dir,
        "grow.wat",
        r#"(module
             (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
             (memory (export "memory") 1)
             (func (export "_start")
               (call $exit (i32.eq (memory.grow (i32.const 64)) (i32.const -1)))))"#,
    );
    assert_eq!(run(&["run", "--max-memory", "1M", &grow]).status.code(), Some(1));
    assert_eq!(
        run(&["run", "-W", "max-memory-size=1048576", &grow]).status.code(),
        Some(1)
    );
    // The native option wins over its -W twin.
    let both = run(&["run", "--max-memory", "8M", "-W", "max-memory-size=1M", &grow]);
    assert_eq!(both.status.code(), Some(0));
    assert_eq!(run(&["run", &grow]).status.code(), Some(0));

    // Exits with the errno of opening the granted directory once more.
    let reopen = wat_file(&dir, "reopen.wat", &support::open_once_wat(".", 0, 0));
    let grant = dir.path().to_str().unwrap();
    // Three standard streams and the grant fill four; WASI's EMFILE is 33.
    let limited = run(&["run", "--max-descriptors", "4", "--dir", grant, &reopen]);
    assert_eq!(limited.status.code(), Some(33), "{}", text(&limited.stderr));
    assert_eq!(
        run(&["run", "--max-descriptors", "5", "--dir", grant, &reopen])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn a_module_past_a_compile_limit_is_refused_naming_the_flag_that_raises_it() {
    let dir = tempfile::tempdir().unwrap();
    let two_locals = wat_file(
        &dir,
        "locals.wat",
        r#"(module (func (export "_start") (local i32 i32)))"#,
    );
    // Compiled afresh: a module already in the cache is not compiled, so not checked.
    let refused = run(&["run", "--no-cache", "--max-function-locals", "1", &two_locals]);
    assert_fails(
        &refused,
        LOAD_ERROR,
        &[
            "locals.wat is past a compile limit: locals in one function is 2, at most 1 (raise it with --max-function-locals)",
        ],
    );
    assert_eq!(
        run(&["run", "--max-function-locals", "2", &two_locals]).status.code(),
        Some(0)
    );
}

#[test]
fn captured_output_is_cut_at_max_output_and_says_so() {
    let output = run(&["run", "--capture", "--max-output", "5", &suite_program("stdout_hello")]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(text(&output.stdout), "hello");
    assert!(
        text(&output.stderr).contains("stdout_hello.wat: stdout was cut at the --max-output limit"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn streamed_output_is_cut_at_max_output_only_when_asked() {
    let hostile = xtask::guests::artifact("hostile").unwrap();
    let flood = |extra: &[&str]| {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.extend([hostile.to_str().unwrap(), "flood", "4194304"]);
        run(&args)
    };
    let cut = flood(&["--max-output", "1K"]);
    assert_eq!(cut.status.code(), Some(0), "the guest is not failed");
    assert_eq!(
        cut.stdout.len(),
        1024,
        "a 4 MiB flood reaches the terminal cut at 1 KiB"
    );
    assert!(
        text(&cut.stderr).contains("hostile.wasm: stdout was cut at the --max-output limit"),
        "{}",
        text(&cut.stderr)
    );

    let whole = flood(&[]);
    assert_eq!(whole.status.code(), Some(0));
    assert_eq!(
        whole.stdout.len(),
        4 << 20,
        "without --max-output, streamed output is whole"
    );
    assert!(!text(&whole.stderr).contains("cut"), "{}", text(&whole.stderr));
}

#[test]
fn captured_output_is_written_whole_before_the_process_ends() {
    // `wasm-host run` ends its process at once, without teardown: what it
    // kept must all be out first, far more than a pipe holds.
    let hostile = xtask::guests::artifact("hostile").unwrap();
    let output = run(&[
        "run",
        "--capture",
        "--max-output",
        "8M",
        hostile.to_str().unwrap(),
        "flood",
        "4194304",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(output.stdout.len(), 4 << 20, "the whole captured flood");
    assert!(output.stdout.iter().all(|&byte| byte == b'x'));
}

#[test]
fn the_guest_reads_wasm_hosts_stdin() {
    let csv_processor: PathBuf = xtask::guests::artifact("csv_processor").unwrap();
    let output = run_with_stdin(&["run", csv_processor.to_str().unwrap()], b"1,2,3\n4\n");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(text(&output.stdout), "10\n");
}

#[test]
fn a_guest_waiting_for_stdin_that_never_comes_is_timed_out() {
    let csv_processor: PathBuf = xtask::guests::artifact("csv_processor").unwrap();
    let mut child = wasm_host()
        .args(["run", "--timeout", "1s", csv_processor.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep stdin open and silent; if the guard failed, wasm-host would wait forever.
    let open_stdin = child.stdin.take().unwrap();
    let (output, cpu) = output_and_cpu_or_kill(child, "wasm-host kept waiting for stdin past its timeout");
    drop(open_stdin);
    assert_fails(&output, TIMEOUT, &["csv_processor.wasm timed out after 1s"]);
    // It waited in the kernel, not in a loop asking again and again.
    assert!(
        cpu < std::time::Duration::from_millis(500),
        "a second's wait took {cpu:?} of CPU"
    );
}

/// As [`output_or_kill`], and the CPU time (user and system) the child
/// used (its stdout and stderr piped).
fn output_and_cpu_or_kill(mut child: std::process::Child, hung: &str) -> (Output, std::time::Duration) {
    use std::io::Read;
    fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).unwrap();
            bytes
        })
    }
    let (stdout, stderr) = (drain(child.stdout.take().unwrap()), drain(child.stderr.take().unwrap()));
    let pid = child.id() as libc::pid_t;
    let gave_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    // SAFETY: `status` and `usage` are written by wait4 when it reaps the child.
    while unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) } == 0 {
        if std::time::Instant::now() > gave_up {
            child.kill().unwrap();
            panic!("{hung}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let time = |t: libc::timeval| std::time::Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let output = Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(status),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    (output, time(usage.ru_utime) + time(usage.ru_stime))
}

/// The child's output once it exits; killed, and the test failed with
/// `hung`, if it runs far longer than any timeout here.
fn output_or_kill(child: std::process::Child, hung: &str) -> Output {
    output_and_cpu_or_kill(child, hung).0
}

#[test]
fn a_guest_that_only_computes_is_stopped_at_its_timeout_streamed_or_captured() {
    // Streamed, its engine has no epoch checks and the process ends at the
    // deadline; captured, the library's epochs stop it and the output is kept.
    let dir = tempfile::tempdir().unwrap();
    let module = wat_file(
        &dir,
        "spin.wat",
        r#"(module (func (export "_start") (loop $l (br $l))))"#,
    );
    for capture in [false, true] {
        let mut args = vec!["run", "--timeout", "1s"];
        if capture {
            args.push("--capture");
        }
        args.push(&module);
        let child = wasm_host()
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = output_or_kill(child, "a computing guest outlived its timeout");
        assert_fails(&output, TIMEOUT, &["spin.wat timed out after 1s"]);
    }
}

#[test]
fn the_compiled_module_cache_is_used_unless_no_cache_says_otherwise() {
    let work = TempDir::new().unwrap();
    let module = wat_file(
        &work,
        "quiet.wat",
        r#"(module (memory (export "memory") 1) (func (export "_start")))"#,
    );
    let cache = work.path().join("cache");
    let cache_entries = || {
        std::fs::read_dir(&cache).map_or(0, |entries| {
            entries
                .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "cwasm"))
                .count()
        })
    };
    let run_with_cache = |extra: &[&str]| {
        wasm_host()
            .arg("run")
            .args(extra)
            .arg(&module)
            .env("WASM_HOST_CACHE_DIR", &cache)
            .env_remove("WASM_HOST_CACHE")
            .output()
            .unwrap()
    };

    assert_eq!(run_with_cache(&["--no-cache"]).status.code(), Some(0));
    assert_eq!(cache_entries(), 0, "--no-cache writes nothing");
    assert_eq!(run_with_cache(&[]).status.code(), Some(0));
    assert_eq!(cache_entries(), 1, "the compiled module is kept for the next run");
    let work_dir = work.path().display().to_string();
    assert_fails(
        &run_with_cache(&["--dir-ro", &work_dir]),
        LOAD_ERROR,
        &[&format!("refusing to grant {work_dir}"), "compiled-module cache"],
    );
}

#[test]
fn env_without_a_value_grants_the_hosts_own_value_of_that_variable_only() {
    let output = wasm_host()
        .args(["run", "--env", "WASM_HOST_TEST_COPIED", &suite_program("args_env_echo")])
        .env("WASM_HOST_TEST_COPIED", "from the host")
        .env("WASM_HOST_TEST_NOT_GRANTED", "secret")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "WASM_HOST_TEST_COPIED=from the host\n");
}

/// args_env_echo, changed to print argv[0] too.
fn argv_printer() -> String {
    let source = std::fs::read_to_string(suite_program("args_env_echo")).unwrap();
    let changed = source.replacen(
        "(call $print_lines (i32.const 1))",
        "(call $print_lines (i32.const 0))",
        1,
    );
    assert_ne!(changed, source, "args_env_echo.wat no longer prints from argument 1");
    changed
}

#[test]
fn a_module_is_read_from_stdin_when_it_is_a_dash() {
    let output = run_with_stdin(&["run", "-", "one"], argv_printer().as_bytes());
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "<stdin>\none\n");

    let proc_exit_13 = std::fs::read(support::shared_test_file("fixtures/proc_exit_13.wat")).unwrap();
    assert_eq!(run_with_stdin(&["run", "-"], &proc_exit_13).status.code(), Some(13));

    assert_fails(
        &run_with_stdin(&["run", "-"], b"not a module"),
        LOAD_ERROR,
        &["<stdin>", "not a valid WebAssembly module"],
    );
}

/// Echoes its stdin one byte at a time, three times.
const ECHO_THREE_BYTES: &str = r#"(module
    (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "_start")
        (local $i i32)
        (i32.store (i32.const 0) (i32.const 100))
        (i32.store (i32.const 4) (i32.const 1))
        (loop $next
            (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 200)))
            (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 200)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $next (i32.lt_u (local.get $i) (i32.const 3))))))"#;

/// Bytes read from the pipe but not yet taken are the guest's next read,
/// even while the pipe stays open with nothing more in it.
#[test]
fn a_guest_reads_what_arrived_without_waiting_for_more() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let module = wat_file(&dir, "echo_three_bytes.wat", ECHO_THREE_BYTES);
    let mut child = wasm_host()
        .args(["run", "--timeout", "10s", &module])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"abc").unwrap();
    let output = output_or_kill(child, "wasm-host never ended");
    drop(stdin);
    assert_eq!(
        (output.status.code(), text(&output.stdout).as_str()),
        (Some(0), "abc"),
        "{}",
        text(&output.stderr)
    );
}

/// Prints the file type WASI gives its stdin: `2` (a character device)
/// when it is a terminal, `0` (unknown) otherwise.
const STDIN_KIND: &str = r#"(module
    (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fdstat (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "_start")
        (drop (call $fdstat (i32.const 0) (i32.const 64)))
        (i32.store8 (i32.const 100) (i32.add (i32.load8_u (i32.const 64)) (i32.const 48)))
        (i32.store (i32.const 0) (i32.const 100))
        (i32.store (i32.const 4) (i32.const 1))
        (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 80)))))"#;

/// A guest is told its stdin is a terminal exactly when wasm-host's is.
#[test]
fn a_guest_sees_a_terminal_on_stdin_only_where_there_is_one() {
    let dir = tempfile::tempdir().unwrap();
    let module = wat_file(&dir, "stdin_kind.wat", STDIN_KIND);
    let piped = run_with_stdin(&["run", &module], b"");
    assert_eq!(text(&piped.stdout), "0", "{}", text(&piped.stderr));
    // util-linux's `script` gives the run a terminal on all three streams.
    let command = format!("{} run {module}", env!("CARGO_BIN_EXE_wasm-host"));
    let on_a_terminal = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(text(&on_a_terminal.stdout), "2", "{}", text(&on_a_terminal.stderr));
}

/// A FIFO would block `open(2)` until a writer came, and `/dev/zero`
/// never ends: both are refused at once, before a byte is read, by `run`
/// and by `test` (cargo's runner), which reads the module to look at it.
#[test]
fn a_module_path_that_is_a_fifo_or_a_device_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("module.fifo");
    support::mkfifo(&fifo);
    let zero = dir.path().join("zero.wasm");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    for ((path, found), command) in [(&fifo, "a FIFO"), (&zero, "a device")]
        .into_iter()
        .flat_map(|file| [(file, "run"), (file, "test")])
    {
        let child = wasm_host()
            .args([command, path.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = output_or_kill(child, "wasm-host waited on the module file or kept reading it");
        assert_fails(
            &output,
            LOAD_ERROR,
            &[path.to_str().unwrap(), &format!("it is {found}, not a regular file")],
        );
    }
}

/// `head -c 1500M /dev/zero | wasm-host run -` once read it all before the
/// size check: an endless stdin is refused one byte past the limit.
#[test]
fn a_module_on_stdin_past_the_size_limit_is_refused_without_reading_on() {
    let mut child = wasm_host()
        .args(["run", "--max-module-size", "64K", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Writes until wasm-host stops reading and exits (the pipe then breaks).
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let chunk = [0; 1 << 16];
        while stdin.write_all(&chunk).is_ok() {}
    });
    let output = output_or_kill(child, "wasm-host kept reading an endless module");
    writer.join().unwrap();
    assert_fails(
        &output,
        LOAD_ERROR,
        &["<stdin> is larger than 65536 bytes", "--max-module-size"],
    );
}

#[test]
fn argv0_names_the_program_the_guest_sees() {
    let dir = tempfile::tempdir().unwrap();
    let program = wat_file(&dir, "argv.wat", &argv_printer());
    let named = run(&["run", "--argv0", "custom-name", &program, "x"]);
    assert_eq!(text(&named.stdout), "custom-name\nx\n", "{}", text(&named.stderr));
    let default = run(&["run", &program]);
    assert_eq!(text(&default.stdout), "argv.wat\n", "{}", text(&default.stderr));
}

#[test]
fn durations_and_sizes_are_written_as_people_write_them() {
    let program = suite_program("exit_returns");
    for args in [
        ["--timeout", "1m30s"],
        ["--timeout", "1.5s"],
        ["--max-memory", "1.5G"],
        ["--max-output", "10MB"],
    ] {
        let mut command = vec!["run"];
        command.extend(args);
        command.push(&program);
        let output = run(&command);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {}", text(&output.stderr));
    }
}

#[test]
fn help_is_wrapped_to_the_terminal_width() {
    // Without a terminal, clap reads the width from COLUMNS.
    for subcommand in ["run", "serve", "conformance"] {
        let output = wasm_host()
            .args([subcommand, "--help"])
            .env("COLUMNS", "80")
            .output()
            .unwrap();
        let help = text(&output.stdout);
        let widest = help.lines().map(|line| line.chars().count()).max().unwrap();
        assert!(
            widest <= 80,
            "{subcommand} --help has a line of {widest} characters:\n{help}"
        );
    }
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, says) in [
        ("bash", "_wasm__host()"),
        ("zsh", "#compdef wasm-host"),
        ("fish", "complete -c wasm-host"),
    ] {
        let output = run(&["completions", shell]);
        assert_eq!(output.status.code(), Some(0), "{shell}: {}", text(&output.stderr));
        let script = text(&output.stdout);
        assert!(script.contains(says), "{shell}: {script}");
        assert!(script.contains("max-memory"), "{shell} completes run's options");
    }
}
