//! Components (`wasm32-wasip2`) under the same sandbox as core modules: the
//! same grants, the same limits, the same kind of outcome, and the hostile
//! component's attacks end within their limits with the disk unchanged.

use std::time::Duration;

use host::{DirAccess, Error, Limits, RunOutcome, Sandbox, Termination, TrapKind};

use crate::hostile::Fence;
use crate::support;
use crate::support::{SLACK, trap_kind};

pub(crate) fn hostile() -> host::GuestModule {
    support::components::hostile_component()
}

/// Runs `args` of the hostile component with `timeout`, on a thread the test
/// stops waiting for past `timeout + SLACK`: a broken defense fails the test
/// instead of hanging it.
pub(crate) fn attack_with_timeout(sandbox: Sandbox, timeout: Duration, args: &[&str]) -> RunOutcome {
    timed_out(&hostile(), sandbox, timeout, args)
}

/// [`attack_with_timeout`] by another guest.
fn timed_out(guest: &host::GuestModule, sandbox: Sandbox, timeout: Duration, args: &[&str]) -> RunOutcome {
    let (done, outcome) = std::sync::mpsc::channel();
    let sandbox = sandbox.limits(Limits::default().timeout(Some(timeout)));
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    // Compiled before the clock starts: a cold compile on a loaded machine can take seconds.
    let module = guest.clone();
    std::thread::spawn(move || {
        // The test may have stopped waiting: nobody to tell then.
        let _ = done.send(sandbox.args(args).run(&module).unwrap());
    });
    let outcome = outcome
        .recv_timeout(timeout + SLACK)
        .unwrap_or_else(|_| panic!("the run did not end within {:?}", timeout + SLACK));
    assert_eq!(trap_kind(&outcome), TrapKind::Timeout);
    outcome
}

#[test]
fn a_component_is_recognised_as_one() {
    assert!(hostile().is_component());
    assert!(!support::modules::csv_processor().is_component());
}

#[test]
fn computing_or_sleeping_past_the_timeout_is_a_timeout() {
    let timeout = Duration::from_millis(300);
    // WASI 0.2 (the standard library's sleep) and WASI 0.3 (its clock's waits).
    let attacks = [
        (hostile(), "loop"),
        (hostile(), "sleep"),
        (support::components::hostile_p3(), "loop"),
        (support::components::hostile_p3(), "sleep"),
        (support::components::hostile_p3(), "sleep-until"),
    ];
    for (guest, attack) in attacks {
        let outcome = timed_out(&guest, Sandbox::new(), timeout, &[attack]);
        assert!(outcome.duration >= timeout, "{attack}: {:?}", outcome.duration);
        assert!(!outcome.stdout_text().contains("woke up"));
    }
}

#[cfg(unix)]
#[test]
fn opening_a_fifo_in_a_grant_is_refused_at_once_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    support::mkfifo(&dir.path().join("fifo"));
    std::os::unix::fs::symlink("fifo", dir.path().join("link")).unwrap();
    let timeout = Duration::from_secs(20);
    let grant = Sandbox::new()
        .dir(dir.path(), "/sandbox", DirAccess::ReadWrite)
        .limits(Limits::default().timeout(Some(timeout)));
    // WASI 0.2's open-at, through the standard library, and WASI 0.3's.
    let attacks = [
        (
            hostile(),
            ["open", "/sandbox/fifo", "/sandbox/link"],
            "/sandbox/fifo: read ERROR, create OK\n/sandbox/link: read ERROR, create OK\n",
        ),
        (
            support::components::hostile_p3(),
            ["open", "fifo", "link"],
            "fifo: ERROR ErrorCode::Access\nlink: ERROR ErrorCode::Access\n",
        ),
    ];
    for (guest, args, refused) in attacks {
        let started = std::time::Instant::now();
        let outcome = grant.clone().args(args).run(&guest).unwrap();
        // Refused before `open(2)`, which would wait for a writer: no
        // timeout, and no blocking thread left stuck in it.
        assert!(started.elapsed() < timeout / 2, "{args:?}: {:?}", started.elapsed());
        assert_eq!(outcome.exit_code(), Some(0), "{outcome}");
        assert_eq!(outcome.stdout_text(), refused);
    }
}

#[test]
fn a_component_hoarding_descriptors_is_refused_at_its_limit() {
    let fence = Fence::new();
    let at_most = |max_descriptors| Limits::default().max_descriptors(max_descriptors);
    let hoard = |guest: &host::GuestModule, path: &str, limits: Limits| {
        let outcome = fence.attack_with(
            guest,
            Sandbox::new().limits(limits),
            DirAccess::ReadOnly,
            &["hoard", path],
        );
        assert!(outcome.success(), "{outcome}: {}", outcome.stderr_text());
        outcome.stdout_text()
    };
    // The granted directory is a descriptor too; streams are not.
    let p2 = hostile();
    assert_eq!(
        hoard(&p2, "/sandbox/inner.txt", at_most(16)),
        "held 15, then ERROR QuotaExceeded\n"
    );
    assert_eq!(
        hoard(&p2, "/sandbox/inner.txt", Limits::default()),
        "held 255, then ERROR QuotaExceeded\n",
        "256 by default"
    );
    let p3 = support::components::hostile_p3();
    assert_eq!(
        hoard(&p3, "inner.txt", at_most(16)),
        "held 15, then ERROR ErrorCode::Quota\n"
    );
}

#[test]
fn a_component_holding_handles_is_stopped_at_its_resource_limit() {
    let fence = Fence::new();
    let limits = Limits::default().max_resources(64);
    // Both are the component's handles (a few are taken before): WASI
    // 0.3's streams live in Wasmtime alone, and each answer of
    // `get-directories` is a descriptor in WASI's table too, one that the
    // descriptor limit, which counts opens, does not see.
    for (attack, most) in [("streams", "held 30"), ("directories", "held 60")] {
        let outcome = fence.attack_with(
            &support::components::hostile_p3(),
            Sandbox::new().limits(limits.clone()),
            DirAccess::ReadOnly,
            &[attack],
        );
        assert_eq!(trap_kind(&outcome), TrapKind::HostError, "{attack}: {outcome}");
        assert_eq!(outcome.stdout_text().lines().last(), Some(most), "{attack}");
    }
}

#[test]
fn files_outside_the_grant_cannot_be_read_or_written() {
    let fence = Fence::new();
    let secret = fence.grant().parent().unwrap().join("secret.txt");
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink("../secret.txt", fence.grant().join("link-to-secret")).unwrap();
        symlink(&secret, fence.grant().join("absolute-link-to-secret")).unwrap();
    }
    let paths = [
        "/sandbox/inner.txt",
        "/sandbox/../secret.txt",
        "../secret.txt",
        "/etc/passwd",
        secret.to_str().unwrap(),
        "/sandbox/link-to-secret",
        "/sandbox/absolute-link-to-secret",
    ];
    let outcome = fence.attack_with(
        &hostile(),
        Sandbox::new(),
        DirAccess::ReadOnly,
        &[&["open"][..], &paths].concat(),
    );
    assert!(outcome.success(), "{}", outcome.stderr_text());
    assert_eq!(
        outcome.stdout_text(),
        format!(
            "/sandbox/inner.txt: read OK, create ERROR\n\
         /sandbox/../secret.txt: read ERROR, create ERROR\n\
         ../secret.txt: read ERROR, create ERROR\n\
         /etc/passwd: read ERROR, create ERROR\n\
         {}: read ERROR, create ERROR\n\
         /sandbox/link-to-secret: read ERROR, create ERROR\n\
         /sandbox/absolute-link-to-secret: read ERROR, create ERROR\n",
            secret.display()
        )
    );
    // Without a grant, nothing at all.
    let ungranted = Sandbox::new()
        .args(["open", "/sandbox/inner.txt"])
        .run(&hostile())
        .unwrap();
    assert_eq!(
        ungranted.stdout_text(),
        "/sandbox/inner.txt: read ERROR, create ERROR\n"
    );
}

#[test]
fn a_read_write_grant_lets_the_component_create_files_inside_it_only() {
    let fence = Fence::new();
    let outcome = Sandbox::new()
        .dir(fence.grant(), "/sandbox", DirAccess::ReadWrite)
        .args(["open", "/sandbox/inner.txt"])
        .run(&hostile())
        .unwrap();
    assert_eq!(outcome.stdout_text(), "/sandbox/inner.txt: read OK, create OK\n");
    assert_eq!(
        std::fs::read_to_string(fence.grant().join("inner.txt.created")).unwrap(),
        "escaped"
    );
}

#[test]
fn a_read_only_grant_refuses_every_change_a_component_tries() {
    let fence = Fence::new();
    let attempts = [
        "open for writing",
        "truncate on open",
        "append",
        "create",
        "mkdir",
        "rename",
        "link",
        "delete",
    ];
    let args = ["readonly", "/sandbox/inner.txt"];
    let refused = fence.attack_with(&hostile(), Sandbox::new(), DirAccess::ReadOnly, &args);
    let expected: String = attempts.iter().map(|attempt| format!("{attempt}: ERROR\n")).collect();
    assert_eq!(refused.stdout_text(), expected + "changed 0\n");
    // The probe does change a writable grant.
    let changed = Sandbox::new()
        .dir(fence.grant(), "/sandbox", DirAccess::ReadWrite)
        .args(args)
        .run(&hostile())
        .unwrap();
    assert!(
        changed.stdout_text().ends_with("changed 8\n"),
        "{}",
        changed.stdout_text()
    );
}

#[test]
fn unbounded_recursion_in_a_component_is_a_stack_overflow() {
    // In WAT: a Rust guest's own stack, in linear memory, runs out first
    // (a memory trap), before the wasm stack this test is about.
    let guest = support::wat(
        "recurse",
        r#"(component
             (core module $m (func $down (export "recurse") (call $down)))
             (core instance $i (instantiate $m))
             (func (export "recurse") (canon lift (core func $i "recurse"))))"#,
    );
    let mut instance = Sandbox::new().instantiate_component(&guest).unwrap();
    assert_eq!(
        support::call_trap_kind(instance.call::<(), ()>("recurse", ())),
        TrapKind::StackOverflow
    );
}

#[test]
fn a_components_table_grows_only_to_the_limit() {
    let guest = support::wat(
        "table-grow",
        r#"(component
             (core module $m
               (table $t 1 funcref)
               (func (export "grow") (param i32) (result i32) (table.grow $t (ref.null func) (local.get 0))))
             (core instance $i (instantiate $m))
             (func (export "grow") (param "by" u32) (result s32) (canon lift (core func $i "grow"))))"#,
    );
    let limits = Limits::default().max_table_elements(10);
    let mut instance = Sandbox::new().limits(limits).instantiate_component(&guest).unwrap();
    let mut grow = |by: u32| instance.call::<(u32,), (i32,)>("grow", (by,)).unwrap().0;
    assert_eq!(grow(9), 1, "to the limit: the old size");
    assert_eq!(grow(1), -1, "past it: refused");
}

#[test]
fn memory_is_bounded_across_all_of_a_components_memories() {
    let limits = Limits::default().max_memory_bytes(16 << 20);
    let outcome = Sandbox::new()
        .limits(limits)
        .arg("memory-bomb")
        .run(&hostile())
        .unwrap();
    assert!(outcome.success(), "{}", outcome.stderr_text());
    let mib: usize = outcome
        .stdout_text()
        .trim()
        .trim_start_matches("allocated ")
        .trim_end_matches(" MiB")
        .parse()
        .unwrap();
    assert!((1..16).contains(&mib), "{mib} MiB");
}

#[test]
fn output_past_the_cap_is_cut_and_the_component_finishes() {
    let limits = Limits::default().max_output_bytes(1000);
    let outcome = Sandbox::new()
        .limits(limits)
        .args(["flood", "100000"])
        .run(&hostile())
        .unwrap();
    assert!(outcome.success(), "{}", outcome.stderr_text());
    assert_eq!(outcome.stdout.len(), 1000);
    assert!(outcome.stdout_truncated);
}

#[test]
fn fuel_stops_a_computing_component() {
    let limits = Limits::default().fuel(Some(5_000_000));
    let outcome = Sandbox::new().limits(limits).arg("loop").run(&hostile()).unwrap();
    assert_eq!(trap_kind(&outcome), TrapKind::OutOfFuel);
    assert_eq!(outcome.fuel_consumed, Some(5_000_000));
}

#[test]
fn panics_trap_and_exit_statuses_reach_the_outcome() {
    let panicked = Sandbox::new().arg("panic").run(&hostile()).unwrap();
    assert_eq!(trap_kind(&panicked), TrapKind::Unreachable);
    assert!(panicked.stderr_text().contains("panicked on purpose"));
    // WASI 0.2's `exit` says only success or failure.
    let cases = [("0", 0), ("7", 1)];
    for (code, status) in cases {
        let outcome = Sandbox::new().args(["exit", code]).run(&hostile()).unwrap();
        assert_eq!(outcome.termination, Termination::Exited(status), "exit {code}");
    }
}

#[test]
fn only_granted_variables_are_seen() {
    let outcome = Sandbox::new().env("A", "1").arg("env").run(&hostile()).unwrap();
    assert_eq!(outcome.stdout_text(), "A=1\n");
}

#[test]
fn a_component_cannot_be_instantiated_as_a_library_or_given_core_host_functions() {
    match Sandbox::new().instantiate(&hostile()) {
        Err(Error::WrongKind { module, expected }) => {
            assert_eq!((module.as_str(), expected), ("hostile_component.wasm", "a core module"))
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    let with_import = Sandbox::new().host_func("env", "f", || {});
    assert!(matches!(with_import.run(&hostile()), Err(Error::WrongKind { .. })));
}

#[test]
fn a_component_without_a_run_export_or_with_an_unknown_import_is_an_error() {
    let no_run = support::wat(
        "no-run",
        r#"(component (core module $m (func (export "f"))) (core instance (instantiate $m)))"#,
    );
    match Sandbox::new().run(&no_run) {
        Err(Error::MissingExport { module, export }) => {
            assert_eq!((module.as_str(), export.as_str()), ("no-run", "wasi:cli/run"))
        }
        other => panic!("{other:?}"),
    }
    let unknown = support::wat(
        "unknown",
        r#"(component (import "example:nothing/here" (instance (export "f" (func)))))"#,
    );
    match Sandbox::new().run(&unknown) {
        Err(Error::UnknownImport { import_module, .. }) => assert_eq!(import_module, "example:nothing/here"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_component_is_compiled_once_and_then_taken_from_the_disk_cache() {
    let dir = tempfile::tempdir().unwrap();
    let path = xtask::guests::component("config_reader").unwrap();
    let bytes = std::fs::read(path).unwrap();
    let cached = || crate::module_cache::runtime(host::CacheMode::OnDisk(dir.path().to_owned()));
    let first = cached();
    assert!(first.load_bytes("config_reader", &bytes).unwrap().is_component());
    assert_eq!((first.cache_stats().compiled, first.cache_stats().disk_hits), (1, 0));
    let second = cached();
    let loaded = second.load_bytes("config_reader", &bytes).unwrap();
    assert_eq!((second.cache_stats().compiled, second.cache_stats().disk_hits), (0, 1));
    let outcome = Sandbox::new().run(&loaded).unwrap();
    assert_eq!(outcome.stdout_text(), "mode=production\nlog_level=info\n");
}

#[test]
fn a_library_style_components_exports_are_called_with_typed_values() {
    let text = support::components::text_component();
    let mut guest = Sandbox::new().instantiate_component(&text).unwrap();
    let (upper,): (String,) = guest.call("process", ("hello, wasm",)).unwrap();
    assert_eq!(upper, "HELLO, WASM");
    let (count,): (u32,) = guest.call("count", ("banana", "an")).unwrap();
    assert_eq!(count, 2);
    // The instance keeps its state between calls and answers again.
    let (again,): (String,) = guest.call("process", ("ok",)).unwrap();
    assert_eq!(again, "OK");
}

#[test]
fn a_wrong_name_or_signature_is_a_typed_error_and_a_trap_ends_the_call() {
    let text = support::components::text_component();
    let mut guest = Sandbox::new().instantiate_component(&text).unwrap();
    match guest.call::<(String,), (String,)>("missing", ("x".into(),)) {
        Err(Error::MissingExport { export, .. }) => assert_eq!(export, "missing"),
        other => panic!("{other:?}"),
    }
    match guest.call::<(u32,), (String,)>("process", (1,)) {
        Err(Error::ExportSignature { export, found, .. }) => {
            assert_eq!(export, "process");
            assert!(found.contains("input: String"), "{found}");
        }
        other => panic!("{other:?}"),
    }
    match guest.call::<(), ()>("fail", ()) {
        Err(Error::Trap { trap, .. }) => assert_eq!(trap.kind, TrapKind::Unreachable),
        other => panic!("{other:?}"),
    }
}

#[test]
fn each_call_into_a_component_has_the_timeout() {
    let text = support::components::text_component();
    let timeout = Duration::from_millis(300);
    let sandbox = Sandbox::new().limits(Limits::default().timeout(Some(timeout)));
    let mut guest = sandbox.instantiate_component(&text).unwrap();
    let started = std::time::Instant::now();
    match guest.call::<(), ()>("spin", ()) {
        Err(Error::Trap { trap, .. }) => assert_eq!(trap.kind, TrapKind::Timeout),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < timeout + SLACK, "{:?}", started.elapsed());
    // A command is not a library, and a library is not a command.
    assert!(matches!(
        Sandbox::new().run(&text),
        Err(Error::MissingExport { export, .. }) if export == "wasi:cli/run"
    ));
    assert!(matches!(
        Sandbox::new().instantiate_component(&support::modules::csv_processor()),
        Err(Error::WrongKind {
            expected: "a component",
            ..
        })
    ));
}

#[test]
fn a_dynamic_call_finds_a_function_at_the_root_in_an_exported_interface_or_by_a_unique_bare_name() {
    use wasmtime::component::Val;
    let calc = support::wat(
        "calc",
        r#"(component
             (core module $m (func (export "seven") (result i32) i32.const 7))
             (core instance $i (instantiate $m))
             (func $seven (result u32) (canon lift (core func $i "seven")))
             (instance $a (export "seven" (func $seven)))
             (instance $b (export "seven" (func $seven)))
             (instance $c (export "eight" (func $seven)))
             (export "example:calc/a@1.0.0" (instance $a))
             (export "example:calc/b" (instance $b))
             (export "example:calc/c" (instance $c))
             (export "root" (func $seven)))"#,
    );
    let mut guest = Sandbox::new().instantiate_component(&calc).unwrap();
    for name in ["root", "example:calc/a.seven@1.0.0", "example:calc/b#seven", "eight"] {
        assert!(
            matches!(guest.call_values(name, &[]).unwrap()[..], [Val::U32(7)]),
            "{name}"
        );
    }
    match guest.call_values("seven", &[]) {
        Err(Error::AmbiguousExport { candidates, .. }) => {
            assert_eq!(candidates, ["example:calc/a@1.0.0#seven", "example:calc/b#seven"])
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        guest.call_values("example:calc/c.seven", &[]),
        Err(Error::MissingExport { .. })
    ));
    assert!(matches!(
        guest.call_values("root", &[Val::U32(1)]),
        Err(Error::ExportSignature { .. })
    ));
}

/// A component importing `double` from the interface `example:host/math`
/// and exporting `run`, which returns `double(21)`.
const IMPORTS_DOUBLE: &str = r#"(component
    (import "example:host/math" (instance $math (export "double" (func (param "x" u32) (result u32)))))
    (core func $double (canon lower (func $math "double")))
    (core module $m
      (import "host" "double" (func $double (param i32) (result i32)))
      (func (export "run") (result i32) (call $double (i32.const 21))))
    (core instance $i (instantiate $m (with "host" (instance (export "double" (func $double))))))
    (func (export "run") (result u32) (canon lift (core func $i "run"))))"#;

#[test]
fn a_component_calls_the_host_functions_granted_and_no_others() {
    let guest = support::wat("imports-double", IMPORTS_DOUBLE);
    let doubling = Sandbox::new().component_func("example:host/math", "double", |_store, (x,): (u32,)| Ok((x * 2,)));
    let (answer,): (u32,) = doubling.instantiate_component(&guest).unwrap().call("run", ()).unwrap();
    assert_eq!(answer, 42);

    match Sandbox::new().instantiate_component(&guest) {
        Err(Error::UnknownImport { import_module, .. }) => assert_eq!(import_module, "example:host/math"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    let wrong_type = Sandbox::new().component_func("example:host/math", "double", |_store, (x,): (String,)| Ok((x,)));
    assert!(wrong_type.instantiate_component(&guest).is_err());
    // A component function is no import of a core module.
    assert!(matches!(
        doubling.instantiate(&support::modules::csv_processor()),
        Err(Error::WrongKind { .. })
    ));
}

#[test]
fn a_component_may_import_wasi_0_3_as_well_as_0_2() {
    // `run` returns two numbers from WASI 0.3's `get-random-u64`.
    let guest = support::wat(
        "wasi-0.3-random",
        r#"(component
             (import "wasi:random/random@0.3.0" (instance $random (export "get-random-u64" (func (result u64)))))
             (core func $u64 (canon lower (func $random "get-random-u64")))
             (core module $m
               (import "wasi" "u64" (func $u64 (result i64)))
               (func (export "run") (result i64) (i64.xor (call $u64) (call $u64))))
             (core instance $i (instantiate $m (with "wasi" (instance (export "u64" (func $u64))))))
             (func (export "run") (result u64) (canon lift (core func $i "run"))))"#,
    );
    let mut instance = Sandbox::new().instantiate_component(&guest).unwrap();
    let (mixed,): (u64,) = instance.call("run", ()).unwrap();
    assert_ne!(mixed, 0, "two random numbers in a row were equal");
}
