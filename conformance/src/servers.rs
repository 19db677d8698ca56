//! The HTTP servers a test's `servers` stand up for its guest's outgoing
//! requests, answering as the reference runner's `_EndpointRequestHandler`
//! (`test_suite_runner.py`) does: one request per connection, then
//! `Connection: close`; 404 for a route no endpoint has; `echo-body`,
//! `echo-headers` (`x-request-method`, `x-request-path`, each header as
//! `x-echo-NAME`, each trailer as `x-trailer-NAME`) and `static` responses,
//! whole with a `Content-Length` or chunked with trailers. A `closed`
//! server is a loopback address reserved and let go, so nothing listens.
//! The guest finds each address (`127.0.0.1:PORT`) in `HTTP_SERVER_NAME`.
//!
//! Written by hand, not served by hyper: a test observes what the guest's
//! client makes of these exact bytes, and hyper would change them (it
//! sends trailers only to a request with `TE: trailers`, skips an empty
//! chunk where the reference handler's ends the body, and lowercases the
//! endpoint's header names).

use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::spec::{Endpoint, EndpointBody, EndpointMode, Server, ServerKind};
use super::wire::{self, Fields};

/// How long a connection may wait for the rest of its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The methods the reference runner's handler answers (others get 501).
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// A test's servers, listening until dropped.
pub struct TestServers {
    env: Vec<(String, String)>,
    listening: Vec<Listening>,
}

struct Listening {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServers {
    /// Starts `servers`, each on a loopback port of its own.
    pub fn start(servers: &[Server]) -> io::Result<TestServers> {
        let mut started = TestServers {
            env: Vec::new(),
            listening: Vec::new(),
        };
        for server in servers {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            match &server.kind {
                // Dropping the listener frees the port: connections are refused.
                ServerKind::Closed => drop(listener),
                ServerKind::Listening(endpoints) => started.listening.push(listen(listener, endpoints.clone())?),
            }
            started.env.push((server.env_var(), addr.to_string()));
        }
        Ok(started)
    }

    /// `HTTP_SERVER_NAME` and the address, for each server.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }
}

impl Drop for TestServers {
    /// Stops accepting and waits for each server's accepting thread; a
    /// connection being answered finishes on its own thread.
    fn drop(&mut self) {
        for server in &mut self.listening {
            server.stop.store(true, Ordering::SeqCst);
            // Wakes the accepting thread, which then sees `stop`.
            let _ = TcpStream::connect(server.addr);
            if let Some(thread) = server.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

fn listen(listener: TcpListener, endpoints: Vec<Endpoint>) -> io::Result<Listening> {
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let endpoints = Arc::new(endpoints);
    let thread = thread::Builder::new().name("conformance-http".into()).spawn(move || {
        for stream in listener.incoming() {
            if stopped.load(Ordering::SeqCst) {
                return;
            }
            let (Ok(stream), endpoints) = (stream, endpoints.clone()) else {
                continue;
            };
            // One thread per connection, as Python's ThreadingHTTPServer;
            // a client that goes away only ends its own.
            let _ = thread::Builder::new()
                .name("conformance-http".into())
                .spawn(move || answer(stream, &endpoints));
        }
    })?;
    Ok(Listening {
        addr,
        stop,
        thread: Some(thread),
    })
}

/// Reads one request from `stream` and answers it. Errors only end the
/// connection: the guest sees it closed.
fn answer(stream: TcpStream, endpoints: &[Endpoint]) -> io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    let Some(head) = wire::read_head(&mut reader)? else {
        return Ok(());
    };
    let reply = match head.start.split(' ').collect::<Vec<_>>()[..] {
        [method, target, version] if version.starts_with("HTTP/") => {
            if !METHODS.contains(&method) {
                Reply::whole(method, 501, Vec::new(), Vec::new())
            } else {
                if wire::field(&head.fields, "expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) {
                    out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
                }
                let framing = wire::request_framing(&head.fields)?;
                let (body, trailers) = wire::read_body(&mut reader, framing)?;
                let request = Received {
                    method,
                    target,
                    fields: &head.fields,
                    body,
                    trailers,
                };
                route(endpoints, request)
            }
        }
        _ => Reply::whole("GET", 400, Vec::new(), Vec::new()),
    };
    out.write_all(&reply.bytes())?;
    out.flush()
}

/// A request as the handler received it.
struct Received<'a> {
    method: &'a str,
    target: &'a str,
    fields: &'a Fields,
    body: Vec<u8>,
    trailers: Fields,
}

/// The answer the endpoint for the request's method and target gives: the
/// last endpoint written for them, as the reference runner's route table
/// keeps it.
fn route(endpoints: &[Endpoint], request: Received<'_>) -> Reply {
    let method = request.method;
    let endpoint = endpoints
        .iter()
        .rev()
        .find(|e| e.method == method && e.path == request.target);
    let Some(endpoint) = endpoint else {
        return Reply::whole(method, 404, Vec::new(), Vec::new());
    };
    match &endpoint.mode {
        EndpointMode::EchoBody => Reply::whole(method, 200, Vec::new(), request.body),
        EndpointMode::EchoHeaders => Reply::whole(method, 200, echoed_fields(&request), Vec::new()),
        EndpointMode::Static(response) => match &response.body {
            EndpointBody::Whole(body) => Reply::whole(
                method,
                response.status,
                response.headers.clone(),
                body.as_bytes().to_vec(),
            ),
            EndpointBody::Chunked { chunks, trailers } => Reply {
                head_only: method == "HEAD",
                status: response.status,
                fields: response.headers.clone(),
                body: ReplyBody::Chunked {
                    chunks: chunks.clone(),
                    trailers: trailers.clone(),
                },
            },
        },
    }
}

/// The request line, each header (every value of each name, names
/// lowercased, in the order each name first came) and each trailer, as
/// response headers.
fn echoed_fields(request: &Received<'_>) -> Fields {
    let mut echoed = vec![
        ("x-request-method".to_owned(), request.method.to_owned()),
        ("x-request-path".to_owned(), request.target.to_owned()),
    ];
    let mut names: Vec<String> = Vec::new();
    for (name, _) in request.fields {
        let name = name.to_ascii_lowercase();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    for name in names {
        for (_, value) in request.fields.iter().filter(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            echoed.push((format!("x-echo-{name}"), value.clone()));
        }
    }
    // Later trailers of one name replace earlier ones in place, as in a dict.
    let mut trailers: Fields = Vec::new();
    for (name, value) in &request.trailers {
        match trailers.iter_mut().find(|(n, _)| n == name) {
            Some(kept) => kept.1 = value.clone(),
            None => trailers.push((name.clone(), value.clone())),
        }
    }
    echoed.extend(
        trailers
            .into_iter()
            .map(|(name, value)| (format!("x-trailer-{name}"), value)),
    );
    echoed
}

/// A response, written as the reference runner's handler writes it.
struct Reply {
    /// An answer to HEAD: the head alone.
    head_only: bool,
    status: u16,
    fields: Fields,
    body: ReplyBody,
}

enum ReplyBody {
    Whole(Vec<u8>),
    Chunked { chunks: Vec<String>, trailers: Fields },
}

impl Reply {
    fn whole(method: &str, status: u16, fields: Fields, body: Vec<u8>) -> Reply {
        Reply {
            head_only: method == "HEAD",
            status,
            fields,
            body: ReplyBody::Whole(body),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} \r\n", self.status);
        for (name, value) in &self.fields {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        let mut body = Vec::new();
        match &self.body {
            ReplyBody::Whole(bytes) => {
                out.push_str(&format!("Content-Length: {}\r\n", bytes.len()));
                body.extend_from_slice(bytes);
            }
            ReplyBody::Chunked { chunks, trailers } => {
                out.push_str("Transfer-Encoding: chunked\r\n");
                if !trailers.is_empty() {
                    let names: Vec<&str> = trailers.iter().map(|(name, _)| name.as_str()).collect();
                    out.push_str(&format!("Trailer: {}\r\n", names.join(", ")));
                }
                // Each chunk as given: an empty one ends the body early, as there.
                for chunk in chunks {
                    body.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
                }
                body.extend_from_slice(b"0\r\n");
                for (name, value) in trailers {
                    body.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
                }
                body.extend_from_slice(b"\r\n");
            }
        }
        out.push_str("Connection: close\r\n\r\n");
        let mut bytes = out.into_bytes();
        if !self.head_only {
            bytes.extend_from_slice(&body);
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::spec;

    fn start(servers: &str) -> TestServers {
        let spec = spec::parse(&format!(r#"{{"servers": {servers}}}"#)).unwrap().spec;
        TestServers::start(&spec.servers).unwrap()
    }

    /// Sends `request` as it is and returns the whole answer.
    fn exchange(addr: &str, request: &str) -> String {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn each_endpoint_answers_on_the_wire_as_the_reference_runners_handler() {
        let servers = start(
            r#"[{"name": "main", "endpoints": [
                {"path": "/static", "response": {"status": 201, "headers": {"x-a": "1"}, "body": "hi"}},
                {"method": "HEAD", "path": "/static", "response": "hidden"},
                {"method": "POST", "path": "/echo", "mode": "echo-body"},
                {"method": "PUT", "path": "/headers?q=1", "mode": "echo-headers"},
                {"path": "/chunked", "response": {"chunks": ["one", "three"], "trailers": {"x-sum": "8", "x-n": "2"}}},
                {"path": "/twice", "response": "first"},
                {"path": "/twice", "response": "second"}]},
              {"name": "dead", "kind": "closed"}]"#,
        );
        let env = servers.env();
        assert_eq!(env[0].0, "HTTP_SERVER_MAIN");
        assert_eq!(env[1].0, "HTTP_SERVER_DEAD");
        let main = env[0].1.as_str();
        assert!(main.starts_with("127.0.0.1:"), "{main}");
        let get = |path: &str| exchange(main, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));

        assert_eq!(
            get("/static"),
            "HTTP/1.1 201 \r\nx-a: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        );
        assert_eq!(
            exchange(main, "HEAD /static HTTP/1.1\r\n\r\n"),
            "HTTP/1.1 200 \r\nContent-Length: 6\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(
            get("/nowhere"),
            "HTTP/1.1 404 \r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(
            get("/twice"),
            "HTTP/1.1 200 \r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecond"
        );
        assert_eq!(
            get("/chunked"),
            "HTTP/1.1 200 \r\nTransfer-Encoding: chunked\r\nTrailer: x-sum, x-n\r\nConnection: close\r\n\r\n\
             3\r\none\r\n5\r\nthree\r\n0\r\nx-sum: 8\r\nx-n: 2\r\n\r\n"
        );
        assert_eq!(
            exchange(
                main,
                "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n"
            ),
            "HTTP/1.1 200 \r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
        );
        assert_eq!(
            exchange(
                main,
                "PUT /headers?q=1 HTTP/1.1\r\nX-Dup: a\r\nHost: h\r\nx-dup: b\r\nTransfer-Encoding: chunked\r\n\r\n\
                 0\r\nX-Check: 7\r\n\r\n"
            ),
            "HTTP/1.1 200 \r\nx-request-method: PUT\r\nx-request-path: /headers?q=1\r\n\
             x-echo-x-dup: a\r\nx-echo-x-dup: b\r\nx-echo-host: h\r\nx-echo-transfer-encoding: chunked\r\n\
             x-trailer-x-check: 7\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(
            exchange(main, "FETCH / HTTP/1.1\r\n\r\n"),
            "HTTP/1.1 501 \r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(
            exchange(main, "nonsense\r\n\r\n"),
            "HTTP/1.1 400 \r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let refused = TcpStream::connect(&env[1].1).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn servers_stop_listening_when_dropped() {
        let servers = start(r#"[{"name": "a"}]"#);
        let addr = servers.env()[0].1.clone();
        assert!(exchange(&addr, "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        drop(servers);
        assert!(TcpStream::connect(&addr).is_err());
    }
}
