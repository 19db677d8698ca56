//! Every host call that can block the guest's thread, and the deadline that
//! bounds it (the list is in ARCHITECTURE.md): `poll_oneoff` on every clock
//! and every mix of subscriptions, and the guest's monotonic clock those
//! sleeps are measured on.

use std::time::Duration;

use host::Sandbox;

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
