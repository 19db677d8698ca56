//! The pooling allocator, on by default: guests run the same in pre-reserved
//! slots, and none fails for want of one. A guest that finds every slot
//! taken, a module larger than a slot and a run whose limits allow more than
//! a slot holds all run on demand instead.

use host::{Limits, Pooling, Runtime, RuntimeConfig, Sandbox};

fn pooled(pooling: Pooling) -> Runtime {
    Runtime::new(&RuntimeConfig::default().pooling(Some(pooling))).unwrap()
}

/// How many core instances live in `runtime`'s pool now.
fn in_pool(runtime: &Runtime) -> u64 {
    runtime
        .engine()
        .pooling_allocator_metrics()
        .expect("the runtime pools")
        .core_instances()
}

fn csv_processor(runtime: &Runtime) -> host::GuestModule {
    runtime
        .load_file(xtask::guests::artifact("csv_processor").unwrap())
        .unwrap()
}

fn sums_csv(module: &host::GuestModule) {
    let outcome = Sandbox::new().stdin("1,2,3,4,5\n").run(module).unwrap();
    assert_eq!(outcome.stdout_text().trim(), "15", "{outcome:?}");
}

/// A module whose every instance counts its own calls.
const COUNTER: &str = r#"(module
    (memory (export "memory") 1)
    (global $n (mut i32) (i32.const 0))
    (func (export "next") (result i32)
        (global.set $n (i32.add (global.get $n) (i32.const 1)))
        (global.get $n)))"#;

#[test]
fn the_default_runtime_pools_and_an_explicit_opt_out_does_not() {
    assert!(Runtime::shared().engine().pooling_allocator_metrics().is_some());
    let on_demand = Runtime::new(&RuntimeConfig::default().pooling(None)).unwrap();
    assert!(on_demand.engine().pooling_allocator_metrics().is_none());
    sums_csv(&csv_processor(&on_demand));
}

#[test]
fn guests_run_the_same_in_pooled_slots() {
    let runtime = pooled(Pooling::default());
    let module = csv_processor(&runtime);
    for _ in 0..3 {
        sums_csv(&module);
    }
    let guest = Sandbox::new().instantiate(&module).unwrap();
    assert_eq!(in_pool(&runtime), 1, "a run within the default limits takes a slot");
    drop(guest);
    assert_eq!(in_pool(&runtime), 0, "and gives it back");
}

#[test]
fn more_guests_than_slots_all_run() {
    let runtime = pooled(Pooling {
        max_instances: 2,
        ..Pooling::default()
    });
    let counter = runtime.load_bytes("counter", COUNTER).unwrap();
    let mut held: Vec<_> = (0..5).map(|_| Sandbox::new().instantiate(&counter).unwrap()).collect();
    assert_eq!(in_pool(&runtime), 2, "two in the pool, three on demand");
    for guest in &mut held {
        assert_eq!(
            guest.call::<(), i32>("next", ()).unwrap(),
            1,
            "each guest its own instance"
        );
    }
    sums_csv(&csv_processor(&runtime));
    drop(held);
    assert_eq!(in_pool(&runtime), 0);
    let _guest = Sandbox::new().instantiate(&counter).unwrap();
    assert_eq!(in_pool(&runtime), 1, "freed slots serve again");
}

#[test]
fn a_run_allowed_more_memory_than_a_slot_holds_gets_it() {
    let runtime = pooled(Pooling {
        max_memory_bytes: 1 << 20,
        ..Pooling::default()
    });
    let module = runtime
        .load_bytes(
            "grow",
            r#"(module (memory (export "memory") 1)
                (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#,
        )
        .unwrap();
    let within = |max_memory_bytes| Limits::default().max_memory_bytes(max_memory_bytes);
    let mut large = Sandbox::new().limits(within(4 << 20)).instantiate(&module).unwrap();
    assert_eq!(
        large.call::<i32, i32>("grow", 47).unwrap(),
        1,
        "3 MiB, past a 1 MiB slot"
    );
    assert_eq!(in_pool(&runtime), 0, "on demand");
    let mut small = Sandbox::new().limits(within(1 << 20)).instantiate(&module).unwrap();
    assert_eq!(in_pool(&runtime), 1, "a run within a slot is pooled");
    assert_eq!(small.call::<i32, i32>("grow", 16).unwrap(), -1, "and held to its limit");
}

#[test]
fn a_module_larger_than_a_slot_loads_and_runs_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = || {
        Runtime::new(
            &RuntimeConfig::default()
                .pooling(Some(Pooling {
                    max_memory_bytes: 1 << 20,
                    ..Pooling::default()
                }))
                .cache(host::CacheMode::OnDisk(dir.path().join("cache"))),
        )
        .unwrap()
    };
    // Loaded for runs within a slot, yet its memory starts at 2 MiB: the
    // pool refuses it, the on-demand engine takes it.
    let slot = Limits::default().max_memory_bytes(1 << 20);
    let big = r#"(module (memory (export "memory") 32) (func (export "pages") (result i32) memory.size))"#;
    for process in ["first", "second"] {
        let runtime = runtime();
        let module = runtime.load_bytes_for("big", big, &slot).unwrap();
        let mut guest = Sandbox::new().instantiate(&module).unwrap();
        assert_eq!(guest.call::<(), i32>("pages", ()).unwrap(), 32, "{process}");
        let stats = runtime.cache_stats();
        assert_eq!(stats.discarded, 0, "{process}: the pool's refusal is no corrupt entry");
        if process == "second" {
            assert_eq!((stats.disk_hits, stats.compiled), (1, 0), "{stats:?}");
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn where_the_pool_cannot_be_reserved_the_runtime_allocates_on_demand() {
    // The limit is set in a child process: it holds for every thread.
    const AS_LIMITED: &str = "POOLING_TEST_ADDRESS_SPACE_LIMITED";
    if std::env::var_os(AS_LIMITED).is_none() {
        crate::support::run_test_in_child_process(
            "pooling::where_the_pool_cannot_be_reserved_the_runtime_allocates_on_demand",
            &[(AS_LIMITED, "1")],
        );
        return;
    }
    // Room for on-demand memories (4 GiB reservations each), not for 256 slots.
    let limit = libc::rlimit {
        rlim_cur: 64 << 30,
        rlim_max: 64 << 30,
    };
    // SAFETY: setrlimit reads the struct it is given and nothing else.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
    let runtime = Runtime::new(&RuntimeConfig::default()).unwrap();
    assert!(runtime.engine().pooling_allocator_metrics().is_none());
    sums_csv(&csv_processor(&runtime));
}

/// Reads what its instance's memory holds where the data segment put 42,
/// and past it (on a page of its own; on pages it grows, within the 4 MiB
/// `wasm-host test` keeps resident and beyond), then writes over them all:
/// a fresh instance must see 42 and zeros again.
const PROBE: &str = r#"(module
    (memory (export "memory") 2)
    (data (i32.const 16) "\2a")
    (func (export "probe") (result i32)
        (local $seen i32)
        (drop (memory.grow (i32.const 79)))
        (local.set $seen
            (i32.add (i32.load8_u (i32.const 16))
                (i32.mul (i32.const 1000)
                    (i32.add (i32.add (i32.load8_u (i32.const 70000)) (i32.load8_u (i32.const 140000)))
                        (i32.add (i32.load8_u (i32.const 3145728)) (i32.load8_u (i32.const 4718592)))))))
        (i32.store8 (i32.const 16) (i32.const 7))
        (i32.store8 (i32.const 70000) (i32.const 9))
        (i32.store8 (i32.const 140000) (i32.const 9))
        (i32.store8 (i32.const 3145728) (i32.const 9))
        (i32.store8 (i32.const 4718592) (i32.const 9))
        (local.get $seen)))"#;

/// A slot that keeps its memory resident is reset in place between
/// instances: none sees what the one before it wrote, in its data segment,
/// past it, or in memory it grew.
#[test]
fn a_slot_kept_resident_shows_each_instance_fresh_memory() {
    // Less than the probe's data page, and what `wasm-host test` keeps.
    for keep_resident_bytes in [32 << 10, 4 << 20] {
        let runtime = pooled(Pooling {
            max_instances: 1,
            keep_resident_bytes,
            ..Pooling::default()
        });
        let module = runtime.load_bytes("probe", PROBE).unwrap();
        for run in 0..20 {
            let mut guest = Sandbox::new().instantiate(&module).unwrap();
            assert_eq!(in_pool(&runtime), 1, "run {run} in the one slot");
            assert_eq!(
                guest.call::<(), i32>("probe", ()).unwrap(),
                42,
                "run {run}, {keep_resident_bytes} bytes kept"
            );
        }
    }
}
