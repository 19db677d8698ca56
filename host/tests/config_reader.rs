//! Scenario 4: environment variables reach the guest only when granted.

mod support;

use host::Sandbox;

#[test]
fn granted_variables_are_read() {
    let outcome = Sandbox::new()
        .env("APP_MODE", "test")
        .env("LOG_LEVEL", "debug")
        .run(&support::guest("config_reader"))
        .unwrap();
    assert!(outcome.success());
    assert_eq!(outcome.stdout_text(), "mode=test\nlog_level=debug\n");
}

#[test]
fn unset_variables_get_the_documented_defaults() {
    let outcome = Sandbox::new().run(&support::guest("config_reader")).unwrap();
    assert!(outcome.success());
    assert_eq!(outcome.stdout_text(), "mode=production\nlog_level=info\n");
}

#[test]
fn host_environment_is_not_passed_through() {
    // SAFETY: this test binary's threads do not read APP_MODE concurrently.
    unsafe { std::env::set_var("APP_MODE", "leaked-from-host") };
    let outcome = Sandbox::new().run(&support::guest("config_reader")).unwrap();
    assert!(
        outcome.stdout_text().contains("mode=production"),
        "{}",
        outcome.stdout_text()
    );
}
