//! A component that tries to get out of its sandbox or past its limits,
//! one attack per argument, using the standard library (WASI 0.2), and the
//! `wasi:http` types any component may use:
//!
//! - `loop`: computes forever.
//! - `sleep`: sleeps for an hour.
//! - `stdin`: waits for its standard input to end.
//! - `memory-bomb`: allocates until the allocator gives up; prints how much it got.
//! - `recurse`: recurses until the stack overflows.
//! - `flood BYTES`: writes BYTES bytes to stdout.
//! - `open PATH...`: tries to read each path, and to create a file beside it;
//!   prints `PATH: read OK|ERROR, create OK|ERROR` for each.
//! - `readonly FILE`: tries to change FILE and its directory every way the
//!   standard library offers; prints `ATTEMPT: OK|ERROR` for each, then
//!   `changed N`, N the attempts that succeeded.
//! - `hoard PATH`: opens PATH again and again, keeping every file, until
//!   an open fails; prints `held N, then ERROR KIND`.
//! - `panic`: panics (a trap).
//! - `exit CODE`: exits with CODE.
//! - `env`: prints every environment variable it can see.
//! - `connect ADDR`: connects over TCP, sends `ping`, prints the reply
//!   (`connect ADDR: REPLY`), or the error (`connect ADDR: ERROR KIND`).
//! - `listen ADDR`: binds a TCP listener; prints `listen ADDR: OK|ERROR KIND`.
//! - `udp ADDR`: sends one datagram; prints `udp ADDR: OK|ERROR KIND`.
//! - `lookup HOST`: resolves a name; prints `lookup HOST: OK|ERROR KIND`.
//! - `http-bodies`: fills outgoing HTTP request bodies it never sends, as
//!   much as each takes, keeping them all, until a write fails; prints
//!   `held N MiB, then ERROR ...` (a trap ends it first without a limit).

use std::io::{Read, Write};
use std::process::ExitCode;

use guest_support::spin;

fn main() -> ExitCode {
    match guest_support::args().as_slice() {
        ["loop"] => spin(),
        ["sleep"] => {
            std::thread::sleep(std::time::Duration::from_secs(3600));
            println!("woke up");
        }
        ["stdin"] => {
            let mut input = Vec::new();
            let read = std::io::stdin().read_to_end(&mut input);
            println!("stdin: {} bytes ({read:?})", input.len());
        }
        ["memory-bomb"] => memory_bomb(),
        ["recurse"] => println!("depth {}", recurse(0)),
        ["flood", bytes] => flood(bytes.parse().expect("flood BYTES")),
        ["open", paths @ ..] => {
            for path in paths {
                let read = std::fs::read(path).map(|_| ());
                let create = std::fs::write(format!("{path}.created"), b"escaped").map(|_| ());
                println!("{path}: read {}, create {}", outcome(read), outcome(create));
            }
        }
        ["readonly", file] => readonly(file),
        ["hoard", path] => {
            let mut held = Vec::new();
            let error = loop {
                match std::fs::File::open(path) {
                    Ok(file) => held.push(file),
                    Err(error) => break error,
                }
            };
            println!("held {}, then ERROR {:?}", held.len(), error.kind());
        }
        ["panic"] => panic!("the guest panicked on purpose"),
        ["exit", code] => return ExitCode::from(code.parse::<u8>().expect("exit CODE")),
        ["env"] => {
            for (name, value) in std::env::vars() {
                println!("{name}={value}");
            }
        }
        ["connect", addr] => match ping(addr) {
            Ok(reply) => println!("connect {addr}: {reply}"),
            Err(error) => println!("connect {addr}: ERROR {:?}", error.kind()),
        },
        ["listen", addr] => {
            let listened = std::net::TcpListener::bind(addr).map(|_| ());
            println!("listen {addr}: {}", kind(listened));
        }
        ["udp", addr] => {
            let sent = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|socket| socket.send_to(b"ping", addr));
            println!("udp {addr}: {}", kind(sent.map(|_| ())));
        }
        ["lookup", host] => {
            let resolved = std::net::ToSocketAddrs::to_socket_addrs(&(*host, 80)).map(|_| ());
            println!("lookup {host}: {}", kind(resolved));
        }
        ["http-bodies"] => http_bodies(),
        _ => {
            eprintln!(
                "usage: hostile_component loop|sleep|stdin|memory-bomb|recurse|flood N|open PATH...|readonly FILE|hoard PATH|panic|exit N|env|connect ADDR|listen ADDR|udp ADDR|lookup HOST|http-bodies"
            );
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

/// Buffers as much as the host takes in outgoing request bodies, never sent.
fn http_bodies() {
    use wasi::http::types::{Fields, OutgoingRequest};
    let chunk = vec![7u8; 1 << 20];
    let mut held = Vec::new();
    let mut bytes = 0;
    let error = 'hoard: loop {
        let request = OutgoingRequest::new(Fields::new());
        let body = request.body().expect("a new request's body");
        let stream = body.write().expect("a new body's stream");
        loop {
            match stream.check_write() {
                Ok(0) => break,
                Ok(permit) => {
                    let n = chunk.len().min(usize::try_from(permit).unwrap_or(usize::MAX));
                    if let Err(error) = stream.write(&chunk[..n]) {
                        break 'hoard format!("{error:?}");
                    }
                    bytes += n;
                }
                Err(error) => break 'hoard format!("{error:?}"),
            }
        }
        held.push((stream, body, request));
    };
    println!("held {} MiB, then ERROR {error}", bytes >> 20);
}

/// Sends `ping` over a new TCP connection and returns the whole reply.
fn ping(addr: &str) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.write_all(b"ping")?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

fn kind(result: std::io::Result<()>) -> String {
    match result {
        Ok(()) => "OK".to_owned(),
        Err(error) => format!("ERROR {:?}", error.kind()),
    }
}

fn outcome(result: std::io::Result<()>) -> &'static str {
    if result.is_ok() { "OK" } else { "ERROR" }
}

/// Every change to `file` and beside it, each attempted once.
fn readonly(file: &str) {
    use std::fs::{self, OpenOptions};
    let dir = std::path::Path::new(file).parent().unwrap_or(std::path::Path::new("."));
    let beside = |name: &str| dir.join(name);
    let attempts: [(&str, std::io::Result<()>); 8] = [
        ("open for writing", OpenOptions::new().write(true).open(file).map(drop)),
        (
            "truncate on open",
            OpenOptions::new().write(true).truncate(true).open(file).map(drop),
        ),
        ("append", OpenOptions::new().append(true).open(file).map(drop)),
        ("create", fs::write(beside("created.txt"), b"new")),
        ("mkdir", fs::create_dir(beside("made"))),
        ("rename", fs::rename(file, beside("renamed.txt"))),
        ("link", fs::hard_link(beside("renamed.txt"), beside("linked.txt"))),
        ("delete", fs::remove_file(beside("renamed.txt"))),
    ];
    let mut changed = 0;
    for (attempt, result) in attempts {
        changed += usize::from(result.is_ok());
        println!("{attempt}: {}", outcome(result));
    }
    println!("changed {changed}");
}

/// Grows a list of 1 MiB blocks until an allocation fails.
fn memory_bomb() {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = Vec::new();
        if block.try_reserve_exact(1 << 20).is_err() {
            break;
        }
        block.resize(1 << 20, 1);
        blocks.push(block);
    }
    println!("allocated {} MiB", blocks.len());
}

#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 16]);
    recurse(depth + 1) + frame[0]
}

fn flood(bytes: usize) {
    let chunk = [b'x'; 4096];
    let mut out = std::io::stdout().lock();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        if out.write_all(&chunk[..n]).is_err() {
            return;
        }
        left -= n;
    }
}
