//! `wasm-host run` on components: the same flags, output and exit statuses
//! as for core modules.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::run::TIMEOUT;
use crate::support::{run_with_stdin, text, wasm_host};

pub(crate) fn component(name: &str) -> std::path::PathBuf {
    xtask::guests::component(name).unwrap()
}

#[test]
fn a_component_reads_stdin_and_sees_only_granted_variables() {
    let csv_processor = component("csv_processor");
    let output = run_with_stdin(&["run", csv_processor.to_str().unwrap()], b"1,2,3\n4,5\n");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(text(&output.stdout), "15\n");

    let output = wasm_host()
        .args(["run", "--env", "APP_MODE=cli"])
        .arg(component("config_reader"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(text(&output.stdout), "mode=cli\nlog_level=info\n");
}

#[test]
fn a_component_that_fails_exits_1_and_one_that_waits_on_stdin_times_out() {
    let output = wasm_host()
        .arg("run")
        .arg(component("hostile_component"))
        .args(["exit", "9"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "WASI 0.2 exits with success or failure");

    // A pipe that stays open and silent: the guest waits until --timeout.
    let started = Instant::now();
    let mut child = wasm_host()
        .args(["run", "--timeout", "500ms"])
        .arg(component("hostile_component"))
        .arg("stdin")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _open_stdin = child.stdin.take();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(TIMEOUT));
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[test]
fn the_network_is_reachable_only_at_the_addresses_granted() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut stream in listener.incoming().flatten() {
            let mut request = Vec::new();
            let _ = stream.read_to_end(&mut request);
            let _ = stream.write_all(b"pong");
        }
    });
    let connect = |grants: &[&str]| {
        let output = wasm_host()
            .arg("run")
            .args(grants)
            .arg(component("hostile_component"))
            .args(["connect", &addr])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (output.status.code(), text(&output.stdout), text(&output.stderr))
    };
    assert_eq!(
        connect(&["--allow-connect", &addr]).1,
        format!("connect {addr}: pong\n")
    );
    assert_eq!(connect(&["--allow-network"]).1, format!("connect {addr}: pong\n"));
    let (_, denied, _) = connect(&["--allow-connect", "127.0.0.1:1", "--allow-bind", "127.0.0.1"]);
    assert!(denied.starts_with(&format!("connect {addr}: ERROR")), "{denied}");
    let (status, _, message) = connect(&["--allow-connect", "localhost"]);
    assert_eq!(status, Some(2));
    assert!(message.contains("is not an address rule"), "{message}");
}
