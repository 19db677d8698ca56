//! Serving HTTP with a component (`Sandbox::serve_http`), and its outgoing
//! requests: refused unless granted, and then only to the granted
//! addresses, proved on loopback against a server the test owns.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use host::{AddrRule, Error, HttpService, Limits, Sandbox, ServeOptions, Termination, TrapKind};
use xtask::http::{Response, request};

use crate::support::{self, SLACK, components};

fn serve(sandbox: &Sandbox) -> HttpService {
    serve_with(sandbox, &ServeOptions::new())
}

fn serve_with(sandbox: &Sandbox, options: &ServeOptions) -> HttpService {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    sandbox
        .serve_http_with(&components::http_component(), listener, options)
        .unwrap()
}

fn get(service: &HttpService, path: &str) -> Response {
    request(service.local_addr(), "GET", path, b"", Duration::from_secs(60)).unwrap()
}

fn rule(text: &str) -> AddrRule {
    text.parse().unwrap()
}

/// A loopback server answering every request `200 upstream says hi`,
/// recording each request line it was sent.
fn upstream() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let line = String::from_utf8_lossy(&head)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            log.lock().unwrap().push(line);
            let body = "upstream says hi";
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (addr, seen)
}

#[test]
fn a_component_serves_status_headers_and_body_and_shuts_down_with_exit_0() {
    let service = serve(&Sandbox::new());
    let root = get(&service, "/");
    assert_eq!((root.status, root.text().as_str()), (200, "GET /"));
    assert_eq!(root.header("x-guest"), Some("http_component"));
    let echo = request(
        service.local_addr(),
        "POST",
        "/echo",
        b"hello, echo",
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!((echo.status, echo.text().as_str()), (200, "hello, echo"));
    assert_eq!(get(&service, "/nothing-here").status, 404);
    let outcome = service.shutdown().unwrap();
    assert_eq!(outcome.termination, Termination::Exited(0));
}

#[test]
fn each_request_gets_the_sandbox_grants_and_its_output_is_the_services() {
    let service = serve(&Sandbox::new().env("GREETING", "hi"));
    assert_eq!(get(&service, "/env/GREETING").text(), "hi");
    // The host's own environment is never passed through.
    assert_eq!(get(&service, "/env/PATH").status, 404);
    assert_eq!(get(&service, "/print").status, 200);
    assert_eq!(get(&service, "/print").status, 200);
    let outcome = service.shutdown().unwrap();
    assert_eq!(outcome.stdout_text(), "to stdout\nto stdout\n");
    assert_eq!(outcome.stderr_text(), "to stderr\nto stderr\n");
}

#[test]
fn output_is_tagged_with_its_requests_number_when_asked() {
    let service = serve_with(&Sandbox::new(), &ServeOptions::new().tag_output(true));
    assert_eq!(get(&service, "/print").status, 200);
    assert_eq!(get(&service, "/print").status, 200);
    let outcome = service.shutdown().unwrap();
    assert_eq!(
        outcome.stdout_text(),
        "stdout [0] :: to stdout\nstdout [1] :: to stdout\n"
    );
    assert_eq!(
        outcome.stderr_text(),
        "stderr [0] :: to stderr\nstderr [1] :: to stderr\n"
    );
}

#[test]
fn the_concurrency_cap_holds_instances_until_they_end_not_until_they_answer() {
    let limits = Limits::default().timeout(Some(Duration::from_secs(1)));
    let cap = 3;
    let service = serve_with(
        &Sandbox::new().limits(limits),
        &ServeOptions::new().max_concurrent_requests(cap),
    );
    let addr = service.local_addr();
    // Each answers at once, then holds its memory until its timeout.
    let clients: Vec<_> = (0..3 * cap)
        .map(|_| std::thread::spawn(move || request(addr, "GET", "/linger", b"", Duration::from_secs(60)).unwrap()))
        .collect();
    let mut most = 0;
    // A bound for a service that never lets go, not a timing assertion.
    let give_up = Instant::now() + Duration::from_secs(60);
    while (clients.iter().any(|client| !client.is_finished()) || service.instances() > 0) && Instant::now() < give_up {
        most = most.max(service.instances());
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(service.instances(), 0, "every instance ended");
    for client in clients {
        let answered = client.join().unwrap();
        assert_eq!((answered.status, answered.text().as_str()), (200, "answered"));
    }
    assert_eq!(most, cap, "the most instances alive at once");
    let stderr = service.shutdown().unwrap().stderr_text();
    assert_eq!(stderr.matches("a request timed out").count(), 3 * cap, "{stderr}");
}

#[test]
fn outgoing_http_reaches_a_granted_address_and_no_other() {
    let (addr, seen) = upstream();
    let fetch = |sandbox: Sandbox, upstream: &str| {
        let service = serve(&sandbox.env("UPSTREAM", upstream));
        let response = get(&service, "/fetch");
        service.shutdown().unwrap();
        response
    };
    let granted = fetch(Sandbox::new().allow_http(rule(&addr.to_string())), &addr.to_string());
    assert_eq!((granted.status, granted.text().as_str()), (200, "upstream says hi"));
    assert_eq!(*seen.lock().unwrap(), ["GET /upstream HTTP/1.1"]);
    // A name is checked on the address it resolves to.
    let by_name = format!("localhost:{}", addr.port());
    let resolved = fetch(Sandbox::new().allow_http(rule("127.0.0.1")), &by_name);
    assert_eq!(resolved.status, 200, "{}", resolved.text());

    seen.lock().unwrap().clear();
    let other_port = rule(&format!("127.0.0.1:{}", addr.port() + 1));
    for sandbox in [
        Sandbox::new(),
        Sandbox::new().allow_http(other_port),
        Sandbox::new().allow_http(rule("10.0.0.0/8")),
        // Sockets are not HTTP.
        Sandbox::new().allow_connect(rule("127.0.0.1")),
    ] {
        for upstream in [addr.to_string(), by_name.clone()] {
            let refused = fetch(sandbox.clone(), &upstream);
            assert_eq!(
                (refused.status, refused.text().as_str()),
                (502, "ErrorCode::DestinationIpProhibited")
            );
        }
    }
    // Any other name is resolved only with the lookup grant.
    let named = fetch(
        Sandbox::new().allow_http(rule("127.0.0.1")),
        &format!("upstream.invalid:{}", addr.port()),
    );
    assert_eq!(
        (named.status, named.text().as_str()),
        (502, "ErrorCode::DestinationIpProhibited")
    );
    assert!(seen.lock().unwrap().is_empty(), "refused requests were sent: {seen:?}");
    let everywhere = fetch(Sandbox::new().allow_network(), &addr.to_string());
    assert_eq!(everywhere.status, 200);
}

/// A WASI 0.3 component's request reaches a granted upstream, its whole
/// body read through WASI 0.3's body stream, and is refused without the
/// grant.
#[test]
fn a_wasi_0_3_client_reads_a_granted_upstreams_whole_body() {
    let (addr, seen) = upstream();
    let authority = addr.to_string();
    let outcome = Sandbox::new()
        .allow_http(rule(&authority))
        .args(["get", &authority, "/upstream"])
        .run(&components::hostile_p3())
        .unwrap();
    assert_eq!(
        outcome.stdout_text(),
        "status 200, 16 bytes: upstream says hi\n",
        "{}",
        outcome.stderr_text()
    );
    assert_eq!(*seen.lock().unwrap(), ["GET /upstream HTTP/1.1"]);
    // Without the grant, refused before anything is sent.
    let refused = Sandbox::new()
        .args(["get", &authority, "/again"])
        .run(&components::hostile_p3())
        .unwrap();
    assert_eq!(
        refused.stdout_text(),
        "get: ERROR ErrorCode::DestinationIpProhibited\n",
        "{}",
        refused.stderr_text()
    );
    assert_eq!(seen.lock().unwrap().len(), 1, "a refused request was sent");
}

/// A WASI 0.3 service that hands an upstream's response on, its body
/// unread: the client gets the body whole, its length told up front as the
/// upstream told it.
#[test]
fn a_wasi_0_3_service_relays_an_upstream_body_it_never_read() {
    let (addr, seen) = upstream();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let service = Sandbox::new()
        .allow_http(rule(&addr.to_string()))
        .serve_http_with(&components::hostile_p3(), listener, &ServeOptions::new())
        .unwrap();
    let relayed = get(&service, &format!("/proxy/{addr}/upstream"));
    service.shutdown().unwrap();
    assert_eq!((relayed.status, relayed.text().as_str()), (200, "upstream says hi"));
    assert_eq!(relayed.header("content-length"), Some("16"), "{:?}", relayed.headers);
    assert_eq!(*seen.lock().unwrap(), ["GET /upstream HTTP/1.1"]);
}

#[test]
fn a_request_past_the_timeout_is_cut_and_the_service_goes_on() {
    let timeout = Duration::from_millis(500);
    let limits = Limits::default().timeout(Some(timeout));
    let service = serve(&Sandbox::new().limits(limits));
    for path in ["/sleep", "/loop"] {
        let started = Instant::now();
        let cut = get(&service, path);
        assert_eq!(
            (cut.status, cut.text().as_str()),
            (500, "the guest timed out\n"),
            "{path}"
        );
        assert!(
            started.elapsed() < timeout + SLACK,
            "{path} took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(get(&service, "/").status, 200);
    let outcome = service.shutdown().unwrap();
    assert_eq!(outcome.exit_code(), Some(0));
    let stderr = outcome.stderr_text();
    assert_eq!(stderr.matches("a request timed out after 500ms").count(), 2, "{stderr}");
}

#[test]
fn a_trapping_request_is_a_500_noted_on_stderr() {
    let service = serve(&Sandbox::new());
    let trapped = get(&service, "/trap");
    assert_eq!(
        (trapped.status, trapped.text().as_str()),
        (500, "the guest failed to respond\n")
    );
    assert_eq!(get(&service, "/").status, 200);
    let stderr = service.shutdown().unwrap().stderr_text();
    assert!(stderr.contains("http_component trapped on purpose"), "{stderr}");
    assert!(
        stderr.contains(&format!("a request trapped: {}", TrapKind::Unreachable)),
        "{stderr}"
    );
}

/// A request whose instance cannot be made (here its memory is past the
/// limit) is a 500, and why is noted on the service's stderr.
#[test]
fn a_request_that_cannot_start_is_a_500_noted_on_stderr() {
    let service = serve(&Sandbox::new().limits(Limits::default().max_memory_bytes(64 << 10)));
    let response = get(&service, "/");
    assert_eq!(
        (response.status, response.text().as_str()),
        (500, "the guest failed to respond\n")
    );
    let stderr = service.shutdown().unwrap().stderr_text();
    assert!(stderr.contains(": a request could not start: "), "{stderr}");
}

/// A service whose requests end at `timeout`, and a request to it that
/// sleeps until then, under way.
fn a_request_in_flight(timeout: Duration) -> (HttpService, std::thread::JoinHandle<Response>) {
    let service = serve(&Sandbox::new().limits(Limits::default().timeout(Some(timeout))));
    let addr = service.local_addr();
    let in_flight = std::thread::spawn(move || request(addr, "GET", "/sleep", b"", Duration::from_secs(60)).unwrap());
    std::thread::sleep(Duration::from_millis(200));
    (service, in_flight)
}

#[test]
fn shutting_down_finishes_a_request_in_flight() {
    let (service, in_flight) = a_request_in_flight(Duration::from_secs(1));
    let addr = service.local_addr();
    let started = Instant::now();
    let outcome = service.shutdown().unwrap();
    assert_eq!(outcome.exit_code(), Some(0));
    // It ran to its timeout, and was answered, before the service ended.
    assert_eq!(in_flight.join().unwrap().status, 500);
    assert!(started.elapsed() < Duration::from_secs(1) + SLACK);
    assert!(std::net::TcpStream::connect(addr).is_err(), "the listener is closed");
}

#[test]
fn each_request_gets_an_instance_of_its_own() {
    let service = serve(&Sandbox::new());
    for _ in 0..3 {
        assert_eq!(get(&service, "/count").text(), "1");
    }
}

#[test]
fn dropping_the_service_shuts_it_down() {
    let service = serve(&Sandbox::new());
    let addr = service.local_addr();
    assert_eq!(get(&service, "/").status, 200);
    drop(service);
    assert!(std::net::TcpStream::connect(addr).is_err(), "the listener is closed");
}

/// Dropped, the service waits for the requests in flight as `shutdown`
/// does: once the drop returns, the request has had its answer (a drop
/// that only signalled the service would return at once, its guest still
/// running for seconds).
#[test]
fn dropping_the_service_finishes_a_request_in_flight_first() {
    let (service, in_flight) = a_request_in_flight(Duration::from_secs(3));
    drop(service);
    // The answer was sent before the drop returned: the client has read
    // it within moments, not at the guest's timeout, seconds away.
    let read_by = Instant::now() + Duration::from_secs(1);
    while !in_flight.is_finished() && Instant::now() < read_by {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        in_flight.is_finished(),
        "the request was still in flight after the drop"
    );
    assert_eq!(in_flight.join().unwrap().status, 500);
}

/// A client may take its time sending a request's head (hyper's timer
/// bounds it at 30 s, not at the first read that finds it incomplete).
#[test]
fn a_request_head_sent_in_pieces_is_served() {
    let service = serve(&Sandbox::new());
    let mut stream = std::net::TcpStream::connect(service.local_addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(b"host: example\r\nconnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 200 "), "{response:?}");
}

#[test]
fn a_connection_counts_in_the_guests_host_memory() {
    let (addr, seen) = upstream();
    let limits = Limits::default().max_host_memory_bytes(32 << 10);
    let upstream = addr.to_string();
    let sandbox = Sandbox::new().limits(limits).allow_http(rule(&upstream));
    let service = serve(&sandbox.env("UPSTREAM", &upstream));
    let refused = get(&service, "/fetch");
    assert_eq!(
        (refused.status, refused.text().as_str()),
        (502, "ErrorCode::ConnectionLimitReached")
    );
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn a_large_response_body_is_relayed_whole() {
    // More than the first read of the connection holds: the rest comes
    // only while the host drives the connection.
    let body = "x".repeat(1 << 20);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let reply = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = [0; 1024];
            let _ = stream.read(&mut head);
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    let service = serve(&Sandbox::new().allow_http(rule(&addr)).env("UPSTREAM", &addr));
    let fetched = get(&service, "/fetch");
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.text().len(), body.len());
}

#[test]
fn only_an_http_service_can_be_served_and_it_cannot_be_run() {
    let listener = || TcpListener::bind("127.0.0.1:0").unwrap();
    let command = Sandbox::new().serve_http(&components::hostile_component(), listener());
    assert!(
        matches!(command, Err(Error::MissingExport { .. })),
        "{:?}",
        command.err()
    );
    let core = Sandbox::new().serve_http(&support::wat("empty", "(module)"), listener());
    assert!(matches!(core, Err(Error::WrongKind { .. })), "{:?}", core.err());
    let run = Sandbox::new().run(&components::http_component());
    assert!(matches!(run, Err(Error::HttpService { .. })), "{:?}", run.err());
}

/// Set in the child process that [`bodies_a_guest_fills_and_never_sends_stay_within_its_host_memory`] runs in.
const HOARD_CHILD_ENV: &str = "HOST_TEST_HOARDING_CHILD";

/// The most resident memory this process has had (`VmHWM`), in bytes.
fn peak_resident_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: usize = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"));
    kib << 10
}

#[test]
fn bodies_a_guest_fills_and_never_sends_stay_within_its_host_memory() {
    // In a process of its own, whose peak resident memory is this run's.
    if std::env::var_os(HOARD_CHILD_ENV).is_none() {
        support::run_test_in_child_process(
            "http_service::bodies_a_guest_fills_and_never_sends_stay_within_its_host_memory",
            &[(HOARD_CHILD_ENV, "1")],
        );
        return;
    }
    let hostile = components::hostile_component();
    let limits = Limits::default()
        .max_memory_bytes(32 << 20)
        .max_resources(1024)
        .max_host_memory_bytes(16 << 20);
    let sandbox = Sandbox::new().limits(limits);
    // A first run brings what every run costs the host to its peak.
    let warm = sandbox.clone().args(["exit", "0"]).run(&hostile).unwrap();
    assert_eq!(warm.exit_code(), Some(0));
    let before = peak_resident_bytes();
    let outcome = sandbox.arg("http-bodies").run(&hostile).unwrap();
    let grown = peak_resident_bytes().saturating_sub(before);
    // Without the limit: 2 MiB for every three of 1024 handles, 663 MiB here.
    assert!(grown < 64 << 20, "the host grew by {} MiB", grown >> 20);
    assert!(
        outcome
            .stdout_text()
            .starts_with("held 16 MiB, then ERROR StreamError::LastOperationFailed"),
        "{outcome}: {}{}",
        outcome.stdout_text(),
        outcome.stderr_text()
    );
}
