//! What the API promises beyond its functions: which types may be shared
//! across threads or moved to another, and that each one can be printed.

use host::{ComponentInstance, Error, GuestInstance, GuestModule, HttpService, Limits, RunOutcome, Runtime, Sandbox};

fn shared_across_threads<T: Send + Sync>() {}
fn moved_across_threads<T: Send>() {}

#[test]
fn what_is_shared_is_send_and_sync_and_live_guests_are_send() {
    shared_across_threads::<Runtime>();
    shared_across_threads::<GuestModule>();
    shared_across_threads::<Sandbox>();
    shared_across_threads::<Limits>();
    shared_across_threads::<RunOutcome>();
    shared_across_threads::<Error>();
    moved_across_threads::<GuestInstance>();
    moved_across_threads::<ComponentInstance>();
    moved_across_threads::<HttpService>();
}

#[test]
fn debug_shows_what_was_granted_but_not_the_values_of_the_environment() {
    let sandbox = Sandbox::new().env("TOKEN", "secret-value").arg("input.txt");
    let shown = format!("{sandbox:?}");
    assert!(shown.contains("TOKEN") && shown.contains("input.txt"), "{shown}");
    assert!(!shown.contains("secret-value"), "{shown}");
    let module = Runtime::shared().load_bytes("named", "(module)").unwrap();
    assert!(format!("{module:?}").contains("named"));
}
