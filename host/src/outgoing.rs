//! Outgoing HTTP requests of a component (`wasi:http/client` of WASI 0.3,
//! `wasi:http/outgoing-handler` of WASI 0.2): refused unless granted, and
//! then sent only to the addresses granted.
//!
//! The host sends them itself rather than through wasmtime-wasi-http's
//! default sender, which connects to whatever a name resolves to: here the
//! name is resolved first, and only an address a rule grants is connected
//! to, so the address checked is the address used (no second lookup a
//! rebinding DNS server could answer otherwise). Plain HTTP only; every
//! wait ends at the run's deadline.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Scheme;
use http_body_util::BodyExt;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::deadline::Deadline;
use crate::network::AddrRule;

/// What wasmtime-wasi-http waits on for an outgoing request: the response,
/// and the connection's own work, which goes on while the body is read.
type Sent = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

/// The outgoing HTTP a store may make: to the addresses `rules` grant, each
/// request ending at the store's deadline at the latest.
pub(crate) struct OutgoingHttp {
    rules: Arc<[AddrRule]>,
    deadline: Deadline,
}

impl OutgoingHttp {
    pub(crate) fn new(rules: Arc<[AddrRule]>, deadline: Deadline) -> Self {
        Self { rules, deadline }
    }
}

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
        let rules = self.rules.clone();
        let deadline = self.deadline.get();
        Box::new(send(rules, deadline, request, options.unwrap_or_default()))
    }
}

/// Wasmtime's defaults for the timeouts a request's options leave unset.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

async fn send(
    rules: Arc<[AddrRule]>,
    deadline: Option<Instant>,
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

    let stream = tokio::time::timeout_at(by(options.connect_timeout), connect(&rules, &host, port))
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;

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

/// A TCP connection to `host:port` at an address the `rules` grant: a
/// name is resolved once, and only the addresses it resolved to that are
/// granted are tried. Nothing is looked up when nothing is granted.
async fn connect(rules: &[AddrRule], host: &str, port: u16) -> Result<TcpStream, Error> {
    if rules.is_empty() {
        return Err(Error::DestinationIpProhibited);
    }
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| Error::DnsError {
                rcode: Some(e.to_string()),
                info_code: None,
            })?
            .collect(),
    };
    let mut failure = Error::DestinationIpProhibited;
    for addr in addrs
        .into_iter()
        .filter(|addr| rules.iter().any(|rule| rule.matches(*addr)))
    {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(error) => failure = Error::Connect(error),
        }
    }
    Err(failure)
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
