//! Every host call that can block the guest's thread, and the deadline that
//! bounds it (the list is in ARCHITECTURE.md): `poll_oneoff` on every clock
//! and every mix of subscriptions, and the guest's monotonic clock those
//! sleeps are measured on.

use std::time::{Duration, Instant, SystemTime};

use host::{Error, Limits, Sandbox, TrapKind};

use crate::support;

const CLOCKS: &str = r#"
    (module
      (import "wasi_snapshot_preview1" "clock_time_get" (func $time (param i32 i64 i32) (result i32)))
      (import "wasi_snapshot_preview1" "clock_res_get" (func $res (param i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "now") (result i64)
        (drop (call $time (i32.const 1) (i64.const 1) (i32.const 0)))
        (i64.load (i32.const 0)))
      (func (export "resolution") (result i64)
        (drop (call $res (i32.const 1) (i32.const 8)))
        (i64.load (i32.const 8))))"#;

#[test]
fn the_guest_monotonic_clock_starts_with_its_store_and_advances_in_nanoseconds() {
    let mut guest = Sandbox::new().instantiate(&support::wat("clocks", CLOCKS)).unwrap();
    let first = guest.call::<(), i64>("now", ()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let second = guest.call::<(), i64>("now", ()).unwrap();
    assert!(first < 60_000_000_000, "counted from the store's creation: {first}");
    assert!(second - first >= 20_000_000, "{first} then {second}");
    assert_eq!(guest.call::<(), i64>("resolution", ()).unwrap(), 1);
}

/// Calls `poll_oneoff` on the subscriptions the test writes at 0:
/// `poll(count) -> errno`, events at 4096, their number at 8192.
const POLLER: &str = r#"
    (module
      (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "poll") (param $count i32) (result i32)
        (call $poll (i32.const 0) (i32.const 4096) (local.get $count) (i32.const 8192)))
      (func (export "events") (result i32) (i32.load (i32.const 8192))))"#;

/// One preview 1 `subscription`, as the guest would lay it out.
#[derive(Debug)]
enum Sub {
    /// Clock id, timeout in nanoseconds, absolute or not.
    Clock(u32, u64, bool),
    /// Readiness of a descriptor for reading.
    FdRead(u32),
    /// Readiness of a descriptor for writing.
    FdWrite(u32),
}

fn encode(subs: &[Sub]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for sub in subs {
        let mut one = [0u8; 48];
        let (tag, fd_or_clock) = match *sub {
            Sub::Clock(id, timeout, absolute) => {
                one[24..32].copy_from_slice(&timeout.to_le_bytes());
                one[40] = u8::from(absolute);
                (0, id)
            }
            Sub::FdRead(fd) => (1, fd),
            Sub::FdWrite(fd) => (2, fd),
        };
        one[8] = tag;
        one[16..20].copy_from_slice(&fd_or_clock.to_le_bytes());
        bytes.extend_from_slice(&one);
    }
    bytes
}

const REALTIME: u32 = 0;
const MONOTONIC: u32 = 1;
const PROCESS: u32 = 2;
const THREAD: u32 = 3;
const MINUTE: u64 = 60_000_000_000;

/// Polls `subs` under a 300 ms timeout: the errno or the trap, and how long it took.
fn poll(subs: &[Sub]) -> (Result<i32, TrapKind>, Duration) {
    let limits = Limits::default().timeout(Some(Duration::from_millis(300)));
    let mut guest = Sandbox::new()
        .limits(limits)
        .instantiate(&support::wat("poller", POLLER))
        .unwrap();
    guest.write_memory(0, &encode(subs)).unwrap();
    let started = Instant::now();
    let result = match guest.call::<i32, i32>("poll", subs.len() as i32) {
        Ok(errno) => Ok(errno),
        Err(Error::Trap { trap, .. }) => Err(trap.kind),
        Err(other) => panic!("{other}"),
    };
    (result, started.elapsed())
}

fn wall_clock_in(delay: u64) -> u64 {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap();
    u64::try_from(now.as_nanos()).unwrap() + delay
}

#[test]
fn a_poll_past_the_deadline_on_any_clock_or_mix_is_a_timeout() {
    let cases = [
        vec![Sub::Clock(PROCESS, MINUTE, false)],
        vec![Sub::Clock(THREAD, MINUTE, false)],
        vec![Sub::Clock(REALTIME, MINUTE, false)],
        vec![Sub::Clock(MONOTONIC, u64::MAX, false)],
        vec![Sub::Clock(REALTIME, wall_clock_in(MINUTE), true)],
        vec![Sub::Clock(MONOTONIC, u64::MAX, true)],
        vec![
            Sub::Clock(MONOTONIC, MINUTE, false),
            Sub::Clock(REALTIME, wall_clock_in(MINUTE), true),
        ],
        vec![
            Sub::Clock(MONOTONIC, MINUTE, true),
            Sub::Clock(MONOTONIC, MINUTE, false),
        ],
    ];
    for subs in cases {
        let (result, took) = poll(&subs);
        assert_eq!(result, Err(TrapKind::Timeout), "{subs:?}");
        assert!(took < Duration::from_millis(300) + support::SLACK, "{subs:?}: {took:?}");
    }
}

#[test]
fn polls_that_end_in_time_are_answered_whatever_they_mix() {
    let cases = [
        // A ready descriptor answers at once beside a clock a minute away.
        (vec![Sub::Clock(MONOTONIC, MINUTE, false), Sub::FdRead(0)], 0),
        (vec![Sub::FdWrite(1), Sub::Clock(REALTIME, MINUTE, false)], 0),
        // The earlier clock fires before the deadline.
        (
            vec![
                Sub::Clock(MONOTONIC, 10_000_000, false),
                Sub::Clock(REALTIME, MINUTE, false),
            ],
            0,
        ),
        (vec![Sub::Clock(THREAD, 10_000_000, false)], 0),
        // Preview 1 has no absolute wait on a CPU-time clock, and none on several.
        (vec![Sub::Clock(PROCESS, MINUTE, true)], 28),
        (
            vec![Sub::Clock(MONOTONIC, MINUTE, false), Sub::Clock(THREAD, MINUTE, false)],
            28,
        ),
        // A descriptor that is not open.
        (vec![Sub::Clock(MONOTONIC, MINUTE, false), Sub::FdRead(99)], 8),
    ];
    for (subs, errno) in cases {
        let (result, took) = poll(&subs);
        assert_eq!(result, Ok(errno), "{subs:?}");
        assert!(took < Duration::from_millis(300), "{subs:?}: {took:?}");
    }
}

/// A lone relative sleep that ends in time, which the host waits itself
/// (so that its deadline or a cancellation can end it) before Wasmtime
/// answers the poll with the clock's timeout at zero: one clock event with
/// the guest's userdata, and the subscription left as the guest wrote it.
#[test]
fn a_lone_sleep_in_time_gets_its_event_and_leaves_the_subscription_as_written() {
    let limits = Limits::default().timeout(Some(Duration::from_secs(60)));
    let mut guest = Sandbox::new()
        .limits(limits)
        .instantiate(&support::wat("poller", POLLER))
        .unwrap();
    let mut subscription = encode(&[Sub::Clock(MONOTONIC, 10_000_000, false)]);
    subscription[..8].copy_from_slice(b"userdata");
    guest.write_memory(0, &subscription).unwrap();
    let started = Instant::now();
    assert_eq!(guest.call::<i32, i32>("poll", 1).unwrap(), 0, "errno");
    assert!(started.elapsed() >= Duration::from_millis(10), "it slept");
    assert_eq!(guest.call::<(), i32>("events", ()).unwrap(), 1);
    // userdata at 0, errno (u16) at 8, type at 10 (0, a clock).
    let event = guest.read_memory(4096, 11).unwrap();
    assert_eq!((&event[..8], &event[8..]), (&b"userdata"[..], &[0, 0, 0][..]));
    assert_eq!(guest.read_memory(0, 48).unwrap(), subscription);
}

/// The same poll with the events, or their number, where the guest chooses.
const POLL_INTO: &str = r#"
    (module
      (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "poll") (param $events i32) (param $written i32) (result i32)
        (call $poll (i32.const 0) (local.get $events) (i32.const 1) (local.get $written))))"#;

/// A guest may lay the poll's answer over its own subscription (the ABI
/// forbids nothing of the kind): the answer must read as Wasmtime wrote it,
/// whatever the host did with the subscription's timeout while it slept.
#[test]
fn a_lone_sleep_answered_over_its_own_subscription_reads_as_answered() {
    let subscription = encode(&[Sub::Clock(MONOTONIC, 1_000_000, false)]);
    let mut guest = Sandbox::new()
        .instantiate(&support::wat("poll-into", POLL_INTO))
        .unwrap();
    // The number of events over the timeout (at 24).
    guest.write_memory(0, &subscription).unwrap();
    assert_eq!(guest.call::<(i32, i32), i32>("poll", (4096, 24)).unwrap(), 0, "errno");
    assert_eq!(guest.read_memory(24, 4).unwrap(), 1u32.to_le_bytes(), "one event");
    assert_eq!(
        guest.read_memory(28, 4).unwrap(),
        [0; 4],
        "the timeout's high half, as written"
    );
    // The event over the timeout: userdata at 16, errno and type at 24..27.
    guest.write_memory(0, &subscription).unwrap();
    assert_eq!(guest.call::<(i32, i32), i32>("poll", (16, 8192)).unwrap(), 0, "errno");
    assert_eq!(guest.read_memory(24, 3).unwrap(), [0, 0, 0], "success, a clock event");
    // The event where the subscription was: as the guest reads it.
    guest.write_memory(0, &subscription).unwrap();
    assert_eq!(guest.call::<(i32, i32), i32>("poll", (0, 8192)).unwrap(), 0, "errno");
    assert_eq!(guest.read_memory(8, 3).unwrap(), [0, 0, 0], "success, a clock event");
}

/// A guest whose memory is shared (the threads proposal) sleeping
/// `nanos` in a lone `poll_oneoff`, then writing to stdout.
fn shared_sleeper(runtime: &host::Runtime, nanos: u64) -> host::GuestModule {
    let wat = format!(
        r#"(module
          (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1 1 shared)
          (data (i32.const 1024) "slept\n")
          (func (export "_start")
            (i32.store (i32.const 16) (i32.const 1))
            (i64.store (i32.const 24) (i64.const {nanos}))
            (if (call $poll (i32.const 0) (i32.const 256) (i32.const 1) (i32.const 512))
              (then (call $exit (i32.const 3))))
            (i32.store (i32.const 600) (i32.const 1024))
            (i32.store (i32.const 604) (i32.const 6))
            (drop (call $write (i32.const 1) (i32.const 600) (i32.const 1) (i32.const 608)))))"#
    );
    runtime.load_bytes("shared-sleeper", wat).unwrap()
}

/// The guarded calls read and write a shared memory (a runtime with the
/// threads proposal) as Wasmtime's own do, and the lone sleep is bounded
/// there too.
#[test]
fn a_guest_with_a_shared_memory_sleeps_and_writes_within_its_deadline() {
    let runtime = host::Runtime::new(&host::RuntimeConfig::default().proposals([host::Proposal::Threads])).unwrap();
    let outcome = Sandbox::new().run(&shared_sleeper(&runtime, 1_000_000)).unwrap();
    assert_eq!(outcome.termination, host::Termination::Exited(0));
    assert_eq!(outcome.stdout_text(), "slept\n");
    let limits = Limits::default().timeout(Some(Duration::from_millis(200)));
    let outcome = Sandbox::new()
        .limits(limits)
        .run(&shared_sleeper(&runtime, 3_600_000_000_000))
        .unwrap();
    assert_eq!(support::trap_kind(&outcome), TrapKind::Timeout);
}
