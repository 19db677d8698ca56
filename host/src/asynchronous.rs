//! The async API: each form awaits what its synchronous twin does, run on
//! a thread of the guest's own, so that no executor thread is held while a
//! guest runs, whatever the caller's runtime (current-thread or
//! multi-thread, or none).
//!
//! Dropping a future cancels its call: the store's [`Deadline`] ends now,
//! for good, so the guest stops at its next check (the epoch, within a
//! tick, or a wait in a host call: `poll_oneoff`, stdin, a component's
//! awaits),
//! its thread ends and its store is dropped, giving back its memory, its
//! pool slot and its descriptors. Until then the future's result is
//! whatever the synchronous call returned.
//!
//! Why a thread of its own rather than Tokio's blocking pool: a guest's
//! WASI calls then run on wasmtime-wasi's own runtime, as they do outside
//! any runtime, instead of on the caller's, whose timers may stop while a
//! cancelled guest is still winding down (a runtime shutting down).

use std::future::Future;
use std::panic::AssertUnwindSafe;

use tokio::sync::oneshot;
use wasmtime::component::{ComponentNamedList, Lift, Lower};
use wasmtime::{Store, StoreContextMut, WasmParams, WasmResults};

use crate::component::call_with_store;
use crate::deadline::Deadline;
use crate::outcome::classify;
use crate::state::GuestState;
use crate::{ComponentInstance, Error, GuestInstance, GuestModule, HttpService, RunOutcome, Sandbox};

impl Sandbox {
    /// [`Sandbox::run`] for async callers: the same run, grants, limits
    /// and outcome, awaited. The future owns what it needs (it may be
    /// spawned); dropping it stops the guest (see the [crate docs](crate#from-async-code)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), host::Error> {
    /// use host::{Runtime, Sandbox};
    /// let module = Runtime::shared().load_bytes("exit-3", r#"
    ///     (module
    ///       (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    ///       (memory (export "memory") 1)
    ///       (func (export "_start") (call $exit (i32.const 3))))"#)?;
    /// let outcome = Sandbox::new().run_async(&module).await?;
    /// assert_eq!(outcome.exit_code(), Some(3));
    /// # Ok(())
    /// # }
    /// ```
    pub fn run_async(
        &self,
        module: &GuestModule,
    ) -> impl Future<Output = Result<RunOutcome, Error>> + Send + 'static + use<> {
        let (sandbox, module) = (self.clone(), module.clone());
        let stack = module.runtime().guest_stack_size();
        on_guest_thread(Deadline::default(), stack, move || sandbox.run(&module))
    }

    /// [`Sandbox::instantiate`] for async callers: instantiation (a start
    /// function, `_initialize`) awaited within the timeout; dropping the
    /// future stops it. Call the instance with [`GuestInstance::call_async`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), host::Error> {
    /// let module = host::Runtime::shared().load_bytes("double", r#"
    ///     (module (func (export "double") (param i32) (result i32)
    ///       (i32.mul (local.get 0) (i32.const 2))))"#)?;
    /// let mut guest = host::Sandbox::new().instantiate_async(&module).await?;
    /// assert_eq!(guest.call_async::<i32, i32>("double", 21).await?, 42);
    /// # Ok(())
    /// # }
    /// ```
    pub fn instantiate_async(
        &self,
        module: &GuestModule,
    ) -> impl Future<Output = Result<GuestInstance, Error>> + Send + 'static + use<> {
        let (sandbox, module) = (self.clone(), module.clone());
        let stack = module.runtime().guest_stack_size();
        on_guest_thread(Deadline::default(), stack, move || sandbox.instantiate(&module))
    }

    /// [`Sandbox::instantiate_component`] for async callers; dropping the
    /// future stops the instantiation. Call the instance with
    /// [`ComponentInstance::call_async`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), host::Error> {
    /// let adder = host::Runtime::shared().load_bytes("adder", r#"
    ///     (component
    ///       (core module $m (func (export "add") (param i32 i32) (result i32)
    ///         (i32.add (local.get 0) (local.get 1))))
    ///       (core instance $i (instantiate $m))
    ///       (func (export "add") (param "a" u32) (param "b" u32) (result u32)
    ///         (canon lift (core func $i "add"))))"#)?;
    /// let mut guest = host::Sandbox::new().instantiate_component_async(&adder).await?;
    /// let (sum,): (u32,) = guest.call_async("add", (2u32, 3u32)).await?;
    /// assert_eq!(sum, 5);
    /// # Ok(())
    /// # }
    /// ```
    pub fn instantiate_component_async(
        &self,
        module: &GuestModule,
    ) -> impl Future<Output = Result<ComponentInstance, Error>> + Send + 'static + use<> {
        let (sandbox, module) = (self.clone(), module.clone());
        let stack = module.runtime().guest_stack_size();
        on_guest_thread(Deadline::default(), stack, move || {
            sandbox.instantiate_component(&module)
        })
    }
}

impl GuestInstance {
    /// [`GuestInstance::call`] for async callers: the same call, with a
    /// budget of its own, awaited. The parameters are owned values (they
    /// go to the guest's thread).
    ///
    /// Dropping the future while the guest runs stops the guest and frees
    /// its store (its memory and pool slot) as soon as it has stopped; the
    /// instance then answers every call and memory access with
    /// [`Error::Cancelled`]; its `host_log` is empty and [`GuestInstance::data`]
    /// finds no data (the embedder's data went with the store).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), host::Error> {
    /// use std::time::Duration;
    /// use host::{Error, Limits, Runtime, Sandbox};
    /// let module = Runtime::shared().load_bytes("spin", r#"
    ///     (module (func (export "spin") (loop br 0)))"#)?;
    /// let mut guest = Sandbox::new().instantiate_async(&module).await?;
    /// // Cancelled after 20 ms: the guest stops, the instance is gone.
    /// let call = guest.call_async::<(), ()>("spin", ());
    /// assert!(tokio::time::timeout(Duration::from_millis(20), call).await.is_err());
    /// assert!(matches!(guest.call_async::<(), ()>("spin", ()).await, Err(Error::Cancelled { .. })));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call_async<P, R>(&mut self, export: &str, params: P) -> Result<R, Error>
    where
        P: WasmParams + Send + 'static,
        R: WasmResults + Send + 'static,
    {
        let func = self.typed_func::<P, R>(export)?;
        self.arm();
        let stack = self.stack_size;
        let result = lend(&mut self.store, &mut self.lent, stack, move |store| {
            func.call(store, params)
        })
        .await;
        result.map_err(|error| Error::ended(&self.module, classify(error)))
    }
}

impl ComponentInstance {
    /// [`ComponentInstance::call`] for async callers: the same call, with
    /// a budget of its own, awaited. The parameters are owned values
    /// (`String`, not `&str`: they go to the guest's thread).
    ///
    /// Dropping the future while the guest runs stops the guest and frees
    /// its store as soon as it has stopped; the instance then answers every
    /// call with [`Error::Cancelled`]; its `host_log` is empty and
    /// [`ComponentInstance::data`] finds no data (it went with the store).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), host::Error> {
    /// use std::time::Duration;
    /// let spin = host::Runtime::shared().load_bytes("spin", r#"
    ///     (component
    ///       (core module $m (func (export "spin") (loop (br 0))))
    ///       (core instance $i (instantiate $m))
    ///       (func (export "spin") (canon lift (core func $i "spin"))))"#)?;
    /// let mut guest = host::Sandbox::new().instantiate_component_async(&spin).await?;
    /// // Cancelled after 20 ms: the guest stops, the instance is gone.
    /// let call = guest.call_async::<(), ()>("spin", ());
    /// assert!(tokio::time::timeout(Duration::from_millis(20), call).await.is_err());
    /// let again = guest.call_async::<(), ()>("spin", ()).await;
    /// assert!(matches!(again, Err(host::Error::Cancelled { .. })));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call_async<P, R>(&mut self, export: &str, params: P) -> Result<R, Error>
    where
        P: ComponentNamedList + Lower + Send + Sync + 'static,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let typed = self.typed_func::<P, R>(export)?;
        crate::deadline::arm(&mut self.store, self.timeout);
        // A component runs on a fiber of its own: the thread's stack holds
        // only the host's side of the call.
        let result = lend(&mut self.store, &mut self.lent, 0, move |store| {
            let deadline = store.data().deadline.clone();
            crate::deadline::block_until(&deadline, typed.call_async(&mut *store, params))
        })
        .await;
        result.map_err(|error| Error::ended(&self.module, classify(error)))
    }

    /// [`ComponentInstance::call_bindings`] for async callers: the same
    /// call of the world's typed exports, within the sandbox's timeout from
    /// now, awaited. `call` goes to the guest's thread with the store, so it
    /// owns what it uses: move the bindings in (an `Arc` of them to call
    /// again), and owned arguments.
    ///
    /// Dropping the future while the guest runs stops the guest and frees
    /// its store (the embedder's data with it) as soon as it has stopped;
    /// the instance then answers [`Error::Cancelled`].
    ///
    /// ```no_run
    /// # use host::wasmtime::component::bindgen;
    /// # bindgen!({ inline: "package example:text; world text { export process: func(input: string) -> string; }", exports: { default: async } });
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), host::Error> {
    /// let text = host::Runtime::shared().load_file("text_component.wasm")?;
    /// let mut guest = host::Sandbox::new().instantiate_component_async(&text).await?;
    /// let bindings = guest.bindings(|store, instance| Text::new(store, instance))?;
    /// let input = String::from("abc");
    /// let upper = guest
    ///     .call_bindings_async(async move |store| bindings.call_process(store, &input).await)
    ///     .await?;
    /// assert_eq!(upper, "ABC");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call_bindings_async<R: Send + 'static>(
        &mut self,
        call: impl AsyncFnOnce(StoreContextMut<'_, GuestState>) -> wasmtime::Result<R> + Send + 'static,
    ) -> Result<R, Error> {
        self.usable()?;
        crate::deadline::arm(&mut self.store, self.timeout);
        let result = lend(&mut self.store, &mut self.lent, 0, move |store| {
            call_with_store(store, call)
        })
        .await;
        result.map_err(|error| Error::ended(&self.module, classify(error)))
    }
}

impl HttpService {
    /// [`HttpService::shutdown`] for async callers: stops accepting, lets
    /// the requests in flight finish, and awaits the service's outcome.
    /// (Serving itself never blocks the caller: [`Sandbox::serve_http`]
    /// returns at once, and the service runs on threads of its own.)
    ///
    /// Dropping the future lets the shutdown go on without waiting for it.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let component = host::Runtime::shared().load_file("service.wasm")?;
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let service = host::Sandbox::new().serve_http(&component, listener)?;
    /// // ... requests to service.local_addr() ...
    /// let outcome = service.shutdown_async().await?;
    /// assert_eq!(outcome.exit_code(), Some(0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn shutdown_async(self) -> impl Future<Output = Result<RunOutcome, Error>> + Send + 'static {
        // Nothing of a guest runs on this thread: a small stack will do.
        on_guest_thread(Deadline::default(), 0, move || self.shutdown())
    }
}

/// Runs `call` with the instance's store on a thread of the guest's own,
/// and puts the store back. While it is away, `store` holds a stand-in and
/// `lent` is set; when the future is dropped before the call ends, they
/// stay so (the instance is lost, [`Error::Cancelled`]) and the store is
/// dropped on the guest's thread once the guest has stopped.
async fn lend<R: Send + 'static>(
    store: &mut Store<GuestState>,
    lent: &mut bool,
    stack: usize,
    call: impl FnOnce(&mut Store<GuestState>) -> wasmtime::Result<R> + Send + 'static,
) -> wasmtime::Result<R> {
    let stand_in = Store::new(store.engine(), GuestState::scratch());
    let mut away = std::mem::replace(store, stand_in);
    *lent = true;
    let deadline = away.data().deadline.clone();
    let (away, result) = on_guest_thread(deadline, stack, move || {
        // The call's store exists: a store made during the call (a run in
        // one of the guest's host calls) has a deadline of its own.
        drop(Deadline::for_new_store());
        let result = call(&mut away);
        (away, result)
    })
    .await;
    *store = away;
    *lent = false;
    result
}

/// Runs `work` on a thread of its own (with a stack of `stack` bytes at
/// least, or Rust's default for 0), started when the future is first polled, and awaits what it
/// returns; a panic there is resumed here. The first store made on that
/// thread has `deadline` ([`Deadline::adopt`]); dropping the future before
/// `work` is done cancels it.
async fn on_guest_thread<T: Send + 'static>(
    deadline: Deadline,
    stack: usize,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done, result) = oneshot::channel();
    let mut cancel = CancelOnDrop(Some(deadline.clone()));
    let mut thread = std::thread::Builder::new().name("wasm-guest".into());
    if stack > 0 {
        thread = thread.stack_size(stack.max(MIN_STACK));
    }
    let spawned = thread.spawn(move || {
        deadline.adopt();
        // The caller may be gone: the result is then dropped here.
        let _ = done.send(std::panic::catch_unwind(AssertUnwindSafe(work)));
    });
    if let Err(error) = spawned {
        panic!("cannot start a thread for a guest: {error}");
    }
    let result = result.await.expect("the guest's thread sends its result or its panic");
    cancel.0 = None;
    result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The least stack a guest's thread gets: that of any thread Rust starts.
const MIN_STACK: usize = 2 << 20;

/// Cancels its deadline when dropped, unless the call finished first.
struct CancelOnDrop(Option<Deadline>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(deadline) = self.0.take() {
            deadline.cancel();
        }
    }
}
