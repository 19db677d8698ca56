//! Scenario 8: the exit code is the one the guest passed to `proc_exit`, or
//! 0 when `_start` returns.

use host::{Error, Sandbox, Termination};

use crate::support;

#[test]
fn proc_exit_13_gives_exit_code_13() {
    let outcome = Sandbox::new().run(&support::fixture("proc_exit_13.wat")).unwrap();
    assert_eq!(outcome.termination, Termination::Exited(13));
    assert_eq!(outcome.exit_code(), Some(13));
    assert!(!outcome.success());
}

#[test]
fn returning_from_start_is_exit_code_0() {
    let module = support::wat(
        "returns",
        r#"(module (memory (export "memory") 0) (func (export "_start")))"#,
    );
    let outcome = Sandbox::new().run(&module).unwrap();
    assert_eq!(outcome.termination, Termination::Exited(0));
    assert!(outcome.success());
}

#[test]
fn a_rust_guest_exit_code_reaches_the_host() {
    let outcome = Sandbox::new()
        .stdin("x\n")
        .run(&support::modules::csv_processor())
        .unwrap();
    assert_eq!(outcome.exit_code(), Some(1));
}

#[test]
fn proc_exit_from_a_called_export_is_a_typed_error() {
    let module = support::wat(
        "exits",
        r#"(module
             (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
             (memory (export "memory") 1)
             (func (export "quit") (call $exit (i32.const 7))))"#,
    );
    let mut guest = Sandbox::new().instantiate(&module).unwrap();
    assert!(matches!(
        guest.call::<(), ()>("quit", ()),
        Err(Error::Exit { code: 7, .. })
    ));
}
