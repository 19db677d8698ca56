//! `wasm-host serve`: the address on the first line of stderr, requests over
//! loopback, and a graceful end on SIGINT or SIGTERM with status 0.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Stdio};
use std::time::Duration;

use xtask::http::{Response, request};

use crate::components::component;
use crate::support::{text, wasm_host};

/// `wasm-host serve --addr 127.0.0.1:0 FLAGS http_component.wasm`, and the
/// address its first stderr line names.
fn serve(flags: &[&str]) -> (Child, SocketAddr) {
    let mut child = wasm_host()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(flags)
        .arg(component("http_component"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stderr.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .strip_prefix("Serving HTTP on http://")
        .and_then(|rest| rest.trim_end().strip_suffix('/'))
        .unwrap_or_else(|| panic!("not the address: {first:?}"))
        .parse()
        .unwrap();
    (child, addr)
}

fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, b"", Duration::from_secs(60)).unwrap()
}

/// Sends `signal` and returns the exit status and the rest of the output.
fn stop(mut child: Child, signal: libc::c_int) -> (Option<i32>, String, String) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (child.wait().unwrap().code(), stdout, stderr)
}

#[test]
fn a_served_component_answers_with_its_grants_and_sigint_ends_it_with_0() {
    let (child, addr) = serve(&["--env", "GREETING=hi"]);
    let root = get(addr, "/");
    assert_eq!((root.status, root.text().as_str()), (200, "GET /"));
    assert_eq!(get(addr, "/env/GREETING").text(), "hi");
    assert_eq!(get(addr, "/print").status, 200);
    let (status, stdout, stderr) = stop(child, libc::SIGINT);
    assert_eq!(status, Some(0), "{stderr}");
    // The requests before were numbered 0 and 1.
    assert_eq!(stdout, "stdout [2] :: to stdout\n");
    assert_eq!(stderr, "stderr [2] :: to stderr\n");
}

#[test]
fn no_logging_prefix_leaves_the_output_as_written() {
    let (child, addr) = serve(&["--no-logging-prefix"]);
    assert_eq!(get(addr, "/print").status, 200);
    let (status, stdout, stderr) = stop(child, libc::SIGTERM);
    assert_eq!(status, Some(0), "{stderr}");
    assert_eq!((stdout.as_str(), stderr.as_str()), ("to stdout\n", "to stderr\n"));
}

#[test]
fn max_concurrent_requests_bounds_the_instances_alive_at_once() {
    // One instance at a time: each answers, says it lingers, and lingers
    // until its timeout, so the second starts only after the first ended.
    let (child, addr) = serve(&["--max-concurrent-requests", "1", "--timeout", "1s"]);
    let clients: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || get(addr, "/linger")))
        .collect();
    for client in clients {
        assert_eq!(client.join().unwrap().status, 200);
    }
    let (status, _, stderr) = stop(child, libc::SIGTERM);
    assert_eq!(status, Some(0), "{stderr}");
    let events: Vec<&str> = stderr
        .lines()
        .map(|line| {
            if line.ends_with("lingering") {
                "lingering"
            } else {
                "ended"
            }
        })
        .collect();
    // (The last may be dropped at shutdown before its timeout, unnoted.)
    assert_eq!(
        events.get(..3),
        Some(&["lingering", "ended", "lingering"][..]),
        "{stderr}"
    );
    let refused = wasm_host()
        .args(["serve", "--max-concurrent-requests", "0"])
        .arg(component("http_component"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
}

#[test]
fn outgoing_http_needs_allow_http_and_sigterm_ends_the_service_with_0() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_addr = upstream.local_addr().unwrap().to_string();
    let env = format!("UPSTREAM={upstream_addr}");
    // Without the grant nothing reaches the upstream listener, which never accepts.
    let (child, addr) = serve(&["--env", &env, "--timeout", "5s"]);
    let refused = get(addr, "/fetch");
    assert_eq!(
        (refused.status, refused.text().as_str()),
        (502, "ErrorCode::DestinationIpProhibited")
    );
    let (status, _, stderr) = stop(child, libc::SIGTERM);
    assert_eq!(status, Some(0), "{stderr}");

    std::thread::spawn(move || {
        use std::io::Write;
        for mut stream in upstream.incoming().flatten() {
            let mut buffer = [0; 1024];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    let (child, addr) = serve(&["--env", &env, "--allow-http", &upstream_addr]);
    let fetched = get(addr, "/fetch");
    assert_eq!((fetched.status, fetched.text().as_str()), (201, "ok"));
    assert_eq!(stop(child, libc::SIGTERM).0, Some(0));
}

#[test]
fn a_service_is_not_run_and_a_command_is_not_served() {
    let service = component("http_component");
    let output = wasm_host()
        .arg("run")
        .arg(&service)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(126));
    assert!(
        text(&output.stderr).contains("is an HTTP service, not a command: serve it"),
        "{}",
        text(&output.stderr)
    );

    let command = component("hostile_component");
    let output = wasm_host()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .arg(&command)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(126));
    assert!(
        text(&output.stderr).contains("does not export `wasi:http/handler"),
        "{}",
        text(&output.stderr)
    );
}
