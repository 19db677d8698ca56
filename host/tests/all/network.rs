//! Sockets for components: no network unless granted, and then only the
//! addresses granted, proved on loopback against listeners the test owns.

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use host::{AddrRule, Sandbox};

use crate::components::{attack_with_timeout, hostile};
use crate::support;

/// A loopback listener that answers each connection's request with
/// `pong:` and the request, on a thread of its own.
fn echo_server() -> TcpListener {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let serving = listener.try_clone().unwrap();
    std::thread::spawn(move || {
        for mut stream in serving.incoming().flatten() {
            let mut request = Vec::new();
            let _ = stream.read_to_end(&mut request);
            let _ = stream.write_all(&[b"pong:", &request[..]].concat());
        }
    });
    listener
}

fn run(sandbox: Sandbox, args: &[&str]) -> String {
    let outcome = sandbox.args(args.iter().copied()).run(&hostile()).unwrap();
    assert_eq!(outcome.exit_code(), Some(0), "{outcome}: {}", outcome.stderr_text());
    outcome.stdout_text()
}

fn rule(text: &str) -> AddrRule {
    text.parse().unwrap()
}

#[test]
fn without_a_grant_no_socket_can_be_used() {
    let server = echo_server();
    let addr = server.local_addr().unwrap().to_string();
    for (attack, target) in [
        ("connect", &*addr),
        ("listen", "127.0.0.1:0"),
        ("udp", &*addr),
        ("lookup", "localhost"),
    ] {
        let said = run(Sandbox::new(), &[attack, target]);
        assert!(said.starts_with(&format!("{attack} {target}: ERROR")), "{said}");
    }
}

#[test]
fn name_lookup_is_its_own_grant() {
    // `localhost` comes from the hosts file: no query leaves the machine.
    let granted = run(Sandbox::new().allow_ip_name_lookup(), &["lookup", "localhost"]);
    assert_eq!(granted, "lookup localhost: OK\n");
    let whole_network = run(Sandbox::new().allow_network(), &["lookup", "localhost"]);
    assert!(whole_network.contains("ERROR"), "{whole_network}");
}

/// WASI 0.3's `resolve-addresses` (the host's, `host/src/lookup.rs`) as
/// WASI 0.2's: only with the grant, literals without a lookup, a name that
/// is not one refused.
#[test]
fn wasi_0_3_name_lookup_is_its_own_grant() {
    let lookup = |sandbox: Sandbox, names: &[&str]| {
        let args: Vec<&str> = ["lookup"].iter().chain(names).copied().collect();
        let outcome = sandbox.args(args).run(&support::components::hostile_p3()).unwrap();
        assert_eq!(outcome.exit_code(), Some(0), "{outcome}: {}", outcome.stderr_text());
        outcome.stdout_text()
    };
    // `localhost` comes from the hosts file: no query leaves the machine.
    let names = ["localhost", "127.0.0.1", "bad name!"];
    let granted = lookup(Sandbox::new().allow_ip_name_lookup(), &names);
    let (localhost, rest) = granted.split_once('\n').unwrap();
    assert!(
        localhost.starts_with("lookup localhost: OK [") && localhost.contains("Ipv4((127, 0, 0, 1))"),
        "{granted}"
    );
    assert_eq!(
        rest,
        "lookup 127.0.0.1: OK [IpAddress::Ipv4((127, 0, 0, 1))]\n\
         lookup bad name!: ERROR ErrorCode::InvalidArgument\n"
    );
    for sandbox in [Sandbox::new(), Sandbox::new().allow_network()] {
        assert_eq!(
            lookup(sandbox, &names[..1]),
            "lookup localhost: ERROR ErrorCode::PermanentResolverFailure\n"
        );
    }
}

#[test]
fn a_connect_grant_reaches_its_address_and_no_other() {
    let granted = echo_server().local_addr().unwrap().to_string();
    let other = echo_server().local_addr().unwrap().to_string();
    let sandbox = Sandbox::new().allow_connect(rule(&granted));
    assert_eq!(
        run(sandbox.clone(), &["connect", &granted]),
        format!("connect {granted}: pong:ping\n")
    );
    let refused = run(sandbox.clone(), &["connect", &other]);
    assert!(refused.starts_with(&format!("connect {other}: ERROR")), "{refused}");
    // Connecting is not listening.
    let listen = run(sandbox, &["listen", "127.0.0.1:0"]);
    assert!(listen.contains("ERROR"), "{listen}");
}

#[test]
fn datagrams_go_only_where_granted() {
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    receiver.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let addr = receiver.local_addr().unwrap().to_string();
    let refused = run(Sandbox::new().allow_connect(rule("127.0.0.2")), &["udp", &addr]);
    assert!(refused.contains("ERROR"), "{refused}");
    let sent = run(Sandbox::new().allow_connect(rule(&addr)), &["udp", &addr]);
    assert_eq!(sent, format!("udp {addr}: OK\n"));
    let mut datagram = [0; 16];
    let (len, _) = receiver.recv_from(&mut datagram).unwrap();
    assert_eq!(&datagram[..len], b"ping");
}

#[test]
fn a_bind_grant_lets_the_guest_listen_on_its_addresses_only() {
    let sandbox = Sandbox::new().allow_bind(rule("127.0.0.1"));
    assert_eq!(
        run(sandbox.clone(), &["listen", "127.0.0.1:0"]),
        "listen 127.0.0.1:0: OK\n"
    );
    let elsewhere = run(sandbox, &["listen", "0.0.0.0:0"]);
    assert!(elsewhere.contains("ERROR"), "{elsewhere}");
    let everything = Sandbox::new().allow_network();
    assert_eq!(run(everything, &["listen", "0.0.0.0:0"]), "listen 0.0.0.0:0: OK\n");
}

#[test]
fn a_peer_that_never_answers_keeps_the_guest_only_until_the_timeout() {
    // Accepts (the kernel does, from the backlog) but never reads or replies.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let sandbox = Sandbox::new().allow_connect(rule(&addr));
    attack_with_timeout(sandbox, Duration::from_millis(500), &["connect", &addr]);
    drop(silent);
}
