//! Serving HTTP with a component: [`Sandbox::serve_http`] answers each
//! request on a listener with the component's WASI 0.3 `wasi:http/handler`
//! or WASI 0.2 `wasi:http/incoming-handler`, as `wasmtime serve` does, under
//! the sandbox's grants and limits.
//!
//! Each request gets an instance of its own, in a store of its own: the
//! sandbox's timeout, fuel and memory limits hold per request (the timeout
//! from instantiation to the end of the guest's work on it), and nothing
//! one request leaves behind is seen by the next. Output goes to one pair
//! of capped streams for the whole service. wasmtime-wasi-http's
//! `ProxyHandler` drives the instances; the HTTP/1 server around it runs
//! on a Tokio runtime of its own, on threads of its own, so a synchronous
//! caller can make requests to it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};
use tokio::task::JoinSet;
use wasmtime::component::{GuestTaskId, InstancePre};
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi_http::handler::{
    ExpirationError, HandlerState, Instance, InstantiationError, ProxyHandler, ProxyPre, ShouldAccept,
    WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{WasiBody, WasiHttpView, p2, p3};

use crate::deadline;
use crate::launch;
use crate::outcome::{Ending, Termination, Trap, TrapKind, classify};
use crate::runtime::EngineKind;
use crate::state::{GuestState, Pipes, outcome};
use crate::{Error, GuestModule, RunOutcome, Sandbox};

/// Requests served at once by default (see
/// [`ServeOptions::max_concurrent_requests`]).
const MAX_CONCURRENT_REQUESTS: usize = 64;
/// Connections held open at once; more wait in the listener's backlog.
const MAX_CONNECTIONS: usize = 1024;
/// How long shutting down waits for requests in flight when the sandbox
/// sets no timeout (with one, each request ends by it anyway).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// A pause after a failed `accept` (out of descriptors, say), so that the
/// loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How [`Sandbox::serve_http_with`] serves, beyond what the sandbox grants.
///
/// ```
/// let options = host::ServeOptions::new().max_concurrent_requests(16).tag_output(true);
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct ServeOptions {
    max_concurrent_requests: usize,
    tag_output: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_concurrent_requests: MAX_CONCURRENT_REQUESTS,
            tag_output: false,
        }
    }
}

impl ServeOptions {
    /// 64 requests at once, output as the guest wrote it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests served at once (at least 1; default 64): each holds an
    /// instance, whose memory may reach [`crate::Limits::max_memory_bytes`],
    /// from the moment it is made until it is dropped, whenever the guest
    /// sent its response; more requests wait for their turn.
    pub fn max_concurrent_requests(mut self, requests: usize) -> Self {
        self.max_concurrent_requests = requests.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// Starts each line a request writes with `stdout [N] :: ` or
    /// `stderr [N] :: `, N the request's number from 0 in the order they
    /// reached an instance (as `wasmtime serve` does); the prefixes count
    /// towards [`crate::Limits::max_output_bytes`]. Default off.
    pub fn tag_output(mut self, tag: bool) -> Self {
        self.tag_output = tag;
        self
    }
}

impl Sandbox {
    /// [`Sandbox::serve_http_with`] the default [`ServeOptions`].
    pub fn serve_http(&self, component: &GuestModule, listener: std::net::TcpListener) -> Result<HttpService, Error> {
        self.serve_http_with(component, listener, &ServeOptions::default())
    }

    /// Serves HTTP on `listener` with `component`, an HTTP service (a
    /// component exporting WASI 0.3's `wasi:http/handler` or WASI 0.2's
    /// `wasi:http/incoming-handler`), on threads of its own, until
    /// [`HttpService::shutdown`].
    ///
    /// Every request runs in a fresh instance with this sandbox's grants
    /// (environment, arguments, directories, network, outgoing HTTP) and
    /// limits ([`crate::Limits::timeout`] per request, fuel and memory per
    /// request, output for the whole service). A request the guest fails to
    /// answer (a trap, the timeout, no response) gets status 500, and its
    /// ending is written to the service's stderr.
    ///
    /// Errors: [`Error::WrongKind`] for a core module,
    /// [`Error::MissingExport`] for a component that is no HTTP service,
    /// the grant errors of [`Sandbox::run`], and [`Error::Serve`] when the
    /// listener cannot be used or the timeout could not be kept (a runtime
    /// without epoch interruption).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let component = host::Runtime::shared().load_file("service.wasm")?;
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let options = host::ServeOptions::new().max_concurrent_requests(8);
    /// let service = host::Sandbox::new().serve_http_with(&component, listener, &options)?;
    /// println!("serving on http://{}/", service.local_addr());
    /// // ... requests ...
    /// let outcome = service.shutdown()?;
    /// assert_eq!(outcome.exit_code(), Some(0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn serve_http_with(
        &self,
        component: &GuestModule,
        listener: std::net::TcpListener,
        options: &ServeOptions,
    ) -> Result<HttpService, Error> {
        let started = Instant::now();
        let module = component.name().to_owned();
        let serve_error = |source: std::io::Error| Error::Serve {
            module: module.clone(),
            source: source.into(),
        };
        let kind = component.runtime().kind_for(&self.limits);
        let proxy = proxy_pre(&module, launch::component(self, component, kind)?)?;
        if self.limits.timeout.is_some() && !component.runtime().epoch_interruption() {
            return Err(serve_error(std::io::Error::other(
                "a request's timeout needs a runtime with epoch interruption",
            )));
        }
        let pipes = launch::pipes(self);
        // Grants that cannot be made fail now, not at the first request.
        drop(launch::store(self, component, kind, &pipes)?);

        let local_addr = listener.local_addr().map_err(serve_error)?;
        listener.set_nonblocking(true).map_err(serve_error)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get().max(2)))
            .thread_name("wasm-http")
            .enable_all()
            .build()
            .map_err(serve_error)?;
        let listener = {
            let _context = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(serve_error)?
        };
        let instances = Arc::new(AtomicUsize::new(0));
        let service = Service {
            sandbox: self.clone(),
            component: component.clone(),
            proxy,
            kind,
            pipes: pipes.clone(),
            tag_output: options.tag_output,
            turns: Arc::new(Semaphore::new(options.max_concurrent_requests)),
            requests: AtomicU64::new(0),
            instances: instances.clone(),
        };
        let grace = self.limits.timeout.unwrap_or(SHUTDOWN_GRACE);
        let timeout = self.limits.timeout;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("wasm-http-service".into())
            .spawn(move || {
                runtime.block_on(accept(listener, ProxyHandler::new(service), stopped, grace));
                // Instances still running past the grace are dropped here.
                runtime.shutdown_timeout(Duration::ZERO);
                outcome(&pipes, Termination::Exited(0), started, timeout)
            })
            .map_err(serve_error)?;
        Ok(HttpService {
            module,
            local_addr,
            instances,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// An HTTP service running on threads of its own (see
/// [`Sandbox::serve_http`]). Dropping it shuts it down too, discarding the
/// outcome.
pub struct HttpService {
    module: String,
    local_addr: SocketAddr,
    instances: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<RunOutcome>>,
}

impl std::fmt::Debug for HttpService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpService")
            .field("module", &self.module)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl HttpService {
    /// The address the service listens on (with the port the system chose,
    /// for a listener bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The instances alive now, one per request being served (from the
    /// moment its store is made until it is dropped): never more than
    /// [`ServeOptions::max_concurrent_requests`].
    pub fn instances(&self) -> usize {
        self.instances.load(Ordering::SeqCst)
    }

    /// Stops accepting connections, lets the requests in flight finish
    /// (each within the sandbox's timeout; without one, for at most 10 s),
    /// and returns the service's outcome: exit code 0, and the output of
    /// every request, captured as for [`Sandbox::run`].
    pub fn shutdown(mut self) -> Result<RunOutcome, Error> {
        self.stop()
    }

    fn stop(&mut self) -> Result<RunOutcome, Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let thread = self.thread.take().ok_or_else(|| self.failed("already shut down"))?;
        thread.join().map_err(|_| self.failed("the service's thread panicked"))
    }

    fn failed(&self, why: &str) -> Error {
        Error::Serve {
            module: self.module.clone(),
            source: why.into(),
        }
    }
}

impl Drop for HttpService {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.stop();
        }
    }
}

/// The component's HTTP export, WASI 0.3's first (a component built for
/// 0.3 may carry both), as `wasmtime serve` chooses.
fn proxy_pre(module: &str, pre: InstancePre<GuestState>) -> Result<ProxyPre<GuestState>, Error> {
    if let Ok(service) = p3::bindings::ServicePre::new(pre.clone()) {
        return Ok(ProxyPre::P3(service));
    }
    p2::bindings::ProxyPre::new(pre).map(ProxyPre::P2).map_err(|_| {
        Error::missing_export(
            module,
            "wasi:http/handler (WASI 0.3) or wasi:http/incoming-handler (WASI 0.2)",
        )
    })
}

/// Accepts connections until `stop`, then lets those open finish for at
/// most `grace`.
async fn accept(
    listener: tokio::net::TcpListener,
    handler: ProxyHandler<Service>,
    mut stop: oneshot::Receiver<()>,
    grace: Duration,
) {
    let (closing, closed) = watch::channel(false);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept(), if connections.len() < MAX_CONNECTIONS => match accepted {
                Ok((stream, _)) => {
                    // Small writes of a streamed body go out at once.
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection(stream, handler.clone(), closed.clone()));
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = closing.send(true);
    let _ = tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} }).await;
}

/// Serves one connection's requests until it closes, or until `closing`,
/// when the request in progress is finished and the connection closed.
async fn connection(stream: tokio::net::TcpStream, handler: ProxyHandler<Service>, mut closing: watch::Receiver<bool>) {
    let Ok(local) = stream.local_addr() else { return };
    let respond = hyper::service::service_fn(move |mut request| {
        let handler = handler.clone();
        absolute(&mut request, local);
        async move { Ok::<_, Infallible>(respond(&handler, request).await) }
    });
    // The timer bounds how long a client may take to send a request's
    // headers (hyper's default, 30 s), idle keep-alive included.
    let serving = http1::Builder::new()
        .timer(TokioTimer)
        .serve_connection(TokioIo::new(stream), respond);
    tokio::pin!(serving);
    tokio::select! {
        _ = serving.as_mut() => return,
        _ = closing.wait_for(|closing| *closing) => serving.as_mut().graceful_shutdown(),
    }
    let _ = serving.await;
}

/// Makes the request's URI absolute: a WASI request carries its scheme
/// and authority, which an HTTP/1 request line leaves out. The authority
/// is the `Host` header's, or else the address the connection came to.
fn absolute<B>(request: &mut hyper::Request<B>, local: SocketAddr) {
    // Only an origin-form target (`/path?query`) lacks them; an
    // asterisk-form one (`OPTIONS *`) has no absolute form.
    if !request
        .uri()
        .path_and_query()
        .is_some_and(|target| target.as_str().starts_with('/'))
        || request.uri().authority().is_some()
    {
        return;
    }
    let mut parts = request.uri().clone().into_parts();
    parts.scheme = Some(http::uri::Scheme::HTTP);
    let host = request.headers().get(http::header::HOST);
    let named = host.and_then(|host| host.to_str().ok()?.parse().ok());
    parts.authority = named.or_else(|| local.to_string().parse().ok());
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
}

/// Tokio's timers, for hyper's.
#[derive(Clone, Copy)]
struct TokioTimer;

impl hyper::rt::Timer for TokioTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(TokioSleep(Box::pin(tokio::time::sleep(duration))))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(TokioSleep(Box::pin(tokio::time::sleep_until(deadline.into()))))
    }
}

struct TokioSleep(Pin<Box<tokio::time::Sleep>>);

impl Future for TokioSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().0.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for TokioSleep {}

/// The guest's response to `request`, or a 500 when it gave none.
async fn respond(
    handler: &ProxyHandler<Service>,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<WasiBody> {
    let service = handler.state();
    let request = request.map(|body| body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync());
    let deadline = RequestDeadline::default();
    match handler.handle(deadline.clone(), request).await {
        Ok(response) => response,
        // Ended by its deadline, whether the request's own expiry or its
        // instance's came first.
        Err(error) if error.is::<ExpirationError>() || deadline.get().is_some_and(|end| Instant::now() >= *end) => {
            failure("the guest timed out")
        }
        // Other failures of a running instance are noted when it is dropped
        // (`OneRequest::drop`); one that never started, here.
        Err(error) => {
            if let Some(failed) = error.downcast_ref::<InstantiationError<RequestDeadline>>() {
                let why = format!("{:#}", failed.error);
                service.note(&format!("a request could not start: {why}"));
            }
            failure("the guest failed to respond")
        }
    }
}

fn failure(why: &'static str) -> hyper::Response<WasiBody> {
    let body = Full::new(bytes::Bytes::from(format!("{why}\n")))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    response
}

/// What every instance of the service is made from.
struct Service {
    sandbox: Sandbox,
    component: GuestModule,
    proxy: ProxyPre<GuestState>,
    kind: EngineKind,
    pipes: Pipes,
    tag_output: bool,
    /// One permit per instance alive: taken before its store is made,
    /// given back once it is dropped.
    turns: Arc<Semaphore>,
    /// Requests that reached an instance so far, numbering them.
    requests: AtomicU64,
    instances: Arc<AtomicUsize>,
}

impl Service {
    /// Writes `what` to the service's stderr, as one line naming the component.
    fn note(&self, what: &str) {
        note(&self.pipes, self.component.name(), what);
    }
}

fn note(pipes: &Pipes, module: &str, what: &str) {
    let line = format!("wasm-host: {module}: {what}\n");
    // Past the output cap it is dropped like the guest's own output.
    let _ = pipes.stderr.append(line.as_bytes());
}

impl HandlerState for Service {
    type StoreData = GuestState;
    type WorkerExpiration = Expiry;
    type WorkerState = OneRequest;

    async fn instantiate(&self) -> wasmtime::Result<Instance<GuestState, Expiry, OneRequest>> {
        // The turn is released with the instance, not with the response:
        // a guest that answers and lingers still holds its memory.
        let permit = self.turns.clone().acquire_owned().await?;
        let turn = Turn::new(permit, &self.instances);
        let number = self.requests.fetch_add(1, Ordering::Relaxed);
        let pipes = match self.tag_output {
            true => self.pipes.tagged(number),
            false => self.pipes.clone(),
        };
        let mut store =
            launch::store(&self.sandbox, &self.component, self.kind, &pipes).map_err(wasmtime::Error::new)?;
        // The request's timeout starts now, instantiation included.
        let timeout = self.sandbox.limits.timeout;
        let armed = deadline::arm(&mut store, timeout);
        let proxy = deadline::until(&armed, self.proxy.instantiate_async(&mut store)).await?;
        let deadline = armed.get();
        Ok(Instance {
            store,
            proxy,
            view: <GuestState as WasiHttpView>::http,
            expiration: Expiry(deadline.map(|deadline| Box::pin(tokio::time::sleep_until(deadline.into())))),
            state: OneRequest {
                module: self.component.name().to_owned(),
                deadline,
                timeout,
                pipes: self.pipes.clone(),
                _turn: turn,
            },
        })
    }
}

/// An instance's place among those the service may hold at once; counted
/// in [`HttpService::instances`] while it lasts.
struct Turn {
    _permit: OwnedSemaphorePermit,
    instances: Arc<AtomicUsize>,
}

impl Turn {
    fn new(permit: OwnedSemaphorePermit, instances: &Arc<AtomicUsize>) -> Self {
        instances.fetch_add(1, Ordering::SeqCst);
        Self {
            _permit: permit,
            instances: instances.clone(),
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.instances.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An instance ends at its request's deadline, whatever it is doing: this
/// is polled from outside the store's event loop, so it also ends one that
/// waits in a host call.
struct Expiry(Option<Pin<Box<tokio::time::Sleep>>>);

impl WorkerExpiration for Expiry {
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>, _: WorkerStatus, _: Instant) -> Poll<()> {
        match &mut self.get_mut().0 {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

/// A request's deadline, known once an instance took it: how
/// [`respond`] tells a timeout from another failure.
type RequestDeadline = Arc<OnceLock<Instant>>;

/// One instance, one request.
struct OneRequest {
    module: String,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
    pipes: Pipes,
    /// Dropped after the store (wasmtime-wasi-http drops this state right
    /// after [`WorkerState::drop`] gave the store back).
    _turn: Turn,
}

impl WorkerState for OneRequest {
    type StoreData = GuestState;
    type RequestData = RequestDeadline;

    fn should_accept_request(&self, _concurrent: usize, total: usize) -> ShouldAccept {
        if total == 0 {
            ShouldAccept::Yes
        } else {
            ShouldAccept::Never
        }
    }

    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, GuestState>,
        request_deadline: RequestDeadline,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        if let Some(deadline) = self.deadline {
            let _ = request_deadline.set(deadline);
        }
        match self.deadline {
            Some(deadline) => Box::pin(tokio::time::sleep_until(deadline.into())),
            None => Box::pin(std::future::pending()),
        }
    }

    fn drop(&self, store: Store<GuestState>, result: wasmtime::Result<()>) {
        drop(store);
        let Err(error) = result else { return };
        // The deadline's expiry is no trap of its own: it is the timeout.
        let termination = match self.deadline {
            Some(deadline) if Instant::now() >= deadline => Termination::Trapped(Trap {
                kind: TrapKind::Timeout,
                message: error.to_string(),
                backtrace: None,
            }),
            _ => classify(error),
        };
        let ending = Ending {
            termination: &termination,
            timeout: self.timeout,
            fuel_consumed: None,
        };
        note(&self.pipes, &self.module, &format!("a request {ending}"));
    }
}

#[cfg(test)]
mod tests {
    use super::absolute;

    fn made_absolute(target: &str, host: Option<&str>) -> String {
        let mut request = hyper::Request::builder().uri(target);
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let mut request = request.body(()).unwrap();
        absolute(&mut request, "127.0.0.1:8080".parse().unwrap());
        request.uri().to_string()
    }

    #[test]
    fn a_request_reaches_the_guest_with_its_scheme_and_authority() {
        assert_eq!(
            made_absolute("/a?b=1", Some("example.com:81")),
            "http://example.com:81/a?b=1"
        );
        assert_eq!(made_absolute("/", None), "http://127.0.0.1:8080/");
        assert_eq!(made_absolute("/", Some("not a host")), "http://127.0.0.1:8080/");
        assert_eq!(made_absolute("http://other/x", Some("example.com")), "http://other/x");
        assert_eq!(made_absolute("*", Some("example.com")), "*");
    }
}
