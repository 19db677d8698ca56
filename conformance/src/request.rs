//! A `request` operation: one HTTP/1.1 request to the guest's service,
//! judged as the reference runner's `do_request` judges the response of
//! Python's `requests`: the status, each expected header (any case; the
//! values of a repeated one joined by `, `) equal, the body's text equal,
//! and the whole exchange done within 5 s (`requests` allows 5 s for each
//! socket operation, which lets a server that trickles its bytes hold the
//! runner for ever) and within the test's own `--timeout`. The client is
//! hyper's, as in the host; the response's head and body are bounded.

use std::error::Error;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;

use super::check::compare;
use super::loopback;
use super::spec::Request;

/// As `requests.request(..., timeout=5)`, for the whole exchange.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The most a response's head (status line and fields) may take.
const MAX_HEAD: usize = 64 * 1024;
/// The most a response's body may take.
const MAX_BODY: usize = 16 << 20;

/// The time a request may take: [`TIMEOUT`], and no more than what is
/// left before `deadline` (the test's `--timeout`).
pub fn limit(deadline: Option<Instant>) -> Duration {
    deadline.map_or(TIMEOUT, |deadline| {
        TIMEOUT.min(deadline.saturating_duration_since(Instant::now()))
    })
}

/// Sends `request` to the service at `server` (`http://HOST:PORT/` on
/// loopback, as `wasmtime serve` prints it) and says how the response
/// differs from the one expected, if it does; the whole exchange ends
/// within `timeout` ([`limit`]).
pub fn judge(server: &str, request: &Request, timeout: Duration) -> Option<String> {
    let failure = match exchange(server, request, timeout) {
        Err(Failed::Timeout) => {
            // Whole milliseconds: what is left of a guest's timeout has many digits.
            let shown = Duration::from_millis(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
            format!("timed out waiting for the response ({shown:?})")
        }
        Err(Failed::Other(why)) => format!("failed to make the request: {why}"),
        Ok(response) => differences(request, &response)?,
    };
    Some(format!(
        "request {} {}: {failure}",
        request.method.escape_debug(),
        request.path.escape_debug()
    ))
}

/// A response as received.
struct Response {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

enum Failed {
    Timeout,
    Other(String),
}

/// An error and its causes, on one line.
fn other(error: impl Error) -> Failed {
    Failed::Other(host::text::with_causes(&error))
}

/// The URL `requests` is given, as the reference runner joins it: the
/// server's URL without its trailing `/`, then the path (given a leading
/// `/` when it has none). Returns the authority and the request target.
fn target(server: &str, path: &str) -> Result<(String, String), Failed> {
    let rest = server
        .strip_prefix("http://")
        .ok_or_else(|| Failed::Other(format!("{server:?} is not an http:// URL")))?;
    let base = rest.trim_end_matches('/');
    let url = match path.starts_with('/') {
        true => format!("{base}{path}"),
        false => format!("{base}/{path}"),
    };
    let (authority, target) = match url.find('/') {
        Some(at) => (url[..at].to_owned(), url[at..].to_owned()),
        None => (url, "/".to_owned()),
    };
    Ok((authority, target))
}

/// The exchange, refused before any connection when `server` is off
/// loopback or a name, and ended as a whole when `timeout` runs out.
fn exchange(server: &str, request: &Request, timeout: Duration) -> Result<Response, Failed> {
    let (authority, target) = target(server, &request.path)?;
    let addr = loopback::address(&authority, Some(80)).map_err(Failed::Other)?;
    let message = message(request, &authority, &target)?;
    if timeout.is_zero() {
        return Err(Failed::Timeout);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(other)?;
    // One deadline for connecting, sending, the head and the whole body.
    runtime.block_on(async {
        tokio::time::timeout(timeout, send(addr, message))
            .await
            .unwrap_or(Err(Failed::Timeout))
    })
}

/// The request `requests` sends: `Host`, `Accept: */*`, `Connection:
/// close`, a length for a body (and 0 for no body unless GET or HEAD),
/// each replaced by the specification's header of that name (any case).
fn message(request: &Request, authority: &str, target: &str) -> Result<hyper::Request<Full<Bytes>>, Failed> {
    let mut builder = hyper::Request::builder()
        .method(request.method.as_str())
        .uri(target)
        .header(header::HOST, authority)
        .header(header::ACCEPT, "*/*")
        .header(header::CONNECTION, "close");
    if !request.body.is_empty() || !["GET", "HEAD"].contains(&request.method.as_str()) {
        builder = builder.header(header::CONTENT_LENGTH, request.body.len());
    }
    let mut message = builder
        .body(Full::new(Bytes::from(request.body.clone())))
        .map_err(other)?;
    for (name, value) in &request.headers {
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| Failed::Other(format!("header {name:?}: {e}")))?;
        let value = HeaderValue::from_str(value).map_err(|e| Failed::Other(format!("header {name}: {e}")))?;
        message.headers_mut().insert(name, value);
    }
    Ok(message)
}

/// Sends `message` on a new connection to `addr`; the response, its
/// head and body within their bounds.
async fn send(addr: SocketAddr, message: hyper::Request<Full<Bytes>>) -> Result<Response, Failed> {
    let stream = TcpStream::connect(addr).await.map_err(other)?;
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .max_header_size(MAX_HEAD)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(other)?;
    // Reads and writes the connection; its errors come back through
    // the response or its body.
    tokio::spawn(connection);
    let (head, body) = sender.send_request(message).await.map_err(other)?.into_parts();
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|error| match error.is::<LengthLimitError>() {
            true => Failed::Other("a response body over 16 MiB".into()),
            false => Failed::Other(host::text::with_causes(&*error)),
        })?;
    Ok(Response {
        status: head.status.as_u16(),
        headers: head.headers,
        body: body.to_bytes(),
    })
}

/// The first way `response` differs from what `request` expects.
fn differences(request: &Request, response: &Response) -> Option<String> {
    let expected = &request.response;
    if i64::from(response.status) != expected.status {
        return Some(format!("expected status {}, got {}", expected.status, response.status));
    }
    for (name, value) in &expected.headers {
        let values: Vec<_> = response
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()))
            .collect();
        if values.is_empty() {
            return Some(format!("the response has no header {name}"));
        }
        let actual = values.join(", ");
        if actual != *value {
            return Some(format!("expected response header {name}={value}, got {actual}"));
        }
    }
    let content_type = response.headers.get(header::CONTENT_TYPE);
    let content_type = content_type.map(|value| String::from_utf8_lossy(value.as_bytes()));
    let text = text(&response.body, content_type.as_deref());
    compare(&expected.body, &text).map(|difference| format!("body {difference}"))
}

/// The body as text, as `requests`' `Response.text` decodes it: in the
/// `charset` of its `Content-Type`, else ISO-8859-1 for `text/*`, else UTF-8.
fn text(body: &[u8], content_type: Option<&str>) -> String {
    let content_type = content_type.unwrap_or_default().to_ascii_lowercase();
    let charset = content_type
        .split(';')
        .skip(1)
        .find_map(|param| param.trim().strip_prefix("charset="))
        .map(|charset| charset.trim_matches(['"', '\'']));
    let latin1 = match charset {
        Some(charset) => ["iso-8859-1", "latin-1", "latin1"].contains(&charset),
        None => content_type.contains("text"),
    };
    match latin1 {
        true => body.iter().map(|&b| char::from(b)).collect(),
        false => String::from_utf8_lossy(body).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;
    use crate::servers::TestServers;
    use crate::spec::{self, Operation};

    /// The requests of a specification's operations.
    fn requests(operations: &str) -> Vec<Request> {
        let text = format!(r#"{{"operations": [{{"type": "run"}}, {operations}, {{"type": "wait"}}]}}"#);
        spec::parse(&text)
            .unwrap()
            .spec
            .operations
            .into_iter()
            .filter_map(|op| match op {
                Operation::Request(request) => Some(*request),
                _ => None,
            })
            .collect()
    }

    /// A service to judge: the runner's own test server.
    fn service() -> (TestServers, String) {
        let servers = r#"[{"name": "s", "endpoints": [
            {"path": "/ok", "response": {"headers": {"content-type": "text/plain", "x-v": "1"}, "body": "hey\n"}},
            {"method": "POST", "path": "/echo", "mode": "echo-body"},
            {"path": "/headers", "mode": "echo-headers"}]}]"#;
        let spec = spec::parse(&format!(r#"{{"servers": {servers}}}"#)).unwrap().spec;
        let servers = TestServers::start(&spec.servers).unwrap();
        let url = format!("http://{}/", servers.env()[0].1);
        (servers, url)
    }

    #[test]
    fn a_response_as_expected_passes_and_each_difference_fails() {
        let (_servers, url) = service();
        let cases = requests(
            r#"{"type": "request", "path": "/ok", "response": {"headers": {"Content-Type": "text/plain"}, "body": "hey\n"}},
               {"type": "request", "method": "POST", "path": "echo", "body": "round trip", "response": {"body": "round trip"}},
               {"type": "request", "path": "/headers", "headers": {"x-mine": "1", "accept": "text/html"},
                "response": {"headers": {"x-echo-x-mine": "1", "x-echo-accept": "text/html", "x-request-method": "GET"}}},
               {"type": "request", "path": "/ok", "response": {"status": 201}},
               {"type": "request", "path": "/ok", "response": {"headers": {"x-missing": "1"}, "body": "hey\n"}},
               {"type": "request", "path": "/ok", "response": {"headers": {"x-v": "2"}, "body": "hey\n"}},
               {"type": "request", "path": "/ok", "response": {"body": "hay\n"}},
               {"type": "request", "path": "/nowhere", "response": {"status": 404}}"#,
        );
        let verdicts: Vec<Option<String>> = cases.iter().map(|r| judge(&url, r, TIMEOUT)).collect();
        assert_eq!(
            verdicts,
            [
                None,
                None,
                None,
                Some("request GET /ok: expected status 201, got 200".into()),
                Some("request GET /ok: the response has no header x-missing".into()),
                Some("request GET /ok: expected response header x-v=2, got 1".into()),
                Some(r#"request GET /ok: body differs at byte 1: got "hey\n", expected "hay\n""#.into()),
                None,
            ]
        );
    }

    #[test]
    fn a_service_that_never_answers_or_is_not_there_fails_the_request() {
        let request = &requests(r#"{"type": "request"}"#)[0];
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", silent.local_addr().unwrap());
        let started = std::time::Instant::now();
        let verdict = judge(&url, request, Duration::from_millis(200)).unwrap();
        assert_eq!(verdict, "request GET /: timed out waiting for the response (200ms)");
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(silent);
        let verdict = judge(&url, request, TIMEOUT).unwrap();
        assert!(
            verdict.starts_with("request GET /: failed to make the request: "),
            "{verdict}"
        );
    }

    /// A server on loopback whose first connection `answer` writes to,
    /// whatever the request; its URL.
    fn answering(answer: impl FnOnce(&mut std::net::TcpStream) -> std::io::Result<()> + Send + 'static) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut connection, _) = listener.accept().unwrap();
            // The answer follows the request's head, as a server's does: an
            // answer arriving first is a message hyper's client refuses.
            let mut head = Vec::new();
            let mut byte = [0; 1];
            while !head.ends_with(b"\r\n\r\n") && connection.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            // The client going away ends the answer early. Else the answer
            // ends, and the rest is read until the client closes: a socket
            // closed with unread bytes resets the connection.
            if answer(&mut connection).is_ok() {
                let _ = connection.shutdown(std::net::Shutdown::Write);
                let _ = std::io::copy(&mut connection, &mut std::io::sink());
            }
        });
        url
    }

    #[test]
    fn a_server_that_trickles_its_response_cannot_hold_the_request_past_its_limit() {
        let request = &requests(r#"{"type": "request"}"#)[0];
        let url = answering(|connection| {
            // A whole, valid response, one byte every 50 ms: each read waits
            // far less than the limit, the exchange far more.
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" {
                std::thread::sleep(Duration::from_millis(50));
                connection.write_all(&[*byte])?;
            }
            Ok(())
        });
        let verdict = judge(&url, request, Duration::from_millis(300));
        assert_eq!(
            verdict.as_deref(),
            Some("request GET /: timed out waiting for the response (300ms)")
        );
    }

    #[test]
    fn a_response_head_or_body_over_its_bound_fails_the_request() {
        let request = &requests(r#"{"type": "request"}"#)[0];
        let big_head = answering(|connection| {
            let field = "a".repeat(MAX_HEAD);
            write!(
                connection,
                "HTTP/1.1 200 OK\r\nX-Big: {field}\r\nContent-Length: 0\r\n\r\n"
            )
        });
        let verdict = judge(&big_head, request, TIMEOUT).unwrap();
        assert!(verdict.contains("message head is too large"), "{verdict}");

        let big_body = answering(|connection| {
            write!(
                connection,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                MAX_BODY + 1
            )?;
            let chunk = vec![b'a'; 1 << 20];
            for _ in 0..16 {
                connection.write_all(&chunk)?;
            }
            connection.write_all(b"a")
        });
        let verdict = judge(&big_body, request, TIMEOUT);
        assert_eq!(
            verdict.as_deref(),
            Some("request GET /: failed to make the request: a response body over 16 MiB")
        );
    }

    #[test]
    fn a_service_off_loopback_or_named_is_refused_without_a_connection() {
        let request = &requests(r#"{"type": "request"}"#)[0];
        for (url, why) in [
            (
                "http://169.254.169.254/latest/",
                "refused 169.254.169.254: not a loopback address",
            ),
            (
                "http://metadata.internal:80/",
                "refused \"metadata.internal\": the runner resolves no name",
            ),
        ] {
            let verdict = judge(url, request, TIMEOUT).unwrap();
            assert!(verdict.contains(why), "{verdict}");
        }
    }

    #[test]
    fn repeated_headers_are_joined_and_text_is_decoded_as_requests_does() {
        let request = &requests(r#"{"type": "request", "response": {"headers": {"x-r": "a, b"}}}"#)[0];
        let mut headers = HeaderMap::new();
        headers.append("X-R", HeaderValue::from_static("a"));
        headers.append("x-r", HeaderValue::from_static("b"));
        let response = Response {
            status: 200,
            headers,
            body: Bytes::new(),
        };
        assert_eq!(differences(request, &response), None);
        assert_eq!(text(b"caf\xc3\xa9", Some("text/plain")), "cafÃ©");
        assert_eq!(text(b"caf\xc3\xa9", Some("text/plain; charset=UTF-8")), "café");
        assert_eq!(text(b"caf\xc3\xa9", Some("application/json")), "café");
        assert_eq!(text(b"caf\xe9", Some("application/x; charset=\"latin1\"")), "café");
    }

    #[test]
    fn the_url_is_joined_as_the_reference_runner_joins_it() {
        let joined = |server: &str, path: &str| target(server, path).ok();
        assert_eq!(joined("http://h:1/", "x"), Some(("h:1".into(), "/x".into())));
        assert_eq!(joined("http://h:1", "/a?b=1"), Some(("h:1".into(), "/a?b=1".into())));
        assert_eq!(joined("http://h:1/pre/", "/a"), Some(("h:1".into(), "/pre/a".into())));
        assert!(joined("https://h/", "/").is_none());
    }
}
