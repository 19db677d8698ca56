//! Scenario 6: loads inside linear memory work; one past the end traps
//! inside the guest and never touches host memory.

use host::{Error, Sandbox, Termination, TrapKind};

use crate::support;

const LOADS: &str = r#"
    (module
      (memory 1) ;; one page: 65536 bytes
      (func (export "load") (param i32) (result i32)
        local.get 0
        i32.load))"#;

#[test]
fn a_load_inside_memory_succeeds() {
    let mut guest = Sandbox::new().instantiate(&support::wat("loads", LOADS)).unwrap();
    assert_eq!(guest.call::<i32, i32>("load", 0).unwrap(), 0);
    assert_eq!(guest.call::<i32, i32>("load", 65532).unwrap(), 0, "the last whole word");
}

#[test]
fn a_load_at_65536_traps_as_memory_out_of_bounds() {
    let mut guest = Sandbox::new().instantiate(&support::wat("loads", LOADS)).unwrap();
    for address in [65536, 65533, -1] {
        match guest.call::<i32, i32>("load", address).unwrap_err() {
            Error::Trap { trap, module } => {
                assert_eq!(trap.kind, TrapKind::MemoryOutOfBounds, "at {address}: {trap}");
                assert!(trap.message.contains("out of bounds"), "{}", trap.message);
                assert_eq!(module, "loads");
            }
            other => panic!("expected a trap at {address}, got {other:?}"),
        }
    }
    assert_eq!(
        guest.call::<i32, i32>("load", 4).unwrap(),
        0,
        "the instance survives its traps"
    );
}

#[test]
fn a_command_that_traps_reports_it_in_the_outcome() {
    let module = support::wat(
        "oob-command",
        r#"(module
             (memory (export "memory") 1)
             (func $read_past_end (export "_start") (drop (i32.load (i32.const 65536)))))"#,
    );
    let outcome = Sandbox::new().run(&module).unwrap();
    let trap = outcome.trap().expect("the run trapped");
    assert_eq!(trap.kind, TrapKind::MemoryOutOfBounds);
    assert_eq!(outcome.exit_code(), None);
    assert!(
        trap.backtrace.as_deref().is_some_and(|b| b.contains("read_past_end")),
        "{trap:?}"
    );
}

#[test]
fn other_traps_are_classified() {
    let module = support::wat(
        "traps",
        r#"(module
             (type $unary (func (param i32) (result i32)))
             (table 1 funcref)
             (func (export "unreachable") unreachable)
             (func (export "divide") (param i32) (result i32) (i32.div_s (i32.const 1) (local.get 0)))
             (func (export "recurse") (call 2))
             (func (export "overflow") (result i32) (i32.div_s (i32.const 0x80000000) (i32.const -1)))
             (func (export "convert") (param f32) (result i32) (i32.trunc_f32_s (local.get 0)))
             (func (export "indirect") (result i32) (call_indirect (type $unary) (i32.const 0) (i32.const 0))))"#,
    );
    let mut guest = Sandbox::new().instantiate(&module).unwrap();
    let kind = |result: Result<(), Error>| match result {
        Err(Error::Trap { trap, .. }) => trap.kind,
        other => panic!("expected a trap, got {other:?}"),
    };
    assert_eq!(kind(guest.call("unreachable", ())), TrapKind::Unreachable);
    assert_eq!(
        kind(guest.call::<i32, i32>("divide", 0).map(drop)),
        TrapKind::IntegerDivideByZero
    );
    assert_eq!(
        kind(guest.call::<(), i32>("overflow", ()).map(drop)),
        TrapKind::IntegerOverflow
    );
    for (input, what) in [(f32::NAN, "NaN"), (3e9, "out of range")] {
        assert_eq!(
            kind(guest.call::<f32, i32>("convert", input).map(drop)),
            TrapKind::IntegerOverflow,
            "{what}"
        );
    }
    assert_eq!(kind(guest.call("recurse", ())), TrapKind::StackOverflow);
    assert_eq!(
        kind(guest.call::<(), i32>("indirect", ()).map(drop)),
        TrapKind::IndirectCall
    );
    assert_eq!(guest.call::<i32, i32>("divide", 1).unwrap(), 1);
    assert!(matches!(Sandbox::new().run(&module), Err(Error::MissingExport { ref export, .. }) if export == "_start"));
}

#[test]
fn a_start_function_that_traps_is_an_outcome_of_run() {
    let module = support::wat("start-traps", "(module (func $f unreachable) (start $f))");
    let outcome = Sandbox::new().run(&module).unwrap();
    assert_eq!(
        outcome.termination,
        Termination::Trapped(outcome.trap().unwrap().clone())
    );
    assert_eq!(outcome.trap().unwrap().kind, TrapKind::Unreachable);
}
