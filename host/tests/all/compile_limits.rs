//! Compiling is bounded: a module past a size limit is refused before
//! Cranelift sees it, and a compile past its deadline is given up on, each
//! a typed error naming the limit and the value.

use std::time::Duration;

use host::{CacheMode, CompileLimit, CompileLimits, Error, Runtime, RuntimeConfig};

/// One function with `locals` i64 locals and `ifs` `if` blocks that each
/// read and write some of them: Cranelift's work grows with their product.
fn locals_bomb(locals: usize, ifs: usize) -> String {
    let mut wat = format!("(module (func (export \"_start\") (local{})", " i64".repeat(locals));
    for i in 0..ifs {
        let (test, set, get) = (i % locals, (i * 7 + 1) % locals, (i * 3 + 2) % locals);
        wat.push_str(&format!(
            "(if (i64.eqz (local.get {test})) (then (local.set {set} (i64.add (local.get {get}) (i64.const 1)))))"
        ));
    }
    wat.push_str("))");
    wat
}

/// A runtime that compiles everything afresh under `limits`.
fn runtime(limits: CompileLimits) -> Runtime {
    Runtime::new(
        &RuntimeConfig::default()
            .cache(CacheMode::Disabled)
            .compile_limits(limits),
    )
    .unwrap()
}

/// The limit, value and maximum of a refusal.
fn refusal(result: Result<host::GuestModule, Error>) -> (CompileLimit, u64, u64) {
    match result {
        Err(Error::CompileLimit { limit, value, max, .. }) => (limit, value, max),
        Err(other) => panic!("expected a compile limit, got {other}"),
        Ok(_) => panic!("expected a compile limit, the module compiled"),
    }
}

#[test]
fn a_function_of_thousands_of_locals_and_blocks_is_refused_before_compiling() {
    // Tens of seconds and 900 MB of Cranelift's when compiled.
    let bomb = locals_bomb(5000, 5000);
    let error = Runtime::shared().load_bytes("bomb", &bomb).map(drop).unwrap_err();
    assert_eq!(
        error.to_string(),
        "bomb is past a compile limit: locals times blocks in one function is 25000000, at most 2000000"
    );
    let raised = runtime(CompileLimits {
        max_locals_times_blocks: u64::MAX,
        ..CompileLimits::default()
    });
    assert!(raised.load_bytes("small", locals_bomb(100, 100)).is_ok());
}

#[test]
fn each_size_limit_names_itself_and_the_value() {
    let wat = locals_bomb(20, 10);
    let bytes = wat::parse_str(&wat).unwrap();
    let limited = |limits| refusal(runtime(limits).load_bytes("module", &wat));
    assert_eq!(
        limited(CompileLimits {
            max_module_bytes: 100,
            ..CompileLimits::default()
        }),
        (CompileLimit::ModuleBytes, bytes.len() as u64, 100)
    );
    assert_eq!(
        limited(CompileLimits {
            max_function_locals: 19,
            ..CompileLimits::default()
        }),
        (CompileLimit::FunctionLocals, 20, 19)
    );
    let (limit, _, max) = limited(CompileLimits {
        max_function_body_bytes: 50,
        ..CompileLimits::default()
    });
    assert_eq!((limit, max), (CompileLimit::FunctionBodyBytes, 50));
    assert_eq!(
        limited(CompileLimits {
            max_locals_times_blocks: 199,
            ..CompileLimits::default()
        }),
        (CompileLimit::LocalsTimesBlocks, 200, 199)
    );
    assert!(runtime(CompileLimits::default()).load_bytes("module", &wat).is_ok());
}

#[test]
fn a_compile_past_its_deadline_is_given_up_on() {
    // Inside every size limit, but some seconds of compiling.
    let slow = locals_bomb(1000, 1900);
    let impatient = runtime(CompileLimits {
        timeout: Some(Duration::from_millis(50)),
        ..CompileLimits::default()
    });
    assert_eq!(
        refusal(impatient.load_bytes("slow", &slow)),
        (CompileLimit::TimeMillis, 50, 50)
    );
    assert_eq!(impatient.cache_stats().compiled, 1);
}

#[test]
fn code_already_compiled_is_loaded_without_the_check() {
    // The limits bound what Cranelift is given; a cache hit compiles nothing,
    // so it costs no pass over the module either.
    let dir = tempfile::tempdir().unwrap();
    let cached = |max_locals_times_blocks| {
        Runtime::new(
            &RuntimeConfig::default()
                .cache(CacheMode::OnDisk(dir.path().to_owned()))
                .compile_limits(CompileLimits {
                    max_locals_times_blocks,
                    ..CompileLimits::default()
                }),
        )
        .unwrap()
    };
    let wat = locals_bomb(20, 10);
    assert_eq!(
        refusal(cached(1).load_bytes("m", &wat)).0,
        CompileLimit::LocalsTimesBlocks
    );
    cached(u64::MAX).load_bytes("m", &wat).unwrap();
    let strict = cached(1);
    strict.load_bytes("m", &wat).unwrap();
    assert_eq!(strict.cache_stats().disk_hits, 1);
}
