//! Tests with every ending a test can have, for `wasm-host test`: the
//! runner must give each the verdict native `cargo test` gives it.

/// Adds one: its example is a doctest that passes.
///
/// ```
/// assert_eq!(test_fixture::add_one(1), 2);
/// ```
pub fn add_one(n: u32) -> u32 {
    n + 1
}

/// Its example is a doctest that fails.
///
/// ```
/// assert_eq!(test_fixture::add_one(1), 3, "a failing doctest");
/// ```
pub fn broken_example() {}

#[cfg(test)]
mod tests {
    #[test]
    fn passes() {
        println!("output of a passing test");
        assert_eq!(2 + 2, 4);
    }

    #[test]
    fn fails_an_assertion() {
        println!("output before the failure");
        assert_eq!(1 + 1, 3, "arithmetic is broken");
    }

    #[test]
    fn panics() {
        eprintln!("about to panic");
        println!("then on stdout");
        panic!("a deliberate panic");
    }

    #[test]
    fn returns_an_error() -> Result<(), String> {
        Err("the test returned an error".to_owned())
    }

    // What the package's metadata grants, which only the sandbox can hold
    // back: no native counterpart. A granted directory is seen at its
    // absolute path and, as cargo runs a test in its package directory,
    // at its path relative to that.
    #[test]
    #[cfg(target_family = "wasm")]
    fn reads_its_granted_package_directory() {
        for path in [concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"), "Cargo.toml"] {
            let manifest = std::fs::read_to_string(path).unwrap();
            assert!(manifest.contains("name = \"test_fixture\""), "{path}");
        }
    }

    #[test]
    #[cfg(target_family = "wasm")]
    fn sees_its_granted_variable() {
        assert_eq!(std::env::var("FIXTURE_GREETING").as_deref(), Ok("hello"));
    }

    #[test]
    #[cfg(target_family = "wasm")]
    fn cannot_write_to_its_read_only_directory() {
        for path in [concat!(env!("CARGO_MANIFEST_DIR"), "/written-by-a-test"), "written-by-a-test"] {
            assert!(std::fs::write(path, "x").is_err(), "{path}");
        }
    }

    /// Loops for ever: the runner's per-test timeout ends it (natively it
    /// would hang, so the native comparison skips it).
    #[test]
    fn never_ends() {
        println!("counting for ever");
        count_for_ever()
    }

    /// The same, when asked (`--ignored`): two tests past their timeout in one run.
    #[test]
    #[ignore = "never ends"]
    fn never_ends_either() {
        count_for_ever()
    }

    fn count_for_ever() -> ! {
        let mut n = 0u64;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }

    #[test]
    #[ignore = "fails when run"]
    fn ignored_and_failing() {
        panic!("an ignored test that fails when asked for");
    }

    #[test]
    #[ignore]
    fn ignored_and_passing() {}

    #[test]
    #[should_panic(expected = "expected panic")]
    fn should_panic() {
        panic!("expected panic");
    }
}
