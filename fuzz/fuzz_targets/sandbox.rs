//! libFuzzer target: every input becomes a module (wasm-smith, or the raw
//! bytes) run under tight limits; `host::fuzzing::check` reports a hang past
//! the timeout or memory past the limit, and a host panic is a crash.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(violation) = host::fuzzing::check(data) {
        panic!("sandbox property violated: {violation}");
    }
});
