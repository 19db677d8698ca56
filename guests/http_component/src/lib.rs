//! An HTTP service (WASI 0.2's `wasi:http/proxy` world) for the host's
//! serving tests, one behaviour per path:
//!
//! - `/`: 200, `x-guest: http_component`, body `METHOD PATH`.
//! - `/echo`: 200, the request's body back.
//! - `/env/NAME`: 200 and the variable NAME's value, or 404 without it.
//! - `/print`: writes `to stdout` and `to stderr` to those streams; 200.
//! - `/fetch`: a GET of `http://$UPSTREAM/upstream` (an outgoing request);
//!   its status and body relayed, or 502 and the error code's name.
//! - `/sleep`: waits an hour before answering.
//! - `/linger`: answers 200 at once, then writes `lingering` to stderr,
//!   holds 4 MiB and waits an hour.
//! - `/count`: 200 and how many requests this instance has served, this
//!   one included.
//! - `/loop`: computes forever.
//! - `/trap`: panics.
//!
//! Anything else: 404.

use std::io::{Read, Write};

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};

struct Service;

wasi::http::proxy::export!(Service);

impl Guest for Service {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let (status, body) = match path.as_str() {
            "/" => (200, format!("{} {path}", method_name(&request.method())).into_bytes()),
            "/echo" => (200, read_body(request.consume().expect("the request's body"))),
            "/print" => {
                println!("to stdout");
                eprintln!("to stderr");
                (200, Vec::new())
            }
            "/fetch" => fetch(),
            "/sleep" => {
                wasi::clocks::monotonic_clock::subscribe_duration(3_600_000_000_000).block();
                (200, b"woke up".to_vec())
            }
            "/linger" => {
                respond(out, 200, b"answered");
                eprintln!("lingering");
                let held = std::hint::black_box(vec![1u8; 4 << 20]);
                wasi::clocks::monotonic_clock::subscribe_duration(3_600_000_000_000).block();
                drop(held);
                return;
            }
            "/count" => {
                static SERVED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let served = SERVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                (200, served.to_string().into_bytes())
            }
            "/loop" => guest_support::spin(),
            "/trap" => panic!("http_component trapped on purpose"),
            _ => match path.strip_prefix("/env/").map(std::env::var) {
                Some(Ok(value)) => (200, value.into_bytes()),
                _ => (404, Vec::new()),
            },
        };
        respond(out, status, &body);
    }
}

fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::new();
    headers
        .append("x-guest", b"http_component")
        .expect("a header the host allows");
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).expect("a valid status");
    let outgoing = response.body().expect("the response's body");
    ResponseOutparam::set(out, Ok(response));
    let mut stream = outgoing.write().expect("the body's stream");
    stream.write_all(body).expect("writing the body");
    drop(stream);
    OutgoingBody::finish(outgoing, None).expect("finishing the body");
}

fn read_body(body: IncomingBody) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut stream = body.stream().expect("the body's stream");
    stream.read_to_end(&mut bytes).expect("reading the body");
    bytes
}

/// GET `http://$UPSTREAM/upstream`: its status and body, or 502 and why not.
fn fetch() -> (u16, Vec<u8>) {
    let upstream = std::env::var("UPSTREAM").expect("UPSTREAM names the server to fetch from");
    let request = OutgoingRequest::new(Fields::new());
    request.set_scheme(Some(&Scheme::Http)).unwrap();
    request.set_authority(Some(&upstream)).unwrap();
    request.set_path_with_query(Some("/upstream")).unwrap();
    match send(request) {
        Ok((status, body)) => (status, body),
        Err(code) => (502, format!("{code:?}").into_bytes()),
    }
}

fn send(request: OutgoingRequest) -> Result<(u16, Vec<u8>), ErrorCode> {
    let pending = outgoing_handler::handle(request, None)?;
    pending.subscribe().block();
    let response = pending
        .get()
        .expect("ready once its pollable is")
        .expect("taken once")?;
    let status = response.status();
    let body = read_body(response.consume().expect("the response's body"));
    Ok((status, body))
}

fn method_name(method: &Method) -> String {
    match method {
        Method::Get => "GET".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Head => "HEAD".into(),
        Method::Other(other) => other.clone(),
        _ => format!("{method:?}"),
    }
}
