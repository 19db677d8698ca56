//! The benchmarks' large module (`xtask::large_module`), generated small
//! here: it must be a valid WASI command whose checksum does not depend on
//! whether the run is metered for fuel.

use host::{Limits, Runtime, Sandbox};

#[test]
fn the_generated_module_prints_the_same_checksum_metered_or_not() {
    let module = Runtime::shared()
        .load_bytes("large", xtask::large_module::generate(300))
        .unwrap();
    let unmetered = Sandbox::new().run(&module).unwrap();
    assert!(unmetered.success(), "{:?}", unmetered.termination);
    let checksum = unmetered.stdout_text();
    assert!(
        checksum.len() == 9 && checksum.trim_end().chars().all(|c| c.is_ascii_hexdigit()),
        "{checksum:?}"
    );
    let metered = Sandbox::new()
        .limits(Limits::default().fuel(Some(u64::MAX / 2)))
        .run(&module)
        .unwrap();
    assert_eq!(metered.stdout_text(), checksum);
}
