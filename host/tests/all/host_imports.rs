//! Scenario 7: host functions imported by the guest, from WAT and from Rust.

use std::sync::{Arc, Mutex};

use host::{Error, GuestState, Sandbox, TrapKind};
use wasmtime::Caller;

use crate::support;

#[test]
fn wat_guest_logs_exactly_one_hello() {
    let mut guest = Sandbox::new()
        .instantiate(&support::logging_guest(
            "log-hello",
            r#"(func (export "run") (call $log (i32.const 0) (i32.const 5)))"#,
        ))
        .unwrap();
    guest.call::<(), ()>("run", ()).unwrap();
    assert_eq!(guest.host_log(), ["hello"]);
}

#[test]
fn rust_guest_logs_exactly_one_hello() {
    let outcome = Sandbox::new().run(&support::modules::host_logger()).unwrap();
    assert!(outcome.success(), "{:?}", outcome.trap());
    assert_eq!(outcome.host_log, ["hello"]);
}

#[test]
fn a_log_pointer_outside_memory_is_a_host_error_trap() {
    let module = support::logging_guest(
        "log-oob",
        r#"(func (export "run") (param i32 i32) (call $log (local.get 0) (local.get 1)))"#,
    );
    let mut guest = Sandbox::new().instantiate(&module).unwrap();
    for (ptr, len) in [(65530, 10), (0, -1), (-1, 1)] {
        match guest.call::<(i32, i32), ()>("run", (ptr, len)).unwrap_err() {
            Error::Trap { trap, .. } => {
                assert_eq!(trap.kind, TrapKind::HostError, "{trap}");
                assert!(trap.message.contains("out of bounds"), "{}", trap.message);
            }
            other => panic!("expected a trap for ({ptr}, {len}), got {other:?}"),
        }
    }
    assert!(guest.host_log().is_empty(), "nothing was logged from outside memory");
}

#[test]
fn embedders_register_their_own_functions() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = seen.clone();
    let module = support::wat(
        "custom-import",
        r#"(module
             (import "env" "record" (func $record (param i32) (result i32)))
             (memory (export "memory") 1)
             (func (export "run") (result i32) (call $record (i32.const 21))))"#,
    );
    let mut guest = Sandbox::new()
        .host_func("env", "record", move |caller: Caller<'_, GuestState>, x: i32| {
            recorder.lock().unwrap().push((x, caller.data().host_log().len()));
            x * 2
        })
        .instantiate(&module)
        .unwrap();
    assert_eq!(guest.call::<(), i32>("run", ()).unwrap(), 42);
    assert_eq!(*seen.lock().unwrap(), [(21, 0)]);
}
