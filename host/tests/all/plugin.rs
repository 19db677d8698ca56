//! A plugin interface written in WIT, hosted end to end with the
//! embedder's data (`guests/plugin`, `host/examples/plugin.rs`): the
//! world's imports read and change the data, its typed export is called
//! under the timeout, and data that is not there is an error, never a panic.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use host::wasmtime::component::HasSelf;
use host::wasmtime::{Caller, StoreContextMut};
use host::{ComponentInstance, Error, GuestState, Limits, Sandbox, TrapKind};

use crate::support::{self, components};

#[path = "../../examples/plugin.rs"]
mod example;

use example::{Dictionary, Plugin};

fn dictionary() -> Dictionary {
    Dictionary {
        words: Arc::new(HashMap::from([("hello".to_owned(), "bonjour".to_owned())])),
        uses: 0,
    }
}

fn inputs(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|&text| text.to_owned()).collect()
}

#[test]
fn the_example_runs() {
    example::main().unwrap();
}

#[test]
fn a_plugin_reads_and_changes_the_embedders_data_through_its_imports() {
    let plugin = components::plugin();
    let (results, after) = example::process_all(&plugin, dictionary(), &inputs(&["hello world", "hello"])).unwrap();
    assert_eq!(
        results,
        [Ok("#1: bonjour world".to_owned()), Ok("#2: bonjour".to_owned())]
    );
    assert_eq!(after.uses, 2, "the data as the imports left it");

    let (again, _) = example::process_all(&plugin, after, &inputs(&["hello"])).unwrap();
    assert_eq!(
        again,
        [Ok("#3: bonjour".to_owned())],
        "the data given is what the run starts from"
    );
}

/// The plugin's `process` of `input`, in `guest`.
fn process(guest: &mut ComponentInstance, input: &str) -> Result<String, String> {
    let bindings = guest.bindings(|store, instance| Plugin::new(store, instance)).unwrap();
    guest
        .call_bindings(async |store| bindings.call_process(store, input).await)
        .unwrap()
}

#[test]
fn each_run_starts_from_its_own_clone_of_the_sandboxs_data() {
    let sandbox = example::sandbox(dictionary());
    assert!(format!("{sandbox:?}").contains("Dictionary"), "{sandbox:?}");
    let plugin = components::plugin();
    let mut first = sandbox.instantiate_component(&plugin).unwrap();
    let mut second = sandbox.instantiate_component(&plugin).unwrap();
    assert_eq!(process(&mut first, "hello"), Ok("#1: bonjour".to_owned()));
    assert_eq!(process(&mut first, "hello"), Ok("#2: bonjour".to_owned()));
    assert_eq!(process(&mut second, "hello"), Ok("#1: bonjour".to_owned()));
    assert_eq!(first.data::<Dictionary>().unwrap().uses, 2);
    assert_eq!(second.data::<Dictionary>().unwrap().uses, 1);
    first.data_mut::<Dictionary>().unwrap().uses = 40;
    assert_eq!(
        process(&mut first, "x"),
        Ok("#41: x".to_owned()),
        "changed by the embedder between calls"
    );
}

#[test]
fn the_plugins_own_error_is_its_typed_result() {
    let (results, after) = example::process_all(&components::plugin(), dictionary(), &inputs(&[" "])).unwrap();
    assert_eq!(results, [Err("no word to process".to_owned())]);
    assert_eq!(after.uses, 0);
}

#[test]
fn a_typed_export_that_spins_is_stopped_at_the_timeout() {
    let mut limits = Limits::default();
    limits.timeout = Some(Duration::from_millis(200));
    let mut guest = example::sandbox(dictionary())
        .limits(limits)
        .instantiate_component(&components::plugin())
        .unwrap();
    let bindings = guest.bindings(|store, instance| Plugin::new(store, instance)).unwrap();
    let result = guest.call_bindings(async |store| bindings.call_spin(store).await);
    assert_eq!(support::call_trap_kind(result), TrapKind::Timeout);
}

/// Removing the check of the data's type before instantiation (in
/// `Sandbox::linked_component`) makes this fail: the component instantiates
/// (and its first import would panic the host).
#[test]
fn bindings_whose_data_is_missing_or_of_another_type_are_refused_before_the_guest_runs() {
    let bindings = |sandbox: Sandbox| {
        sandbox.component_bindings(|linker, data| Plugin::add_to_linker::<_, HasSelf<Dictionary>>(linker, data))
    };
    let plugin = components::plugin();
    for (sandbox, held) in [
        (bindings(Sandbox::new()), None),
        (bindings(Sandbox::new().data(7_u32)), Some("u32")),
    ] {
        match sandbox.instantiate_component(&plugin) {
            Err(Error::MissingData { module, source }) => {
                assert_eq!(module, "plugin.wasm");
                assert_eq!(source.held(), held);
                assert!(source.wanted().ends_with("Dictionary"), "{source}");
            }
            other => panic!("expected Error::MissingData, got {other:?}"),
        }
        let run = sandbox.run(&plugin);
        assert!(matches!(run, Err(Error::MissingData { .. })), "{run:?}");
    }
}

/// A counter the core and component functions below keep in the data.
#[derive(Clone, Debug, PartialEq)]
struct Calls(i32);

fn bump(data: &mut GuestState) -> Result<i32, host::DataError> {
    let calls = data.data_mut::<Calls>()?;
    calls.0 += 1;
    Ok(calls.0)
}

const CALLS_TWICE: &str = r#"(module
    (import "env" "bump" (func $bump (result i32)))
    (func (export "twice") (result i32) (drop (call $bump)) (call $bump)))"#;

#[test]
fn a_core_host_function_reads_and_changes_the_embedders_data() {
    let module = support::wat("calls_twice", CALLS_TWICE);
    let mut guest = Sandbox::new()
        .data(Calls(10))
        .host_func("env", "bump", |mut caller: Caller<'_, GuestState>| {
            Ok(bump(caller.data_mut())?)
        })
        .instantiate(&module)
        .unwrap();
    assert_eq!(guest.call::<(), i32>("twice", ()).unwrap(), 12);
    assert_eq!(guest.data::<Calls>().unwrap(), &Calls(12), "the data after the call");
    assert_eq!(
        guest.data::<u32>().unwrap_err().held(),
        Some(std::any::type_name::<Calls>())
    );
}

#[test]
fn a_host_function_asking_for_data_that_is_not_there_traps_with_a_message() {
    let module = support::wat("calls_twice", CALLS_TWICE);
    let sandbox = Sandbox::new().host_func("env", "bump", |mut caller: Caller<'_, GuestState>| {
        Ok(bump(caller.data_mut())?)
    });
    for (sandbox, says) in [
        (sandbox.clone(), "the sandbox was given no data"),
        (sandbox.data("a string"), "the sandbox's data is a `&str`"),
    ] {
        let mut guest = sandbox.instantiate(&module).unwrap();
        match guest.call::<(), i32>("twice", ()) {
            Err(Error::Trap { trap, .. }) => {
                assert_eq!(trap.kind, TrapKind::HostError);
                assert!(
                    trap.message.contains(says) && trap.message.contains("Calls"),
                    "{}",
                    trap.message
                );
            }
            other => panic!("expected a host error trap, got {other:?}"),
        }
    }
}

#[test]
fn a_component_function_reads_the_embedders_data_and_traps_without_it() {
    let plugin = components::plugin();
    let sandbox = Sandbox::new()
        .component_func(
            "example:plugin/host",
            "lookup",
            |_store: StoreContextMut<'_, GuestState>, (_key,): (String,)| Ok((None::<String>,)),
        )
        .component_func(
            "example:plugin/host",
            "bump",
            |mut store: StoreContextMut<'_, GuestState>, ()| Ok((bump(store.data_mut())? as u32,)),
        );
    let mut guest = sandbox.clone().data(Calls(4)).instantiate_component(&plugin).unwrap();
    let (output,): (Result<String, String>,) = guest.call("process", ("hello",)).unwrap();
    assert_eq!(output, Ok("#5: hello".to_owned()));
    assert_eq!(guest.data::<Calls>().unwrap(), &Calls(5));

    let mut without = sandbox.instantiate_component(&plugin).unwrap();
    match without.call::<(&str,), (Result<String, String>,)>("process", ("hello",)) {
        Err(Error::Trap { trap, .. }) => {
            assert_eq!(trap.kind, TrapKind::HostError);
            assert!(trap.message.contains("no data"), "{}", trap.message);
        }
        other => panic!("expected a host error trap, got {other:?}"),
    }
}

/// The plugin's `process` of `input` in `guest`, awaited.
async fn process_async(guest: &mut ComponentInstance, input: &str) -> Result<Result<String, String>, Error> {
    let bindings = guest.bindings(|store, instance| Plugin::new(store, instance))?;
    let input = input.to_owned();
    guest
        .call_bindings_async(async move |store| bindings.call_process(store, &input).await)
        .await
}

#[tokio::test(flavor = "current_thread")]
async fn a_typed_export_is_awaited_with_the_embedders_data() {
    let mut guest = example::sandbox(dictionary())
        .instantiate_component_async(&components::plugin())
        .await
        .unwrap();
    assert_eq!(
        process_async(&mut guest, "hello world").await.unwrap(),
        Ok("#1: bonjour world".to_owned())
    );
    assert_eq!(
        process_async(&mut guest, " ").await.unwrap(),
        Err("no word to process".to_owned())
    );
    assert_eq!(
        guest.data::<Dictionary>().unwrap().uses,
        1,
        "the store came back with its data"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_awaited_typed_export_that_spins_is_stopped_at_the_timeout() {
    let mut guest = example::sandbox(dictionary())
        .limits(Limits::default().timeout(Some(Duration::from_millis(200))))
        .instantiate_component_async(&components::plugin())
        .await
        .unwrap();
    let bindings = guest.bindings(|store, instance| Plugin::new(store, instance)).unwrap();
    let result = guest
        .call_bindings_async(async move |store| bindings.call_spin(store).await)
        .await;
    assert_eq!(support::call_trap_kind(result), TrapKind::Timeout);
}

/// Dropping the future of a call that would spin forever (no timeout)
/// stops the guest: its store, and the embedder's data in it, is dropped
/// (the data's `Arc` is ours alone again), and the instance is gone.
/// Without the cancellation in `asynchronous.rs` (`CancelOnDrop`) the
/// guest spins on and the store is never given back.
#[tokio::test(flavor = "current_thread")]
async fn dropping_an_awaited_typed_call_stops_the_guest() {
    let dictionary = dictionary();
    let words = dictionary.words.clone();
    let mut guest = example::sandbox(dictionary)
        .limits(Limits::default().timeout(None))
        .instantiate_component_async(&components::plugin())
        .await
        .unwrap();
    assert_eq!(Arc::strong_count(&words), 2, "ours and the instance's");
    let bindings = guest.bindings(|store, instance| Plugin::new(store, instance)).unwrap();
    let call = guest.call_bindings_async(async move |store| bindings.call_spin(store).await);
    assert!(tokio::time::timeout(Duration::from_millis(50), call).await.is_err());
    crate::async_api::eventually("the guest stopped and its store was dropped", || {
        Arc::strong_count(&words) == 1
    })
    .await;
    let again = guest.call_bindings_async(async |_| Ok(())).await;
    assert!(matches!(again, Err(Error::Cancelled { .. })), "{again:?}");
    let bindings = guest.bindings(|store, instance| Plugin::new(store, instance));
    assert!(matches!(bindings, Err(Error::Cancelled { .. })));
}
