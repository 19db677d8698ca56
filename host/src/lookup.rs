//! Name lookups for a component's outgoing HTTP and its
//! `wasi:sockets/ip-name-lookup`, WASI 0.2's ([`AddressStream`]) and 0.3's
//! ([`resolve_addresses`]), made only when granted
//! ([`crate::Sandbox::allow_ip_name_lookup`]) and bounded in number: a
//! lookup runs `getaddrinfo` on a thread of its own, which nothing can stop
//! (a resolver that never answers keeps it), so the process keeps at most
//! [`MAX_RESOLVER_THREADS`] of them, and one grant (a sandbox and its
//! clones: every request of a service) at most [`MAX_LOOKUPS_PER_GRANT`].
//! A lookup past either cap waits for a turn; the caller stops waiting at
//! the run's deadline, the thread then finishes on its own, still counted.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::vec;

use tokio::sync::{Semaphore, oneshot};
use wasmtime_wasi::p2::Pollable;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress};
use wasmtime_wasi::p3::bindings::sockets::ip_name_lookup::ErrorCode as P3ErrorCode;
use wasmtime_wasi::runtime::{AbortOnDropJoinHandle, spawn};

/// Resolver threads alive at once in the whole process.
const MAX_RESOLVER_THREADS: usize = 8;
/// Lookups one grant has under way at once (threads left behind at a
/// deadline included).
const MAX_LOOKUPS_PER_GRANT: usize = 2;

static RESOLVER_THREADS: Semaphore = Semaphore::const_new(MAX_RESOLVER_THREADS);

/// How a host name becomes addresses: the system's resolver, or a test's.
pub(crate) trait Resolve: Send + Sync + 'static {
    /// Blocks until `host` is resolved (called on a resolver thread).
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>>;
}

/// The system's resolver (`getaddrinfo`).
struct System;

impl Resolve for System {
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        Ok((host, port).to_socket_addrs()?.collect())
    }
}

/// The addresses `host` stands for without asking any resolver: an IP
/// literal, or `localhost`, which is loopback (RFC 6761) and never sent to
/// DNS.
pub(crate) fn without_lookup(host: &str) -> Option<Vec<IpAddr>> {
    if let Ok(ip) = host.parse() {
        return Some(vec![ip]);
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    name.eq_ignore_ascii_case("localhost")
        .then(|| vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)])
}

/// Why a name was not resolved.
#[derive(Debug)]
pub(crate) enum LookupError {
    /// The sandbox grants no name lookup.
    NotGranted,
    /// The resolver's own failure.
    Failed(io::Error),
}

/// The name lookups one grant allows (see the module's documentation).
#[derive(Clone)]
pub(crate) struct Lookups {
    granted: bool,
    under_way: Arc<Semaphore>,
    resolver: Arc<dyn Resolve>,
    threads: &'static Semaphore,
}

impl fmt::Debug for Lookups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lookups")
            .field("granted", &self.granted)
            .finish_non_exhaustive()
    }
}

impl Default for Lookups {
    /// None granted.
    fn default() -> Self {
        Self::with(false, Arc::new(System), &RESOLVER_THREADS)
    }
}

impl Lookups {
    pub(crate) fn with(granted: bool, resolver: Arc<dyn Resolve>, threads: &'static Semaphore) -> Self {
        Self {
            granted,
            under_way: Arc::new(Semaphore::new(MAX_LOOKUPS_PER_GRANT)),
            resolver,
            threads,
        }
    }

    pub(crate) fn grant(&mut self) {
        self.granted = true;
    }

    pub(crate) fn granted(&self) -> bool {
        self.granted
    }

    /// The addresses of `host`, resolved on a resolver thread once this
    /// grant and the process have a turn for it. Refused, before any
    /// resolver sees the name, unless granted.
    pub(crate) async fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, LookupError> {
        if !self.granted {
            return Err(LookupError::NotGranted);
        }
        let closed = |_| LookupError::Failed(io::Error::other("name lookups are shut down"));
        let turn = self.under_way.clone().acquire_owned().await.map_err(closed)?;
        let thread = self.threads.acquire().await.map_err(closed)?;
        let (sender, answer) = oneshot::channel();
        let resolver = self.resolver.clone();
        let host = host.to_owned();
        std::thread::Builder::new()
            .name("wasm-resolver".into())
            .spawn(move || {
                // Both turns are held until the resolver answers, however
                // long after the caller stopped waiting.
                let _turns = (turn, thread);
                let _ = sender.send(resolver.resolve(&host, port));
            })
            .map_err(LookupError::Failed)?;
        let resolved = answer
            .await
            .unwrap_or_else(|_| Err(io::Error::other("the resolver thread ended")));
        resolved.map_err(LookupError::Failed)
    }

    /// The addresses of `domain` for WASI's `resolve-addresses`.
    async fn addresses_of(&self, domain: &str) -> Result<Vec<IpAddr>, Unresolved> {
        match self.lookup(domain, 0).await {
            Ok(addrs) => Ok(addrs.into_iter().map(|addr| addr.ip().to_canonical()).collect()),
            Err(_) => Err(Unresolved::NoAddress),
        }
    }
}

/// Why WASI's `resolve-addresses` gives no addresses (0.2 and 0.3 have the
/// same codes for these, in different types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unresolved {
    /// The sandbox grants no name lookup.
    NotGranted,
    /// Neither a domain name nor an IP address.
    InvalidName,
    /// The resolver found no address, or failed.
    NoAddress,
}

impl From<Unresolved> for ErrorCode {
    fn from(unresolved: Unresolved) -> Self {
        match unresolved {
            Unresolved::NotGranted => ErrorCode::PermanentResolverFailure,
            Unresolved::InvalidName => ErrorCode::InvalidArgument,
            Unresolved::NoAddress => ErrorCode::NameUnresolvable,
        }
    }
}

impl From<Unresolved> for P3ErrorCode {
    fn from(unresolved: Unresolved) -> Self {
        match unresolved {
            Unresolved::NotGranted => P3ErrorCode::PermanentResolverFailure,
            Unresolved::InvalidName => P3ErrorCode::InvalidArgument,
            Unresolved::NoAddress => P3ErrorCode::NameUnresolvable,
        }
    }
}

/// A name a guest asked WASI to resolve, as wasmtime-wasi reads it.
enum Name {
    /// An IP literal: no lookup.
    Address(IpAddr),
    /// A domain, in punycode.
    Domain(String),
}

impl Name {
    /// `name`, if lookups are granted: refused unless they are, a name that
    /// is neither a domain nor an address is invalid.
    fn checked(lookups: &Lookups, name: &str) -> Result<Self, Unresolved> {
        if !lookups.granted() {
            return Err(Unresolved::NotGranted);
        }
        // Validates the name and turns a Unicode domain into punycode, as
        // wasmtime-wasi does; bare IPv6 addresses have no brackets.
        match url::Host::parse(name) {
            Ok(url::Host::Domain(domain)) => Ok(Self::Domain(domain)),
            Ok(url::Host::Ipv4(ip)) => Ok(Self::Address(IpAddr::V4(ip))),
            Ok(url::Host::Ipv6(ip)) => Ok(Self::Address(IpAddr::V6(ip))),
            Err(_) => match name.parse::<Ipv6Addr>() {
                Ok(ip) => Ok(Self::Address(IpAddr::V6(ip))),
                Err(_) => Err(Unresolved::InvalidName),
            },
        }
    }
}

/// WASI 0.3's `resolve-addresses`, as wasmtime-wasi's (whose lookups
/// start on Tokio's blocking pool, unbounded) but through [`Lookups`]
/// (`crate::imports` links it).
pub(crate) async fn resolve_addresses(lookups: Lookups, name: String) -> Result<Vec<IpAddr>, Unresolved> {
    match Name::checked(&lookups, &name)? {
        Name::Address(ip) => Ok(vec![ip]),
        Name::Domain(domain) => lookups.addresses_of(&domain).await,
    }
}

/// A WASI 0.2 `resolve-address-stream` whose lookup goes through
/// [`Lookups`], in place of wasmtime-wasi's, which starts one on Tokio's
/// blocking pool per call, unbounded (`crate::imports` links it).
pub(crate) enum AddressStream {
    Resolving(AbortOnDropJoinHandle<Result<Vec<IpAddr>, ErrorCode>>),
    Resolved(Result<vec::IntoIter<IpAddr>, ErrorCode>),
}

impl AddressStream {
    /// Starts looking up `name` (an IP literal needs no lookup), with
    /// wasmtime-wasi's answers ([`Name::checked`]).
    pub(crate) fn start(lookups: &Lookups, name: &str) -> Result<Self, ErrorCode> {
        match Name::checked(lookups, name)? {
            Name::Address(ip) => Ok(Self::Resolved(Ok(vec![ip].into_iter()))),
            Name::Domain(domain) => {
                let lookups = lookups.clone();
                Ok(Self::Resolving(spawn(async move {
                    Ok(lookups.addresses_of(&domain).await?)
                })))
            }
        }
    }

    /// `resolve-next-address`: the next address, `None` after the last, or
    /// `would-block` while the lookup is under way.
    pub(crate) fn next(&mut self) -> Result<Option<IpAddress>, ErrorCode> {
        if let Self::Resolving(lookup) = self
            && let Poll::Ready(addrs) = Pin::new(lookup).poll(&mut Context::from_waker(Waker::noop()))
        {
            *self = Self::Resolved(addrs.map(Vec::into_iter));
        }
        match self {
            Self::Resolving(_) => Err(ErrorCode::WouldBlock),
            Self::Resolved(Ok(addrs)) => Ok(addrs.next().map(IpAddress::from)),
            Self::Resolved(Err(err)) => Err(*err),
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for AddressStream {
    async fn ready(&mut self) {
        if let Self::Resolving(lookup) = self {
            *self = Self::Resolved(lookup.await.map(Vec::into_iter));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// A resolver that answers 127.0.0.1 once `open` is true, counting the
    /// names it was asked and the calls under way at once.
    #[derive(Default)]
    pub(crate) struct Gate {
        open: Mutex<bool>,
        opened: std::sync::Condvar,
        pub(crate) asked: Mutex<Vec<String>>,
        now: AtomicUsize,
        pub(crate) most: AtomicUsize,
    }

    impl Resolve for Gate {
        fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
            self.asked.lock().unwrap().push(host.to_owned());
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            let open = self
                .opened
                .wait_while(self.open.lock().unwrap(), |open| !*open)
                .unwrap();
            drop(open);
            self.now.fetch_sub(1, Ordering::SeqCst);
            Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
        }
    }

    impl Gate {
        pub(crate) fn open(&self) {
            *self.open.lock().unwrap() = true;
            self.opened.notify_all();
        }

        /// Waits (a while at most) until `calls` calls are under way.
        pub(crate) fn wait_for(&self, calls: usize) {
            for _ in 0..10_000 {
                if self.now.load(Ordering::SeqCst) >= calls {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A runtime whose one worker runs the lookups spawned on it while the
    /// test's thread waits on them.
    fn one_worker() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn without_the_grant_no_name_reaches_the_resolver() {
        static THREADS: Semaphore = Semaphore::const_new(1);
        let gate = Arc::new(Gate::default());
        gate.open();
        let lookups = Lookups::with(false, gate.clone(), &THREADS);
        for name in ["example.com", "exists.example", "4157535f.exfil.attacker.example"] {
            let refused = runtime().block_on(lookups.lookup(name, 80));
            assert!(matches!(refused, Err(LookupError::NotGranted)), "{refused:?}");
        }
        assert!(gate.asked.lock().unwrap().is_empty());
        let mut granted = lookups;
        granted.grant();
        let resolved = runtime().block_on(granted.lookup("example.com", 80)).unwrap();
        assert_eq!(resolved, [SocketAddr::from(([127, 0, 0, 1], 80))]);
        assert_eq!(*gate.asked.lock().unwrap(), ["example.com"]);
    }

    #[test]
    fn literals_and_localhost_need_no_lookup() {
        let loopback = [IpAddr::from([127, 0, 0, 1]), IpAddr::from(Ipv6Addr::LOCALHOST)];
        assert_eq!(without_lookup("localhost").unwrap(), loopback);
        assert_eq!(without_lookup("LocalHost.").unwrap(), loopback);
        assert_eq!(without_lookup("10.1.2.3").unwrap(), [IpAddr::from([10, 1, 2, 3])]);
        assert_eq!(without_lookup("::1").unwrap(), [IpAddr::from(Ipv6Addr::LOCALHOST)]);
        for name in ["localhost.example", "127.1", "2130706433", "example.com", ""] {
            assert_eq!(without_lookup(name), None, "{name}");
        }
    }

    #[test]
    fn lookups_past_the_caps_wait_without_a_thread_of_their_own() {
        // A process cap of 3 threads, shared by two grants of 2 each.
        static THREADS: Semaphore = Semaphore::const_new(3);
        let gate = Arc::new(Gate::default());
        let grants = [
            Lookups::with(true, gate.clone(), &THREADS),
            Lookups::with(true, gate.clone(), &THREADS),
        ];
        let runtime = one_worker();
        let lookups: Vec<_> = (0..10)
            .map(|n| {
                let grant = grants[n % 2].clone();
                runtime.spawn(async move { grant.lookup("name.example", 80).await.is_ok() })
            })
            .collect();
        gate.wait_for(3);
        assert_eq!(gate.asked.lock().unwrap().len(), 3, "threads started");
        // A third grant waits for a thread as well.
        let one = Lookups::with(true, gate.clone(), &THREADS);
        let waiting = runtime.spawn({
            let one = one.clone();
            async move { one.lookup("other.example", 80).await.is_ok() }
        });
        gate.open();
        for lookup in lookups {
            assert!(runtime.block_on(lookup).unwrap());
        }
        assert!(runtime.block_on(waiting).unwrap());
        assert_eq!(gate.asked.lock().unwrap().len(), 11);
        assert_eq!(gate.most.load(Ordering::SeqCst), 3, "resolver calls at once");
    }

    #[test]
    fn one_grant_has_at_most_two_lookups_under_way() {
        static THREADS: Semaphore = Semaphore::const_new(8);
        let gate = Arc::new(Gate::default());
        let grant = Lookups::with(true, gate.clone(), &THREADS);
        let runtime = one_worker();
        let lookups: Vec<_> = (0..5)
            .map(|_| {
                let grant = grant.clone();
                runtime.spawn(async move { grant.lookup("name.example", 80).await.is_ok() })
            })
            .collect();
        gate.wait_for(2);
        // One more waits for a turn, without a thread, until its deadline.
        let abandoned = runtime.block_on(async {
            tokio::time::timeout(Duration::from_millis(50), grant.lookup("late.example", 80)).await
        });
        assert!(abandoned.is_err(), "still waiting for a turn");
        assert_eq!(gate.asked.lock().unwrap().len(), 2);
        gate.open();
        for lookup in lookups {
            assert!(runtime.block_on(lookup).unwrap());
        }
        assert_eq!(gate.most.load(Ordering::SeqCst), 2, "resolver calls at once");
    }

    #[test]
    fn socket_lookups_share_the_grants_caps() {
        static THREADS: Semaphore = Semaphore::const_new(8);
        let gate = Arc::new(Gate::default());
        let grant = Lookups::with(true, gate.clone(), &THREADS);
        let runtime = one_worker();
        let _entered = runtime.enter();
        // A guest holding many streams without reading them.
        let mut streams: Vec<_> = (0..10)
            .map(|n| AddressStream::start(&grant, &format!("name{n}.example")).unwrap())
            .collect();
        gate.wait_for(2);
        let started = gate.asked.lock().unwrap().len();
        let last = streams[9].next();
        // Opened before asserting, so that a failure does not hang.
        gate.open();
        assert_eq!(started, 2, "resolver calls started");
        assert!(matches!(last, Err(ErrorCode::WouldBlock)));
        for stream in &mut streams {
            runtime.block_on(stream.ready());
            assert!(matches!(stream.next(), Ok(Some(IpAddress::Ipv4((127, 0, 0, 1))))));
            assert!(matches!(stream.next(), Ok(None)));
        }
        assert_eq!(gate.asked.lock().unwrap().len(), 10);
        assert_eq!(gate.most.load(Ordering::SeqCst), 2, "resolver calls at once");
        // Literals need no lookup; without the grant nothing is looked up.
        let mut literal = AddressStream::start(&grant, "::1").unwrap();
        assert!(matches!(
            literal.next(),
            Ok(Some(IpAddress::Ipv6((0, 0, 0, 0, 0, 0, 0, 1))))
        ));
        let refused = AddressStream::start(&Lookups::with(false, gate.clone(), &THREADS), "name.example");
        assert!(matches!(refused, Err(ErrorCode::PermanentResolverFailure)));
        assert!(matches!(
            AddressStream::start(&grant, "bad name!"),
            Err(ErrorCode::InvalidArgument)
        ));
        assert_eq!(gate.asked.lock().unwrap().len(), 10);
    }

    /// WASI 0.3's calls, like 0.2's streams: a guest with many under way at
    /// once has at most 2 resolver calls, against a resolver that does not
    /// answer until the test says.
    #[test]
    fn wasi_0_3_lookups_share_the_grants_caps() {
        static THREADS: Semaphore = Semaphore::const_new(8);
        let gate = Arc::new(Gate::default());
        let grant = Lookups::with(true, gate.clone(), &THREADS);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let calls: Vec<_> = (0..10)
            .map(|n| runtime.spawn(resolve_addresses(grant.clone(), format!("name{n}.example"))))
            .collect();
        gate.wait_for(2);
        let started = gate.asked.lock().unwrap().len();
        // Opened before asserting, so that a failure does not hang.
        gate.open();
        assert_eq!(started, 2, "resolver calls started");
        for call in calls {
            assert_eq!(runtime.block_on(call).unwrap(), Ok(vec![IpAddr::from([127, 0, 0, 1])]));
        }
        assert_eq!(gate.asked.lock().unwrap().len(), 10);
        assert_eq!(gate.most.load(Ordering::SeqCst), 2, "resolver calls at once");
        // Literals need no lookup; without the grant nothing is looked up.
        let resolve = |lookups: &Lookups, name: &str| runtime.block_on(resolve_addresses(lookups.clone(), name.into()));
        assert_eq!(resolve(&grant, "::1"), Ok(vec![IpAddr::from(Ipv6Addr::LOCALHOST)]));
        assert_eq!(resolve(&grant, "10.1.2.3"), Ok(vec![IpAddr::from([10, 1, 2, 3])]));
        let refused = Lookups::with(false, gate.clone(), &THREADS);
        assert_eq!(resolve(&refused, "name.example"), Err(Unresolved::NotGranted));
        assert_eq!(resolve(&grant, "bad name!"), Err(Unresolved::InvalidName));
        assert_eq!(gate.asked.lock().unwrap().len(), 10);
    }
}
