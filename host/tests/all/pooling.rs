//! The pooling allocator: guests run the same in pre-reserved slots, and a
//! module that does not fit a slot, or a guest that finds every slot taken,
//! gets a typed error instead of a crash.

use host::{Error, Limits, Pooling, Runtime, RuntimeConfig, Sandbox};

fn pooled(pooling: Pooling) -> Runtime {
    Runtime::new(&RuntimeConfig {
        pooling: Some(pooling),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

#[test]
fn guests_run_the_same_in_pooled_slots() {
    let runtime = pooled(Pooling::default());
    let path = xtask::guests::artifact("csv_processor").unwrap();
    let module = runtime.load_file(&path).unwrap();
    for _ in 0..3 {
        let outcome = Sandbox::new().stdin("1,2,3,4,5\n").run(&module).unwrap();
        assert_eq!(outcome.stdout_text().trim(), "15", "slots are reset between runs");
    }
}

#[test]
fn a_memory_larger_than_a_slot_is_refused_when_loading() {
    let runtime = pooled(Pooling {
        max_memory_bytes: 1 << 20,
        ..Pooling::default()
    });
    let error = runtime
        .load_bytes("big", "(module (memory 32) (func (export \"_start\")))")
        .err()
        .expect("two MiB of initial memory does not fit a one MiB slot");
    assert!(
        matches!(&error, Error::InvalidModule { module, .. } if module == "big")
            && error.to_string().contains("pooling"),
        "{error:?}"
    );
}

#[test]
fn when_every_slot_is_taken_the_next_guest_fails_cleanly() {
    let runtime = pooled(Pooling {
        max_instances: 2,
        ..Pooling::default()
    });
    let module = runtime
        .load_bytes("tiny", "(module (memory (export \"memory\") 1) (func (export \"f\")))")
        .unwrap();
    let sandbox = Sandbox::new().limits(Limits::default());
    let held: Vec<_> = (0..2).map(|_| sandbox.instantiate(&module).unwrap()).collect();
    let error = sandbox
        .instantiate(&module)
        .err()
        .expect("a third instance has no slot");
    assert!(matches!(error, Error::Instantiate { .. }), "{error:?}");
    drop(held);
    assert!(
        sandbox.instantiate(&module).is_ok(),
        "slots are returned when guests end"
    );
}
