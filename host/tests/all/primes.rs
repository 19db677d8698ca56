//! The CPU-bound guest of `cargo xtask bench`: a prime sieve, which must
//! count right whether the run is metered for fuel or not.

use host::{Limits, Sandbox, Termination};

use crate::support;

#[test]
fn the_primes_below_a_million_are_counted_with_and_without_fuel() {
    let module = support::modules::primes();
    let unmetered = Sandbox::new().arg("1000000").run(&module).unwrap();
    assert!(unmetered.success(), "stderr: {}", unmetered.stderr_text());
    assert_eq!(unmetered.stdout_text().trim(), "78498");

    let metered = Sandbox::new()
        .limits(Limits::default().fuel(Some(u64::MAX / 2)))
        .arg("1000000")
        .run(&module)
        .unwrap();
    assert_eq!(metered.stdout_text(), unmetered.stdout_text());
    assert!(metered.fuel_consumed.is_some_and(|fuel| fuel > 1_000_000));
}

#[test]
fn an_argument_that_is_not_a_number_exits_2() {
    let outcome = Sandbox::new().arg("many").run(&support::modules::primes()).unwrap();
    assert_eq!(outcome.termination, Termination::Exited(2));
    assert!(
        outcome.stderr_text().contains("whole number"),
        "{}",
        outcome.stderr_text()
    );
}
