//! Scenario 3: WASI stdin to stdout, and a bad field reported on stderr, by
//! a core module and a component alike.

use host::{Sandbox, Termination};

use crate::support;

#[test]
fn one_line_sums_to_15() {
    for guest in [support::modules::csv_processor(), support::components::csv_processor()] {
        let outcome = Sandbox::new().stdin("1,2,3,4,5\n").run(&guest).unwrap();
        assert_eq!(
            outcome.termination,
            Termination::Exited(0),
            "stderr: {}",
            outcome.stderr_text()
        );
        assert_eq!(outcome.stdout_text().trim(), "15");
    }
}

#[test]
fn several_lines_blank_lines_and_decimals_are_summed() {
    for guest in [support::modules::csv_processor(), support::components::csv_processor()] {
        let csv = std::fs::read(support::shared_test_file("data/numbers.csv")).unwrap();
        let outcome = Sandbox::new().stdin(csv).run(&guest).unwrap();
        assert!(outcome.success(), "stderr: {}", outcome.stderr_text());
        assert_eq!(outcome.stdout_text().trim(), "45");
    }
}

#[test]
fn empty_input_sums_to_zero() {
    for guest in [support::modules::csv_processor(), support::components::csv_processor()] {
        let outcome = Sandbox::new().run(&guest).unwrap();
        assert!(outcome.success());
        assert_eq!(outcome.stdout_text().trim(), "0");
    }
}

#[test]
fn a_non_numeric_field_exits_1_naming_line_and_field() {
    for guest in [support::modules::csv_processor(), support::components::csv_processor()] {
        let outcome = Sandbox::new().stdin("1,2\n3,abc,4\n").run(&guest).unwrap();
        assert_eq!(outcome.termination, Termination::Exited(1));
        let stderr = outcome.stderr_text();
        assert!(stderr.contains("line 2"), "{stderr}");
        assert!(stderr.contains("field 2"), "{stderr}");
        assert!(stderr.contains("\"abc\""), "{stderr}");
        assert!(outcome.stdout.is_empty(), "no sum is printed for bad input");
    }
}
