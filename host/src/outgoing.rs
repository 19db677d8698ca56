//! Outgoing HTTP requests of a component (`wasi:http/client` of WASI 0.3,
//! `wasi:http/outgoing-handler` of WASI 0.2): refused unless granted, and
//! then sent only to the addresses granted.
//!
//! The host sends them itself rather than through wasmtime-wasi-http's
//! default sender, which connects to whatever a name resolves to: here a
//! name is resolved only when the sandbox grants name lookups (through
//! `crate::lookup`, bounded), and only an address a rule grants is
//! connected to, so the address checked is the address used (no second
//! lookup a rebinding DNS server could answer otherwise). Plain HTTP only;
//! every wait ends at the run's deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Scheme;
use http_body_util::BodyExt;
use tokio::net::TcpStream;
use wasmtime_wasi::p2::{DynOutputStream, OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::deadline::Deadline;
use crate::limits::{Charge, HostMemory};
use crate::lookup::{LookupError, Lookups, without_lookup};
use crate::network::HttpGrant;

/// What wasmtime-wasi-http waits on for an outgoing request: the response,
/// and the connection's own work, which goes on while the body is read.
type Sent = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

/// The outgoing HTTP a store may make: where `grant` allows, each request
/// ending at the store's deadline at the latest, each connection counted
/// in the guest's host memory.
pub(crate) struct OutgoingHttp {
    grant: HttpGrant,
    deadline: Deadline,
    host_memory: HostMemory,
}

impl OutgoingHttp {
    /// The name lookups the grant allows.
    pub(crate) fn lookups(&self) -> &Lookups {
        &self.grant.lookups
    }

    pub(crate) fn new(grant: HttpGrant, deadline: Deadline, host_memory: HostMemory) -> Self {
        Self {
            grant,
            deadline,
            host_memory,
        }
    }
}

/// What one outgoing connection counts in the guest's host memory: hyper's
/// read buffer, capped at this.
const CONNECTION_BYTES: usize = 64 << 10;

impl WasiHttpHooks for OutgoingHttp {
    fn is_supported_scheme(&mut self, scheme: &Scheme) -> bool {
        *scheme == Scheme::HTTP
    }

    // The one scheme this host speaks (wasmtime-wasi-http would choose HTTPS).
    fn default_scheme(&mut self) -> Option<Scheme> {
        Some(Scheme::HTTP)
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_result: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let grant = self.grant.clone();
        let deadline = self.deadline.get();
        let Some(charge) = self.host_memory.charge(CONNECTION_BYTES) else {
            return Box::new(std::future::ready(Err(Error::ConnectionLimitReached)));
        };
        Box::new(send(grant, deadline, charge, request, options.unwrap_or_default()))
    }
}

/// Wasmtime's defaults for the timeouts a request's options leave unset.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

async fn send(
    grant: HttpGrant,
    deadline: Option<Instant>,
    charge: Charge,
    mut request: http::Request<WasiBody>,
    options: RequestOptions,
) -> Sent {
    // `timeout` from now, or sooner if the deadline comes first.
    let by = |timeout: Option<Duration>| {
        let end = after(timeout.unwrap_or(DEFAULT_TIMEOUT));
        deadline.map_or(end, |deadline| end.min(deadline.into()))
    };
    let uri = request.uri();
    if uri.scheme() != Some(&Scheme::HTTP) {
        return Err(Error::HttpProtocolError);
    }
    let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
    let port = authority.port_u16().unwrap_or(80);
    // An IPv6 literal keeps its brackets in the authority.
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();

    let stream = tokio::time::timeout_at(by(options.connect_timeout), connect(&grant, &host, port))
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(CONNECTION_BYTES)
        .handshake(TokioIo::new(stream))
        .await?;

    // The request line names only the path: the authority went into `Host`.
    let path = request.uri().path_and_query().map_or("/", |path| path.as_str());
    *request.uri_mut() = http::Uri::try_from(path).map_err(|_| Error::HttpRequestUriInvalid)?;

    // The connection must be driven while the response is awaited.
    let mut connection = Box::pin(connection);
    let mut connection_done = false;
    let response = tokio::time::timeout_at(by(options.first_byte_timeout), async {
        let response = sender.send_request(request);
        tokio::pin!(response);
        loop {
            tokio::select! {
                response = &mut response => break response.map_err(Error::from),
                ended = &mut connection, if !connection_done => {
                    connection_done = true;
                    ended?;
                }
            }
        }
    })
    .await
    .map_err(|_| Error::ConnectionReadTimeout)??;

    let between_bytes = options.between_bytes_timeout.unwrap_or(DEFAULT_TIMEOUT);
    let response = response.map(|body| {
        ResponseBody {
            body,
            between_bytes,
            idle: Box::pin(tokio::time::sleep_until(after(between_bytes))),
        }
        .boxed_unsync()
    });
    let io = async move {
        // The connection's buffers are the guest's until it ends.
        let _charge = charge;
        if !connection_done {
            connection.await?;
        }
        Ok(())
    };
    Ok((response, Box::new(io)))
}

/// `timeout` from now; a guest may ask for any length, so past the clock's
/// range it is the default instead.
fn after(timeout: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(timeout).unwrap_or(now + DEFAULT_TIMEOUT)
}

/// A TCP connection to `host:port` at an address the `grant` allows: a
/// name is resolved once, if lookups are granted, and only the addresses
/// it resolved to that are granted are tried. Nothing is looked up when no
/// address is granted; a name not looked up is refused as an address not
/// granted, whether or not it exists.
async fn connect(grant: &HttpGrant, host: &str, port: u16) -> Result<TcpStream, Error> {
    if grant.rules.is_empty() {
        return Err(Error::DestinationIpProhibited);
    }
    let addrs: Vec<SocketAddr> = match without_lookup(host) {
        Some(ips) => ips.into_iter().map(|ip| SocketAddr::new(ip, port)).collect(),
        None => match grant.lookups.lookup(host, port).await {
            Ok(addrs) => addrs,
            Err(LookupError::NotGranted) => return Err(Error::DestinationIpProhibited),
            Err(LookupError::Failed(error)) => {
                return Err(Error::DnsError {
                    rcode: Some(error.to_string()),
                    info_code: None,
                });
            }
        },
    };
    let mut failure = Error::DestinationIpProhibited;
    for addr in addrs
        .into_iter()
        .filter(|addr| grant.rules.iter().any(|rule| rule.matches(*addr)))
    {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(error) => failure = Error::Connect(error),
        }
    }
    Err(failure)
}

/// `stream` (an outgoing body's), with the data it buffers (up to two
/// writes of 1 MiB each, until the request is sent and hyper takes them)
/// counted in the guest's host memory: bodies a guest fills and never
/// sends are bounded by it.
pub(crate) fn counted(stream: DynOutputStream, host_memory: HostMemory) -> DynOutputStream {
    Box::new(CountedStream { stream, host_memory })
}

/// An output stream whose buffered bytes are charged to the guest until
/// whoever holds them frees them.
struct CountedStream {
    stream: DynOutputStream,
    host_memory: HostMemory,
}

impl CountedStream {
    fn exhausted(&self) -> StreamError {
        StreamError::LastOperationFailed(wasmtime::format_err!("the guest's host memory limit is reached"))
    }
}

/// Bytes charged until dropped.
struct Charged {
    bytes: Bytes,
    _charge: Charge,
}

impl AsRef<[u8]> for Charged {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CountedStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let Some(charge) = self.host_memory.charge(bytes.len()) else {
            return Err(self.exhausted());
        };
        self.stream.write(Bytes::from_owner(Charged { bytes, _charge: charge }))
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.stream.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        let permit = self.stream.check_write()?;
        match self.host_memory.room() {
            0 if permit > 0 => Err(self.exhausted()),
            room => Ok(permit.min(room)),
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CountedStream {
    async fn ready(&mut self) {
        self.stream.ready().await;
    }
}

/// A response body that fails when no data comes for `between_bytes`.
struct ResponseBody {
    body: hyper::body::Incoming,
    between_bytes: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = after(self.between_bytes);
                self.idle.as_mut().reset(next);
                Poll::Ready(frame.map(|frame| frame.map_err(Error::from)))
            }
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    fn grant(rules: &[&str]) -> HttpGrant {
        HttpGrant {
            rules: rules.iter().map(|rule| rule.parse().unwrap()).collect(),
            ..HttpGrant::default()
        }
    }

    fn connected(grant: &HttpGrant, host: &str, port: u16) -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(connect(grant, host, port))
            .map(drop)
            .map_err(|error| format!("{error:?}"))
    }

    /// An inner stream keeping what it was given, with room for `permit`
    /// bytes, ready when `ready` says.
    struct Kept {
        permit: usize,
        ready: bool,
        kept: Vec<Bytes>,
    }

    #[wasmtime_wasi::async_trait]
    impl OutputStream for Kept {
        fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
            self.kept.push(bytes);
            Ok(())
        }
        fn flush(&mut self) -> StreamResult<()> {
            Ok(())
        }
        fn check_write(&mut self) -> StreamResult<usize> {
            Ok(self.permit)
        }
    }

    #[wasmtime_wasi::async_trait]
    impl Pollable for Kept {
        async fn ready(&mut self) {
            if !self.ready {
                std::future::pending::<()>().await;
            }
        }
    }

    fn kept(permit: usize, ready: bool, room: usize) -> (CountedStream, HostMemory) {
        let host_memory = HostMemory::new(room);
        let inner = Kept {
            permit,
            ready,
            kept: Vec::new(),
        };
        let stream = CountedStream {
            stream: Box::new(inner),
            host_memory: host_memory.clone(),
        };
        (stream, host_memory)
    }

    #[test]
    fn a_body_stream_charges_what_it_buffers_until_it_is_freed() {
        let (mut stream, host_memory) = kept(1 << 20, true, 16);
        assert_eq!(stream.check_write().unwrap(), 16, "no more than the room");
        stream.write(Bytes::from_static(b"0123456789")).unwrap();
        assert_eq!(host_memory.room(), 6);
        assert!(stream.write(Bytes::from_static(b"0123456789")).is_err());
        assert_eq!(stream.check_write().unwrap(), 6);
        stream.write(Bytes::from_static(b"012345")).unwrap();
        assert!(
            stream.check_write().is_err(),
            "no room left for a writer that could write"
        );
        drop(stream);
        assert_eq!(host_memory.room(), 16, "given back with the buffers");
    }

    #[test]
    fn a_full_body_stream_waits_as_its_own_would() {
        // Nothing could be written anyway: no error for the spent room.
        let (mut full, _memory) = kept(0, false, 0);
        assert_eq!(full.check_write().unwrap(), 0);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let waited =
            runtime.block_on(async { tokio::time::timeout(std::time::Duration::from_millis(20), full.ready()).await });
        assert!(waited.is_err(), "ready only when the inner stream is");
        let (mut ready, _memory) = kept(1, true, 1);
        runtime.block_on(ready.ready());
    }

    /// A response body passes on what the connection's body says of its
    /// length and its end.
    #[test]
    fn a_response_body_tells_its_length_and_its_end_as_the_connections_does() {
        use std::io::Write;

        use http_body::Body as _;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
                .unwrap();
            stream
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let stream = TcpStream::connect(addr).await.unwrap();
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(connection);
            let request = http::Request::new(http_body_util::Empty::<Bytes>::new());
            let body = sender.send_request(request).await.unwrap().into_body();
            let mut body = ResponseBody {
                body,
                between_bytes: DEFAULT_TIMEOUT,
                idle: Box::pin(tokio::time::sleep_until(after(DEFAULT_TIMEOUT))),
            };
            assert_eq!(body.size_hint().exact(), Some(5));
            assert!(!body.is_end_stream(), "five bytes to come");
            let data = (&mut body).collect().await.unwrap().to_bytes();
            assert_eq!(data, "hello");
            assert!(body.is_end_stream(), "all read");
        });
        drop(server.join().unwrap());
    }

    #[test]
    fn plain_http_is_the_one_scheme_and_the_default() {
        let mut hooks = OutgoingHttp::new(grant(&[]), Deadline::default(), HostMemory::new(0));
        assert!(hooks.is_supported_scheme(&Scheme::HTTP));
        assert!(!hooks.is_supported_scheme(&Scheme::HTTPS));
        assert_eq!(hooks.default_scheme(), Some(Scheme::HTTP));
    }

    #[test]
    fn a_timeout_past_the_clocks_range_is_the_default() {
        let now = tokio::time::Instant::now();
        assert!(after(Duration::MAX) >= now + DEFAULT_TIMEOUT);
        assert!(after(Duration::from_secs(1)) >= now + Duration::from_secs(1));
    }

    #[test]
    fn only_granted_addresses_are_connected_to_and_names_need_the_lookup_grant() {
        // The kernel accepts from the backlog; nothing needs to answer.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let granted = grant(&[&format!("127.0.0.1:{port}")]);
        assert_eq!(connected(&granted, "127.0.0.1", port), Ok(()));
        assert_eq!(connected(&granted, "localhost", port), Ok(()), "loopback, no lookup");
        let prohibited = Err("DestinationIpProhibited".to_owned());
        assert_eq!(connected(&granted, "127.0.0.1", port + 1), prohibited);
        assert_eq!(connected(&granted, "127.0.0.2", port), prohibited);
        assert_eq!(connected(&grant(&[]), "127.0.0.1", port), prohibited);
        // Refused before any resolver sees it, existing or not.
        for name in ["localhost.localdomain", "exfil.attacker.example", "127.1"] {
            assert_eq!(connected(&granted, name, port), prohibited, "{name}");
        }
    }
}
