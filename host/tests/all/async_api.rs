//! The async API (`run_async`, `instantiate_async`,
//! `instantiate_component_async`, `call_async`, `shutdown_async`): the
//! guide's scenarios awaited in `#[tokio::test]`s on either kind of runtime,
//! the same deadline as the sync API, and futures that may be dropped: the
//! guest stops, and its thread, descriptors and pool slot are given back.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use host::{DirAccess, Error, Limits, Pooling, Runtime, RuntimeConfig, Sandbox, Termination, TrapKind};

use crate::support;

/// Loads from linear memory (one page).
const LOADS: &str = r#"(module
  (memory 1)
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0))))"#;

/// Calls the host's `env.tick` forever: how far it got is how long it ran.
const TICKS: &str = r#"(module
  (import "env" "tick" (func $tick))
  (func $spin (loop (call $tick) (br 0)))
  (func (export "_start") (call $spin))
  (func (export "spin") (call $spin)))"#;

/// A component whose `spin` export never returns.
const SPINNING_COMPONENT: &str = r#"(component
  (core module $m (func (export "spin") (loop (br 0))))
  (core instance $i (instantiate $m))
  (func (export "spin") (canon lift (core func $i "spin"))))"#;

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[tokio::test(flavor = "current_thread")]
async fn stdin_reaches_stdout() {
    let outcome = assert_send(
        Sandbox::new()
            .stdin("1,2\n3,4\n")
            .run_async(&support::modules::csv_processor()),
    )
    .await
    .unwrap();
    assert_eq!(
        (&outcome.termination, outcome.stdout_text()),
        (&Termination::Exited(0), "10\n".into())
    );
}

#[tokio::test(flavor = "current_thread")]
async fn granted_variables_are_read_by_a_module_and_a_component() {
    for guest in [support::modules::config_reader(), support::components::config_reader()] {
        let outcome = Sandbox::new().env("APP_MODE", "test").run_async(&guest).await.unwrap();
        assert_eq!(outcome.stdout_text(), "mode=test\nlog_level=info\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_outside_the_grant_is_denied() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hello\n").unwrap();
    let reader = support::modules::file_reader();
    let denied = Sandbox::new()
        .arg(dir.path().join("hello.txt").to_str().unwrap())
        .run_async(&reader)
        .await
        .unwrap();
    assert_eq!(denied.exit_code(), Some(1));
    assert!(denied.stderr_text().contains("NOTCAPABLE"), "{}", denied.stderr_text());
    let granted = Sandbox::new()
        .dir(dir.path(), "/data", DirAccess::ReadOnly)
        .arg("/data/hello.txt")
        .run_async(&reader)
        .await
        .unwrap();
    assert_eq!(granted.stdout_text(), "hello\n", "{}", granted.stderr_text());
}

#[tokio::test(flavor = "current_thread")]
async fn an_out_of_bounds_load_traps_and_the_instance_survives() {
    let mut guest = Sandbox::new()
        .instantiate_async(&support::wat("loads", LOADS))
        .await
        .unwrap();
    let trapped = assert_send(guest.call_async::<i32, i32>("load", 65536)).await;
    assert_eq!(support::call_trap_kind(trapped), TrapKind::MemoryOutOfBounds);
    assert_eq!(guest.call_async::<i32, i32>("load", 4).await.unwrap(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_host_import_is_called() {
    let module = support::wat(
        "ask",
        r#"(module
          (import "env" "answer" (func $answer (result i32)))
          (func (export "twice") (result i32) (i32.add (call $answer) (call $answer))))"#,
    );
    let mut guest = assert_send(
        Sandbox::new()
            .host_func("env", "answer", || 21)
            .instantiate_async(&module),
    )
    .await
    .unwrap();
    assert_eq!(guest.call_async::<(), i32>("twice", ()).await.unwrap(), 42);
}

#[tokio::test(flavor = "current_thread")]
async fn the_exit_code_reaches_the_host() {
    let outcome = Sandbox::new()
        .run_async(&support::fixture("proc_exit_13.wat"))
        .await
        .unwrap();
    assert_eq!(outcome.termination, Termination::Exited(13));
}

#[tokio::test(flavor = "current_thread")]
async fn a_component_export_is_called() {
    let mut text = assert_send(Sandbox::new().instantiate_component_async(&support::components::text_component()))
        .await
        .unwrap();
    let call = assert_send(text.call_async::<(String,), (String,)>("process", ("async".to_owned(),)));
    assert_eq!(call.await.unwrap(), ("ASYNC".to_owned(),));
}

#[tokio::test(flavor = "current_thread")]
async fn the_timeout_holds_for_a_run_and_for_each_call() {
    let spin = support::wat(
        "spin",
        r#"(module (func (export "_start") (loop (br 0))) (func (export "spin") (loop (br 0))))"#,
    );
    let sandbox = Sandbox::new().limits(Limits::default().timeout(Some(Duration::from_millis(50))));
    let outcome = sandbox.run_async(&spin).await.unwrap();
    assert_eq!(support::trap_kind(&outcome), TrapKind::Timeout);
    let mut guest = sandbox.instantiate_async(&spin).await.unwrap();
    assert_eq!(
        support::call_trap_kind(guest.call_async::<(), ()>("spin", ()).await),
        TrapKind::Timeout
    );
    let mut component = sandbox
        .instantiate_component_async(&support::wat("spinning", SPINNING_COMPONENT))
        .await
        .unwrap();
    assert_eq!(
        support::call_trap_kind(component.call_async::<(), ()>("spin", ()).await),
        TrapKind::Timeout
    );
}

/// A GET of `path` from the server at `address`, with hyper on the
/// caller's runtime: the status and the body.
async fn get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    use http_body_util::{BodyExt, Empty};
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let io = wasmtime_wasi_http::io::TokioIo::new(stream);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, address.to_string())
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Serving never blocks the caller (the service runs on threads of its
/// own), and its shutdown is awaited.
#[tokio::test(flavor = "current_thread")]
async fn an_http_service_serves_and_shuts_down_from_async_code() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let service = Sandbox::new()
        .serve_http(&support::components::http_component(), listener)
        .unwrap();
    assert_eq!(get(service.local_addr(), "/").await, (200, "GET /".to_owned()));
    let outcome = assert_send(service.shutdown_async()).await.unwrap();
    assert_eq!(outcome.exit_code(), Some(0));
}

/// A run's future is `'static`: it may be spawned, and awaited elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_may_be_spawned_on_a_multi_thread_runtime() {
    let run = Sandbox::new()
        .stdin("5\n")
        .run_async(&support::modules::csv_processor());
    let outcome = tokio::spawn(run).await.unwrap().unwrap();
    assert_eq!(outcome.stdout_text(), "5\n");
}

/// The process's open descriptors.
fn descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The process's threads still alive: one that has ended may be listed
/// a moment longer, dead.
fn live_threads() -> usize {
    let tasks = std::fs::read_dir("/proc/self/task").unwrap();
    (tasks.filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("stat")).ok()))
        .filter(|stat| {
            let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
            !matches!(state, Some('Z' | 'X'))
        })
        .count()
}

/// The threads running a guest for the async API now (they are named so).
fn guest_threads() -> usize {
    let tasks = std::fs::read_dir("/proc/self/task").unwrap();
    (tasks.filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok()))
        .filter(|name| name.trim_end() == "wasm-guest")
        .count()
}

/// The threads and descriptors of the process once no guest runs (the
/// thread of one that just returned may still be ending).
async fn at_rest() -> (usize, usize) {
    eventually("the guests' threads ended", || guest_threads() == 0).await;
    (live_threads(), descriptors())
}

/// Waits until the process holds no more threads and descriptors than
/// `before` (an `at_rest` count): a leak never gets there. No fewer is
/// asked: a thread still ending when `before` was counted (a compile's,
/// joined but still in the kernel's exit) may be gone since.
async fn back_to(before: (usize, usize)) {
    eventually("the guests' threads ended", || guest_threads() == 0).await;
    let (threads, fds) = before;
    eventually("threads and descriptors as before", || {
        live_threads() <= threads && descriptors() <= fds
    })
    .await;
}

/// Waits until `settled` holds, for at most 10 s (a guest stopped by its
/// epoch check ends within a tick).
pub(crate) async fn eventually(what: &str, settled: impl Fn() -> bool) {
    let start = Instant::now();
    while !settled() {
        assert!(start.elapsed() < Duration::from_secs(10), "{what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Spawns `call`, drops it once its guest has ticked, and waits for the
/// guest's thread to end; the guest ticks no more.
async fn cancel_once_started(ticks: &AtomicU64, call: impl Future<Output: Send + 'static> + Send + 'static) {
    ticks.store(0, Ordering::SeqCst);
    let task = tokio::spawn(call);
    eventually("the guest started", || ticks.load(Ordering::SeqCst) > 0).await;
    task.abort();
    assert!(task.await.is_err_and(|error| error.is_cancelled()));
    eventually("the guest's thread ended", || guest_threads() == 0).await;
    let stopped = ticks.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(ticks.load(Ordering::SeqCst), stopped, "the guest stopped");
}

fn pooled_instances(runtime: &Runtime) -> u64 {
    runtime.engine().pooling_allocator_metrics().unwrap().core_instances()
}

/// Runs the test `name` of this module alone in a child process (see
/// [`support::run_test_in_child_process`]): true in that child.
fn alone(name: &str) -> bool {
    if std::env::var_os("ASYNC_API_ALONE").is_some() {
        return true;
    }
    support::run_test_in_child_process(&format!("async_api::{name}"), &[("ASYNC_API_ALONE", "1")]);
    false
}

/// A sandbox with `env.tick` counting into `ticks` and no timeout: only a
/// cancellation stops its guests.
fn ticking(ticks: &Arc<AtomicU64>) -> Sandbox {
    let ticks = ticks.clone();
    Sandbox::new()
        .limits(Limits::default().timeout(None))
        .host_func("env", "tick", move || {
            ticks.fetch_add(1, Ordering::SeqCst);
        })
}

/// Dropping a run's, an instantiation's or a call's future stops a guest
/// that would compute forever (no timeout) and frees what it held. Counting
/// threads and descriptors needs a process of its own.
#[test]
fn dropping_a_future_stops_a_computing_guest_and_frees_what_it_held() {
    if !alone("dropping_a_future_stops_a_computing_guest_and_frees_what_it_held") {
        return;
    }
    const SLOTS: u32 = 2;
    let runtime = Runtime::new(&RuntimeConfig::default().pooling(Some(Pooling {
        max_instances: SLOTS,
        ..Pooling::default()
    })))
    .unwrap();
    let module = runtime.load_bytes("ticks", TICKS).unwrap();
    let component = runtime.load_bytes("spinning", SPINNING_COMPONENT).unwrap();
    let ticks = Arc::new(AtomicU64::new(0));
    let sandbox = ticking(&ticks);
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async {
        // Whatever is made once per process (the module's memory image) is
        // made before counting.
        drop(sandbox.instantiate_async(&module).await.unwrap());

        let before = at_rest().await;
        cancel_once_started(&ticks, sandbox.run_async(&module)).await;
        back_to(before).await;
        assert_eq!(pooled_instances(&runtime), 0, "the slot was given back");

        let mut guest = sandbox.instantiate_async(&module).await.unwrap();
        let call = async move {
            let _ = guest.call_async::<(), ()>("spin", ()).await;
        };
        cancel_once_started(&ticks, call).await;
        back_to(before).await;
        assert_eq!(pooled_instances(&runtime), 0, "the slot was given back");

        // A call stopped by a dropped future loses the instance, and says so.
        let mut guest = sandbox.instantiate_async(&module).await.unwrap();
        ticks.store(0, Ordering::SeqCst);
        {
            let call = guest.call_async::<(), ()>("spin", ());
            tokio::pin!(call);
            let ticked = eventually("the guest started", || ticks.load(Ordering::SeqCst) > 0);
            tokio::select! {
                _ = &mut call => panic!("the spinning guest returned"),
                () = ticked => {}
            }
        }
        assert!(matches!(
            guest.call_async::<(), ()>("spin", ()).await,
            Err(Error::Cancelled { .. })
        ));
        assert!(matches!(guest.read_memory(0, 1), Err(Error::Cancelled { .. })));
        drop(guest);

        // A component: no pool, but the same thread and descriptors.
        let mut spinning = Sandbox::new()
            .limits(Limits::default().timeout(None))
            .instantiate_component_async(&component)
            .await
            .unwrap();
        let before = at_rest().await;
        let call = spinning.call_async::<(), ()>("spin", ());
        assert!(tokio::time::timeout(Duration::from_millis(50), call).await.is_err());
        back_to(before).await;
        assert!(matches!(
            spinning.call_async::<(), ()>("spin", ()).await,
            Err(Error::Cancelled { .. })
        ));

        // Every slot is free again: as many guests as the pool holds get one.
        let mut held = Vec::new();
        for _ in 0..SLOTS {
            held.push(sandbox.instantiate_async(&module).await.unwrap());
        }
        assert_eq!(pooled_instances(&runtime), u64::from(SLOTS));
    });
}

/// Sleeps an hour (`poll_oneoff` on one relative clock) after a tick.
const SLEEPS: &str = r#"(module
  (import "env" "tick" (func $tick))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 3600000000000))
    (call $tick)
    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))"#;

/// Reads stdin after a tick.
const READS: &str = r#"(module
  (import "env" "tick" (func $tick))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 16))
    (call $tick)
    (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 32)))))"#;

/// A reader that has nothing to give until its sender is dropped.
struct Silent(std::sync::mpsc::Receiver<()>);

impl std::io::Read for Silent {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        let _ = self.0.recv();
        Ok(0)
    }
}

/// A guest waiting in a host call, asleep or reading stdin, with no
/// timeout, is stopped by its future's drop too: the wait ends.
#[test]
fn dropping_a_future_ends_a_guest_s_wait() {
    if !alone("dropping_a_future_ends_a_guest_s_wait") {
        return;
    }
    let sleeps = support::wat("sleeps", SLEEPS);
    let reads = support::wat("reads", READS);
    let ticks = Arc::new(AtomicU64::new(0));
    let sandbox = ticking(&ticks);
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async {
        // wasmtime-wasi's runtime, which the guest's WASI calls run on, is
        // made before counting.
        let short = Limits::default().timeout(Some(Duration::from_millis(20)));
        let woken = sandbox.clone().limits(short).run_async(&sleeps).await.unwrap();
        assert_eq!(support::trap_kind(&woken), TrapKind::Timeout);

        let before = at_rest().await;
        cancel_once_started(&ticks, sandbox.run_async(&sleeps)).await;
        back_to(before).await;

        let (sender, silence) = std::sync::mpsc::channel();
        cancel_once_started(&ticks, sandbox.clone().stdin_reader(Silent(silence)).run_async(&reads)).await;
        // The reader's own thread ends with the reader.
        drop(sender);
        eventually("the stdin reader's thread ended", || live_threads() == before.0).await;
        back_to(before).await;
    });
}

/// Sleeps an hour in a `poll_oneoff` of two clocks after a tick: a poll
/// Wasmtime awaits rather than sleeps.
const POLLS_TWO_CLOCKS: &str = r#"(module
  (import "env" "tick" (func $tick))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 3600000000000))
    (i32.store (i32.const 64) (i32.const 1))
    (i64.store (i32.const 72) (i64.const 3600000000000))
    (call $tick)
    (drop (call $poll (i32.const 0) (i32.const 128) (i32.const 2) (i32.const 256)))))"#;

/// Cancelled again and again, guests waiting in every kind of host call (a
/// lone sleep, a poll of several clocks, a component's sleep, a
/// component's read of a socket whose peer never answers, a WASI 0.3
/// component's awaited sleep) leave no thread and no descriptor behind.
#[test]
fn cancelling_waiting_guests_again_and_again_leaves_nothing_behind() {
    if !alone("cancelling_waiting_guests_again_and_again_leaves_nothing_behind") {
        return;
    }
    let sleeps = support::wat("sleeps", SLEEPS);
    let polls = support::wat("polls", POLLS_TWO_CLOCKS);
    let component = support::components::hostile_component();
    let p3 = support::components::hostile_p3();
    // A peer that accepts (the kernel does) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = silent.local_addr().unwrap().to_string();
    let ticks = Arc::new(AtomicU64::new(0));
    let sandbox = ticking(&ticks);
    let components = Sandbox::new()
        .limits(Limits::default().timeout(None))
        .allow_connect("127.0.0.1".parse().unwrap());
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async {
        let cancel = |sandbox: Sandbox, module: &host::GuestModule| {
            let run = sandbox.run_async(module);
            async move {
                if let Ok(ended) = tokio::time::timeout(Duration::from_millis(30), run).await {
                    panic!("{ended:?}");
                }
            }
        };
        // What is made once per process (wasmtime-wasi's runtime, its
        // blocking threads) is made before counting.
        cancel(components.clone().args(["sleep"]), &component).await;
        cancel(components.clone().args(["connect", &silent]), &component).await;
        cancel(components.clone().args(["sleep"]), &p3).await;
        let before = at_rest().await;
        for round in 0..50 {
            cancel_once_started(&ticks, sandbox.run_async(&sleeps)).await;
            cancel_once_started(&ticks, sandbox.run_async(&polls)).await;
            cancel(components.clone().args(["sleep"]), &component).await;
            cancel(components.clone().args(["connect", &silent]), &component).await;
            cancel(components.clone().args(["sleep"]), &p3).await;
            let (_, descriptors) = at_rest().await;
            assert!(
                descriptors <= before.1,
                "round {round}: {descriptors} descriptors, {} before",
                before.1
            );
        }
        // Threads of wasmtime-wasi's blocking pool come and go with the
        // load (idle ones end after 10 s); one left by a guest never would.
        let start = Instant::now();
        while live_threads() > before.0 {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{} threads, {} before",
                live_threads(),
                before.0
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// Calls the host's `env.nested`, then computes for a while.
const CALLS_NESTED: &str = r#"(module
  (import "env" "nested" (func $nested))
  (func $work (local $i i32)
    (call $nested)
    (loop
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if 0 (i32.lt_u (local.get $i) (i32.const 20000000)))))
  (func (export "_start") (call $work))
  (func (export "work") (call $work)))"#;

/// A host function may run a guest of its own (a plugin calling a plugin):
/// that run's timeout is its own, not the async run's that called it.
#[tokio::test(flavor = "current_thread")]
async fn a_run_nested_in_a_host_function_keeps_its_own_deadline() {
    let spins = support::wat("spins", "(module (func (export \"_start\") (loop (br 0))))");
    let short = Limits::default().timeout(Some(Duration::from_millis(20)));
    let nested = Sandbox::new().host_func("env", "nested", move || {
        let inner = Sandbox::new().limits(short.clone()).run(&spins).unwrap();
        assert_eq!(support::trap_kind(&inner), TrapKind::Timeout);
    });
    let outer = nested.limits(Limits::default().timeout(Some(Duration::from_secs(60))));
    let calls_nested = support::wat("calls-nested", CALLS_NESTED);
    let outcome = outer.run_async(&calls_nested).await.unwrap();
    assert_eq!(outcome.termination, Termination::Exited(0));
    // An async call into an instance too.
    let mut guest = outer.instantiate_async(&calls_nested).await.unwrap();
    guest.call_async::<(), ()>("work", ()).await.unwrap();
}
