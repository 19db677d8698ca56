//! Scenario 4: environment variables reach the guest only when granted, a
//! core module or a component alike.

use host::Sandbox;

use crate::support;

#[test]
fn granted_variables_are_read() {
    for guest in [support::modules::config_reader(), support::components::config_reader()] {
        let outcome = Sandbox::new()
            .env("APP_MODE", "test")
            .env("LOG_LEVEL", "debug")
            .run(&guest)
            .unwrap();
        assert!(outcome.success());
        assert_eq!(outcome.stdout_text(), "mode=test\nlog_level=debug\n");
    }
}

#[test]
fn unset_variables_get_the_documented_defaults() {
    for guest in [support::modules::config_reader(), support::components::config_reader()] {
        let outcome = Sandbox::new().run(&guest).unwrap();
        assert!(outcome.success());
        assert_eq!(outcome.stdout_text(), "mode=production\nlog_level=info\n");
    }
}

#[test]
fn host_environment_is_not_passed_through() {
    // The host process must have the variable for this to prove anything;
    // setting it here would race the other tests' threads, so the check runs
    // in a child process that starts with it.
    if std::env::var_os("APP_MODE").is_none() {
        support::run_test_in_child_process(
            "config_reader::host_environment_is_not_passed_through",
            &[("APP_MODE", "leaked-from-host")],
        );
        return;
    }
    for guest in [support::modules::config_reader(), support::components::config_reader()] {
        let outcome = Sandbox::new().run(&guest).unwrap();
        assert_eq!(
            outcome.stdout_text(),
            "mode=production\nlog_level=info\n",
            "component: {}",
            guest.is_component()
        );
    }
}
