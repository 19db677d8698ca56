//! Every per-run limit, proven on small WAT modules: the timeout (also
//! while the guest sleeps), fuel, linear memory, tables, the wasm stack,
//! captured output and the `host.log` budget.

use std::time::Duration;

use host::{Error, Limits, Runtime, RuntimeConfig, Sandbox, TrapKind};

use crate::support;

fn with_timeout(timeout: Duration) -> Sandbox {
    Sandbox::new().limits(Limits::default().timeout(Some(timeout)))
}

#[test]
fn an_infinite_loop_times_out_and_frees_the_thread() {
    let spin = support::wat("spin", r#"(module (func (export "_start") (loop br 0)))"#);
    let timeout = Duration::from_millis(200);
    let outcome = std::thread::spawn(move || with_timeout(timeout).run(&spin).unwrap())
        .join()
        .expect("the thread that ran the loop came back");
    let trap = outcome.trap().expect("the loop was stopped");
    assert_eq!(trap.kind, TrapKind::Timeout, "{trap}");
    assert!(outcome.duration >= timeout, "{:?}", outcome.duration);
    assert!(outcome.duration < timeout + support::SLACK, "{:?}", outcome.duration);

    let quick = support::wat("quick", r#"(module (func (export "_start")))"#);
    assert!(
        with_timeout(timeout).run(&quick).unwrap().success(),
        "the next run is unaffected"
    );
}

/// Imports `poll_oneoff` and sleeps on one clock subscription:
/// `(sleep clock_id timeout flags) -> errno`, with the event count at 200.
const SLEEPER: &str = r#"
    (module
      (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func $sleep (export "sleep") (param $clock i32) (param $timeout i64) (param $flags i32) (result i32)
        (i32.store8 (i32.const 8) (i32.const 0))          ;; tag: clock
        (i32.store (i32.const 16) (local.get $clock))
        (i64.store (i32.const 24) (local.get $timeout))
        (i32.store16 (i32.const 40) (local.get $flags))
        (call $poll (i32.const 0) (i32.const 128) (i32.const 1) (i32.const 200)))
      (func (export "events") (result i32) (i32.load (i32.const 200)))
      (func (export "_start") (drop (call $sleep (i32.const 1) (i64.const 3600000000000) (i32.const 0)))))"#;

const MONOTONIC: i32 = 1;
const REALTIME: i32 = 0;
const ABSOLUTE: i32 = 1;

#[test]
fn sleeping_past_the_timeout_is_a_timeout_and_frees_the_thread() {
    let timeout = Duration::from_millis(200);
    let outcome = with_timeout(timeout).run(&support::wat("sleeper", SLEEPER)).unwrap();
    let trap = outcome.trap().expect("an hour's sleep was cut short");
    assert_eq!(trap.kind, TrapKind::Timeout, "{trap}");
    assert!(outcome.duration >= timeout, "{:?}", outcome.duration);
    assert!(outcome.duration < timeout + support::SLACK, "{:?}", outcome.duration);

    let module = support::wat("sleeper", SLEEPER);
    for (clock, until, flags) in [
        (MONOTONIC, i64::MAX, ABSOLUTE),
        (REALTIME, i64::MAX, ABSOLUTE),
        (REALTIME, 60_000_000_000, 0),
        (MONOTONIC, -1, 0), // u64::MAX nanoseconds: 584 years
    ] {
        let mut guest = with_timeout(timeout).instantiate(&module).unwrap();
        let result = guest.call::<(i32, i64, i32), i32>("sleep", (clock, until, flags));
        assert_eq!(
            support::call_trap_kind(result),
            TrapKind::Timeout,
            "clock {clock}, {until}, flags {flags}"
        );
    }
}

#[test]
fn sleeps_within_the_timeout_complete_and_each_call_gets_the_whole_timeout() {
    // Three sleeps of 400 ms outlast one 1 s timeout, but not one call's.
    let mut guest = with_timeout(Duration::from_secs(1))
        .instantiate(&support::wat("sleeper", SLEEPER))
        .unwrap();
    for _ in 0..3 {
        let errno = guest
            .call::<(i32, i64, i32), i32>("sleep", (MONOTONIC, 400_000_000, 0))
            .unwrap();
        assert_eq!(errno, 0, "the sleep succeeded");
        assert_eq!(guest.call::<(), i32>("events", ()).unwrap(), 1, "one clock event");
    }
    let errno = guest.call::<(i32, i64, i32), i32>("sleep", (99, 1, 0)).unwrap();
    assert_eq!(errno, 28, "an unknown clock is still WASI's EINVAL, not a timeout");
}

/// A start function and `_start` (or a reactor's `_initialize`) that each
/// take most of the timeout: one timeout covers them together.
#[test]
fn one_timeout_covers_the_start_function_and_start_together() {
    let timeout = Duration::from_secs(1);
    let command = support::fixture("slow_start_and_main.wat");
    let outcome = with_timeout(timeout).run(&command).unwrap();
    assert_eq!(support::trap_kind(&outcome), TrapKind::Timeout, "{outcome}");

    let reactor = support::wat(
        "slow_reactor",
        &std::fs::read_to_string(support::shared_test_file("fixtures/slow_start_and_main.wat"))
            .unwrap()
            .replace(r#"(export "_start")"#, r#"(export "_initialize")"#),
    );
    let instantiated = with_timeout(timeout).instantiate(&reactor);
    assert_eq!(support::call_trap_kind(instantiated.map(|_| ())), TrapKind::Timeout);
}

#[test]
fn no_timeout_and_a_huge_timeout_both_run_to_completion() {
    let quick = support::wat("quick", r#"(module (func (export "_start")))"#);
    for timeout in [None, Some(Duration::MAX), Some(Duration::from_secs(u64::MAX / 2))] {
        let limits = Limits::default().timeout(timeout);
        let outcome = Sandbox::new().limits(limits).run(&quick).unwrap();
        assert!(outcome.success(), "timeout {timeout:?}: {:?}", outcome.trap());
    }
}

const COUNTDOWN: &str = r#"
    (module
      (func (export "_start")
        (local $i i32)
        (local.set $i (i32.const 1000))
        (loop $again
          (local.set $i (i32.sub (local.get $i) (i32.const 1)))
          (br_if $again (local.get $i)))))"#;

#[test]
fn fuel_is_a_deterministic_instruction_budget() {
    let module = support::wat("countdown", COUNTDOWN);
    let run = |fuel| {
        let limits = Limits::default().fuel(Some(fuel));
        Sandbox::new().limits(limits).run(&module).unwrap()
    };
    let enough = run(1_000_000);
    assert!(enough.success(), "{:?}", enough.trap());
    let consumed = enough.fuel_consumed.expect("a run with a budget is metered");
    assert!(consumed > 1000, "a 1000-round loop: {consumed}");
    assert_eq!(run(1_000_000).fuel_consumed, Some(consumed), "the same every time");

    let short = run(consumed / 2);
    assert_eq!(
        short.trap().map(|t| t.kind),
        Some(TrapKind::OutOfFuel),
        "{:?}",
        short.termination
    );
    assert_eq!(short.fuel_consumed, Some(consumed / 2), "all of it was used");
}

#[test]
fn a_run_without_a_fuel_budget_is_not_instrumented_for_fuel() {
    let module = support::wat("countdown", COUNTDOWN);
    let outcome = Sandbox::new().run(&module).unwrap();
    assert!(outcome.success(), "{:?}", outcome.trap());
    assert_eq!(outcome.fuel_consumed, None, "not metered");
    let guest = Sandbox::new().instantiate(&module).unwrap();
    assert!(
        guest.fuel_remaining().is_none(),
        "the store's engine does not consume fuel"
    );

    // The same module still runs metered when a later run sets a budget.
    let metered = Limits::default().fuel(Some(1_000_000));
    let guest = Sandbox::new().limits(metered.clone()).instantiate(&module).unwrap();
    assert_eq!(guest.fuel_remaining(), Some(1_000_000));
    let outcome = Sandbox::new().limits(metered).run(&module).unwrap();
    assert!(outcome.fuel_consumed.is_some_and(|fuel| fuel > 1000));
}

const GROWER: &str = r#"
    (module
      (memory (export "memory") 1)
      (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
      (func (export "poke") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
      (func (export "peek") (param i32) (result i32) (i32.load (local.get 0))))"#;

#[test]
fn memory_grow_past_the_limit_returns_minus_one_and_the_guest_goes_on() {
    // 16 pages.
    let limits = Limits::default().max_memory_bytes(1 << 20);
    let mut guest = Sandbox::new()
        .limits(limits)
        .instantiate(&support::wat("grower", GROWER))
        .unwrap();
    assert_eq!(guest.call::<i32, i32>("grow", 100).unwrap(), -1, "6.4 MiB is refused");
    assert_eq!(
        guest.call::<i32, i32>("grow", 15).unwrap(),
        1,
        "up to exactly the limit is fine"
    );
    assert_eq!(
        guest.call::<i32, i32>("grow", 1).unwrap(),
        -1,
        "one page more is refused"
    );
    assert_eq!(
        guest.call::<i32, i32>("grow", 0).unwrap(),
        16,
        "memory.grow 0 reports the size"
    );
    guest.call::<(i32, i32), ()>("poke", ((1 << 20) - 4, 42)).unwrap();
    assert_eq!(
        guest.call::<i32, i32>("peek", (1 << 20) - 4).unwrap(),
        42,
        "the last page works"
    );
    assert_eq!(
        support::call_trap_kind(guest.call::<i32, i32>("peek", 1 << 20)),
        TrapKind::MemoryOutOfBounds
    );
    assert_eq!(guest.memory_size().unwrap(), 1 << 20);
    assert_eq!(guest.peak_memory_bytes(), 1 << 20);
}

#[test]
fn a_memory_larger_than_the_limit_cannot_be_instantiated() {
    let limits = Limits::default().max_memory_bytes(1 << 20);
    let module = support::wat("big", r#"(module (memory 17) (func (export "_start")))"#);
    let error = Sandbox::new().limits(limits).run(&module).unwrap_err();
    assert!(
        matches!(&error, Error::Instantiate { module, .. } if module == "big"),
        "{error:?}"
    );

    let two = support::wat(
        "two-memories",
        r#"(module (memory 1) (memory 1) (func (export "_start")))"#,
    );
    let error = Sandbox::new().run(&two).unwrap_err();
    assert!(matches!(error, Error::Instantiate { .. }), "{error:?}");
}

#[test]
fn a_guest_may_have_up_to_four_tables() {
    let tables = |count: usize| {
        let name = format!("{count}-tables");
        let source = format!(
            "(module {} (func (export \"_start\")))",
            "(table 1 funcref) ".repeat(count)
        );
        Sandbox::new().run(&support::wat(&name, &source))
    };
    for count in 1..=4 {
        let outcome = tables(count).unwrap_or_else(|e| panic!("{count} tables: {e}"));
        assert!(outcome.success(), "{count} tables: {:?}", outcome.trap());
    }
    let error = tables(5).unwrap_err();
    assert!(matches!(error, Error::Instantiate { .. }), "{error:?}");
}

#[test]
fn table_grow_past_the_limit_returns_minus_one() {
    let limits = Limits::default().max_table_elements(10);
    let module = support::wat(
        "table-grower",
        r#"(module
             (table 0 funcref)
             (func (export "grow") (param i32) (result i32) (table.grow (ref.null func) (local.get 0))))"#,
    );
    let mut guest = Sandbox::new().limits(limits).instantiate(&module).unwrap();
    assert_eq!(guest.call::<i32, i32>("grow", 11).unwrap(), -1);
    assert_eq!(guest.call::<i32, i32>("grow", 10).unwrap(), 0);
    assert_eq!(guest.call::<i32, i32>("grow", 1).unwrap(), -1);
}

const RECURSER: &str = r#"
    (module
      (global $depth (mut i32) (i32.const 0))
      (func $down (global.set $depth (i32.add (global.get $depth) (i32.const 1))) (call $down))
      (func (export "recurse") (call $down))
      (func (export "depth") (result i32) (global.get $depth)))"#;

/// How deep `RECURSER` got before the stack ran out, on `runtime`.
fn depth_reached(runtime: &Runtime) -> i32 {
    let module = runtime.load_bytes("recurser", RECURSER).unwrap();
    let mut guest = Sandbox::new().instantiate(&module).unwrap();
    assert_eq!(
        support::call_trap_kind(guest.call::<(), ()>("recurse", ())),
        TrapKind::StackOverflow
    );
    guest.call::<(), i32>("depth", ()).unwrap()
}

#[test]
fn recursion_stops_at_the_configured_wasm_stack() {
    let small = Runtime::new(&RuntimeConfig::default().max_wasm_stack(64 << 10)).unwrap();
    let default_depth = depth_reached(Runtime::shared());
    let small_depth = depth_reached(&small);
    assert!(
        small_depth > 100,
        "the small stack still holds some frames: {small_depth}"
    );
    assert!(
        small_depth * 4 < default_depth,
        "an eighth of the stack gives far fewer frames: {small_depth} vs {default_depth}"
    );
}

/// Writes 100 bytes to fd `$fd` 100 times.
fn writer(fd: i32) -> String {
    format!(
        r#"(module
             (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
             (memory (export "memory") 1)
             (data (i32.const 0) "\10\00\00\00\64\00\00\00") ;; one iovec: 100 bytes at 16
             (func (export "_start")
               (local $i i32)
               (loop $again
                 (drop (call $write (i32.const {fd}) (i32.const 0) (i32.const 1) (i32.const 8)))
                 (local.set $i (i32.add (local.get $i) (i32.const 1)))
                 (br_if $again (i32.lt_u (local.get $i) (i32.const 100))))))"#
    )
}

#[test]
fn captured_output_is_capped_and_marked_truncated() {
    let limits = Limits::default().max_output_bytes(1000);
    let stdout = Sandbox::new()
        .limits(limits.clone())
        .run(&support::wat("stdout-writer", &writer(1)))
        .unwrap();
    assert!(
        stdout.success(),
        "the guest was not failed for writing: {:?}",
        stdout.trap()
    );
    assert_eq!((stdout.stdout.len(), stdout.stdout_truncated), (1000, true));
    assert_eq!((stdout.stderr.len(), stdout.stderr_truncated), (0, false));

    let stderr = Sandbox::new()
        .limits(limits)
        .run(&support::wat("stderr-writer", &writer(2)))
        .unwrap();
    assert_eq!((stderr.stderr.len(), stderr.stderr_truncated), (1000, true));
    assert!(!stderr.stdout_truncated);

    let exact = Sandbox::new()
        .limits(Limits::default().max_output_bytes(10_000))
        .run(&support::wat("stdout-writer", &writer(1)))
        .unwrap();
    assert_eq!((exact.stdout.len(), exact.stdout_truncated), (10_000, false));
}

#[test]
fn the_host_log_budget_cuts_long_messages_and_floods_of_empty_ones() {
    let module = support::logging_guest(
        "logger",
        r#"(func (export "_start")
             (local $i i32)
             (loop $again
               (call $log (i32.const 0) (i32.const 5))
               (call $log (i32.const 0) (i32.const 0))
               (local.set $i (i32.add (local.get $i) (i32.const 1)))
               (br_if $again (i32.lt_u (local.get $i) (i32.const 100000)))))"#,
    );
    let limits = Limits::default().max_log_bytes(14);
    let outcome = Sandbox::new().limits(limits).run(&module).unwrap();
    assert!(outcome.success(), "{:?}", outcome.trap());
    assert_eq!(outcome.host_log, ["hello", "", "hello", "", "he"]);
    assert!(outcome.host_log_truncated);
}

#[test]
fn a_log_that_fits_the_budget_exactly_is_whole_and_one_byte_over_is_cut() {
    let module = support::logging_guest(
        "log-twice",
        r#"(func (export "_start") (call $log (i32.const 0) (i32.const 5)) (call $log (i32.const 0) (i32.const 5)))"#,
    );
    let run = |max_log_bytes| {
        let limits = Limits::default().max_log_bytes(max_log_bytes);
        let outcome = Sandbox::new().limits(limits).run(&module).unwrap();
        assert!(outcome.success(), "{:?}", outcome.trap());
        (outcome.host_log, outcome.host_log_truncated)
    };
    assert_eq!(run(10), (vec!["hello".to_owned(), "hello".to_owned()], false));
    assert_eq!(run(9), (vec!["hello".to_owned(), "hell".to_owned()], true));
    // The only cut is the last message's: nothing is dropped after it.
    assert_eq!(run(8), (vec!["hello".to_owned(), "hel".to_owned()], true));
}
