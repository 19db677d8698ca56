//! `host::Error` as the Rust API guidelines want it: each message says what
//! failed at its own level, the cause is only its `source()`, so a report
//! that walks the chain (anyhow's `{:#}`) shows every cause once.

use host::{DirAccess, Error, Runtime, Sandbox};

use crate::support;

/// One error of each kind that has a cause underneath.
fn errors_with_causes() -> Vec<Error> {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.wasm");
    let mut errors = vec![
        Runtime::shared().load_file(&missing).unwrap_err(),
        Runtime::shared()
            .load_bytes("broken", "(module (func (result i32)))")
            .err()
            .unwrap(),
        Runtime::shared()
            .load_bytes("truncated", b"\0asm\x01\0\0\0\x01")
            .err()
            .unwrap(),
    ];
    let quick = support::wat("quick", r#"(module (func (export "_start")))"#);
    errors.push(
        Sandbox::new()
            .dir(&missing, "/data", DirAccess::ReadOnly)
            .run(&quick)
            .unwrap_err(),
    );
    let too_big = support::wat("too_big", r#"(module (memory 65536) (func (export "_start")))"#);
    errors.push(Sandbox::new().run(&too_big).unwrap_err());
    errors
}

#[test]
fn a_chained_report_shows_each_cause_once() {
    for error in errors_with_causes() {
        let mut levels = Vec::new();
        let mut level: Option<&dyn std::error::Error> = Some(&error);
        while let Some(this) = level {
            levels.push(this.to_string());
            if let Some(cause) = this.source() {
                assert!(
                    !this.to_string().contains(&cause.to_string()),
                    "{this:?} repeats its cause {cause:?}"
                );
            }
            level = this.source();
        }
        assert!(levels.len() > 1, "{error:?} has a cause");
        let report = format!("{:#}", anyhow::Error::from(error));
        assert_eq!(report, levels.join(": "));
    }
}
