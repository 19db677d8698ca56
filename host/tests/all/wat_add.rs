//! Scenario 1: an inline WAT function called with typed arguments.

use host::{Error, Sandbox};

use crate::support;

const ADD: &str = r#"
    (module
      (func (export "add") (param i32 i32) (result i32)
        local.get 0
        local.get 1
        i32.add))"#;

#[test]
fn add_returns_the_sum() {
    let mut guest = Sandbox::new().instantiate(&support::wat("add", ADD)).unwrap();
    assert_eq!(guest.call::<(i32, i32), i32>("add", (3, 4)).unwrap(), 7);
    assert_eq!(guest.call::<(i32, i32), i32>("add", (-1, 1)).unwrap(), 0);
    assert_eq!(guest.call::<(i32, i32), i32>("add", (i32::MAX, 0)).unwrap(), i32::MAX);
}

#[test]
fn add_wraps_on_overflow_as_wasm_specifies() {
    let mut guest = Sandbox::new().instantiate(&support::wat("add", ADD)).unwrap();
    assert_eq!(guest.call::<(i32, i32), i32>("add", (i32::MAX, 1)).unwrap(), i32::MIN);
}

#[test]
fn calling_with_the_wrong_signature_is_a_typed_error() {
    let mut guest = Sandbox::new().instantiate(&support::wat("add", ADD)).unwrap();
    let error = guest.call::<(i64, i64), i64>("add", (3, 4)).unwrap_err();
    match error {
        Error::ExportSignature { export, found, .. } => {
            assert_eq!(export, "add");
            assert!(found.contains("i32"), "the declared type is named: {found}");
        }
        other => panic!("expected ExportSignature, got {other:?}"),
    }
}

#[test]
fn calling_a_missing_export_names_it() {
    let mut guest = Sandbox::new().instantiate(&support::wat("add", ADD)).unwrap();
    let error = guest.call::<(), ()>("subtract", ()).unwrap_err();
    assert!(
        matches!(&error, Error::MissingExport { export, .. } if export == "subtract"),
        "{error:?}"
    );
}

#[test]
fn invalid_wat_is_a_typed_error_not_a_panic() {
    let error = host::Runtime::shared()
        .load_bytes("broken", "(module (func (export \"f\") (result i32)))")
        .expect_err("a function that returns nothing where i32 is declared is invalid");
    assert!(
        matches!(error, Error::InvalidModule { ref module, .. } if module == "broken"),
        "{error:?}"
    );
}

#[test]
fn a_reactor_is_initialized_before_its_first_call() {
    let module = support::wat(
        "reactor",
        r#"(module
             (global $ready (mut i32) (i32.const 0))
             (func (export "_initialize") (global.set $ready (i32.const 1)))
             (func (export "ready") (result i32) (global.get $ready)))"#,
    );
    let mut guest = Sandbox::new().instantiate(&module).unwrap();
    assert!(guest.has_export("ready"));
    assert!(!guest.has_export("absent"));
    assert_eq!(guest.call::<(), i32>("ready", ()).unwrap(), 1);
}

#[test]
fn add_called_with_values_typed_at_run_time() {
    use wasmtime::Val;
    let mut guest = Sandbox::new().instantiate(&support::wat("add", ADD)).unwrap();
    assert_eq!(
        guest.func_type("add").unwrap().to_string(),
        "(type (func (param i32 i32) (result i32)))"
    );
    let sum = guest.call_values("add", &[Val::I32(3), Val::I32(4)]).unwrap();
    assert!(matches!(sum[..], [Val::I32(7)]), "{sum:?}");
    for wrong in [
        &[Val::I32(3)][..],
        &[Val::I32(3), Val::I64(4)],
        &[Val::I32(3), Val::I32(4), Val::I32(5)],
    ] {
        match guest.call_values("add", wrong) {
            Err(Error::ExportSignature { found, .. }) => assert!(found.contains("i32 i32"), "{found}"),
            other => panic!("{wrong:?}: {other:?}"),
        }
    }
}
