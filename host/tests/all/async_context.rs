//! The sync API called from async code: inside `#[tokio::main]`-style
//! runtimes (current-thread and multi-thread) and in spawned tasks, a run,
//! an instantiation and a call return the guest's outcome instead of
//! panicking with "Cannot start a runtime from within a runtime".

use host::{Sandbox, Termination};

use crate::support;

/// Reads the monotonic clock through WASI, returning the errno.
const CLOCK: &str = r#"(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "errno") (result i32) (call $now (i32.const 1) (i64.const 1) (i32.const 0))))"#;

/// Everything the sync API offers, each through WASI calls (which
/// wasmtime-wasi runs on Tokio) or a component's async linking.
fn every_sync_entry_point() {
    let csv = Sandbox::new()
        .stdin("1,2\n3,4\n")
        .run(&support::modules::csv_processor())
        .unwrap();
    assert_eq!(
        (&csv.termination, csv.stdout_text()),
        (&Termination::Exited(0), "10\n".into())
    );

    let component = Sandbox::new()
        .stdin("abc")
        .args(["stdin"])
        .run(&support::components::hostile_component())
        .unwrap();
    assert_eq!(component.stdout_text(), "stdin: 3 bytes (Ok(3))\n");

    let mut clock = Sandbox::new().instantiate(&support::wat("clock", CLOCK)).unwrap();
    assert_eq!(
        clock.call::<(), i32>("errno", ()).unwrap(),
        0,
        "clock_time_get succeeded"
    );

    let mut text = Sandbox::new()
        .instantiate_component(&support::components::text_component())
        .unwrap();
    let (upper,): (String,) = text.call("process", ("async",)).unwrap();
    assert_eq!(upper, "ASYNC");
}

#[tokio::test(flavor = "current_thread")]
async fn the_sync_api_works_inside_a_current_thread_runtime() {
    every_sync_entry_point();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_api_works_inside_a_multi_thread_runtime() {
    every_sync_entry_point();
}

#[tokio::test(flavor = "current_thread")]
async fn the_sync_api_works_in_a_task_spawned_on_a_current_thread_runtime() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async { tokio::task::spawn_local(async { every_sync_entry_point() }).await })
        .await
        .unwrap();
    tokio::spawn(async { every_sync_entry_point() }).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_api_works_in_a_task_spawned_on_a_multi_thread_runtime() {
    tokio::spawn(async { every_sync_entry_point() }).await.unwrap();
    tokio::task::spawn_blocking(every_sync_entry_point).await.unwrap();
}
