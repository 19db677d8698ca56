//! A `request` operation: one HTTP/1.1 request to the guest's service,
//! judged as the reference runner's `do_request` judges the response of
//! Python's `requests`: the status, each expected header (any case; the
//! values of a repeated one joined by `, `) equal, the body's text equal,
//! and the whole exchange done within 5 s (`requests` allows 5 s for each
//! socket operation, which lets a server that trickles its bytes hold the
//! runner for ever) and within the test's own `--timeout`.

use std::io::{self, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::check::compare;
use super::loopback;
use super::spec::Request;
use super::wire::{self, Fields};

/// As `requests.request(..., timeout=5)`, for the whole exchange.
pub const TIMEOUT: Duration = Duration::from_secs(5);

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
    fields: Fields,
    body: Vec<u8>,
}

enum Failed {
    Timeout,
    Other(String),
}

impl From<io::Error> for Failed {
    fn from(error: io::Error) -> Failed {
        match error.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Failed::Timeout,
            _ => Failed::Other(error.to_string()),
        }
    }
}

/// A connection whose every read and write ends at one deadline.
struct Deadlined {
    stream: TcpStream,
    deadline: Instant,
}

impl Deadlined {
    /// What is left before the deadline; `TimedOut` once it has passed.
    fn left(&self) -> io::Result<Duration> {
        Some(self.deadline.saturating_duration_since(Instant::now()))
            .filter(|left| !left.is_zero())
            .ok_or_else(|| io::ErrorKind::TimedOut.into())
    }
}

impl Read for Deadlined {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.stream.set_read_timeout(Some(self.left()?))?;
        self.stream.read(buffer)
    }
}

impl Write for Deadlined {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.stream.set_write_timeout(Some(self.left()?))?;
        self.stream.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
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

fn exchange(server: &str, request: &Request, timeout: Duration) -> Result<Response, Failed> {
    let deadline = Instant::now() + timeout;
    let (authority, target) = target(server, &request.path)?;
    let addr = loopback::address(&authority, Some(80)).map_err(Failed::Other)?;
    if timeout.is_zero() {
        return Err(Failed::Timeout);
    }
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    let mut stream = Deadlined { stream, deadline };

    // The headers `requests` sends, which the specification's replace (any case).
    let mut fields: Fields = vec![
        ("Host".into(), authority),
        ("Accept".into(), "*/*".into()),
        ("Connection".into(), "close".into()),
    ];
    // `requests` sends a length for a body, and 0 for no body unless GET or HEAD.
    if !request.body.is_empty() || !["GET", "HEAD"].contains(&request.method.as_str()) {
        fields.push(("Content-Length".into(), request.body.len().to_string()));
    }
    for (name, value) in &request.headers {
        fields.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        fields.push((name.clone(), value.clone()));
    }
    let mut message = format!("{} {target} HTTP/1.1\r\n", request.method);
    for (name, value) in &fields {
        message.push_str(&format!("{name}: {value}\r\n"));
    }
    message.push_str("\r\n");
    message.push_str(&request.body);
    stream.write_all(message.as_bytes())?;

    let mut reader = BufReader::new(stream);
    let head = wire::read_head(&mut reader)?.ok_or_else(|| Failed::Other("the connection closed".into()))?;
    let status = head
        .start
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .filter(|_| head.start.starts_with("HTTP/"))
        .ok_or_else(|| Failed::Other(format!("not an HTTP status line: {:?}", head.start)))?;
    let framing = wire::response_framing(&request.method, status, &head.fields)?;
    let (body, _trailers) = wire::read_body(&mut reader, framing)?;
    Ok(Response {
        status,
        fields: head.fields,
        body,
    })
}

/// The first way `response` differs from what `request` expects.
fn differences(request: &Request, response: &Response) -> Option<String> {
    let expected = &request.response;
    if i64::from(response.status) != expected.status {
        return Some(format!("expected status {}, got {}", expected.status, response.status));
    }
    for (name, value) in &expected.headers {
        let values: Vec<&str> = response
            .fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        if values.is_empty() {
            return Some(format!("the response has no header {name}"));
        }
        let actual = values.join(", ");
        if actual != *value {
            return Some(format!("expected response header {name}={value}, got {actual}"));
        }
    }
    let text = text(&response.body, wire::field(&response.fields, "content-type"));
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

    #[test]
    fn a_server_that_trickles_its_response_cannot_hold_the_request_past_its_limit() {
        let request = &requests(r#"{"type": "request"}"#)[0];
        let trickler = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", trickler.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut connection, _) = trickler.accept().unwrap();
            // A whole, valid response, one byte every 50 ms: each read waits
            // far less than the limit, the exchange far more.
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" {
                std::thread::sleep(Duration::from_millis(50));
                if connection.write_all(&[*byte]).is_err() {
                    return;
                }
            }
        });
        let verdict = judge(&url, request, Duration::from_millis(300));
        assert_eq!(
            verdict.as_deref(),
            Some("request GET /: timed out waiting for the response (300ms)")
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
        let fields = |list: &[(&str, &str)]| list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        let response = Response {
            status: 200,
            fields: fields(&[("X-R", "a"), ("x-r", "b")]),
            body: Vec::new(),
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
