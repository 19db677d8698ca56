//! Where the runner itself may connect: the guest under test says where
//! its server listens (a `connect`'s `HOST:PORT` line, a `request`'s URL),
//! and a guest is granted loopback only, so the runner goes nowhere else
//! either. No name but `localhost` is resolved (a lookup is itself a
//! message to a resolver), and no address off loopback is connected to.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use host::AddrRule;

/// The loopback networks, as the sandbox's address rules write them.
pub const NETWORKS: [&str; 2] = ["127.0.0.0/8", "::1"];

/// The rule for each of [`NETWORKS`].
pub fn rules() -> [AddrRule; 2] {
    NETWORKS.map(|text| text.parse().expect("a constant address rule"))
}

/// The loopback address of `authority` (`HOST:PORT`, `[V6]:PORT`, or
/// `HOST` when `default_port` is given), refusing a name other than
/// `localhost` and any address off loopback, before anything is sent.
pub fn address(authority: &str, default_port: Option<u16>) -> Result<SocketAddr, String> {
    let (host, port) = split(authority)
        .or_else(|| default_port.map(|port| (authority, port)))
        .ok_or_else(|| format!("{authority:?} is not HOST:PORT"))?;
    let ip = match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) if host.eq_ignore_ascii_case("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Err(_) => {
            return Err(format!(
                "refused {host:?}: the runner resolves no name but localhost, and connects to loopback only"
            ));
        }
    };
    let addr = SocketAddr::new(ip, port);
    match rules().iter().any(|rule| rule.matches(addr)) {
        true => Ok(addr),
        false => Err(format!(
            "refused {ip}: not a loopback address, and the runner connects to loopback only"
        )),
    }
}

/// `HOST:PORT` or `[V6]:PORT` split at the port's colon.
fn split(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = authority.rsplit_once(':')?;
    let bracketed = host.starts_with('[') && host.ends_with(']');
    // A bare IPv6 address has colons of its own and no port.
    if host.contains(':') && !bracketed || port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((host, port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_and_localhost_are_reached() {
        let reached = |authority: &str| address(authority, Some(80));
        assert_eq!(reached("127.0.0.1:8080"), Ok("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(reached("127.3.2.1"), Ok("127.3.2.1:80".parse().unwrap()));
        assert_eq!(reached("LocalHost:1"), Ok("127.0.0.1:1".parse().unwrap()));
        assert_eq!(reached("[::1]:9"), Ok("[::1]:9".parse().unwrap()));
        for off in [
            "169.254.169.254:80",
            "10.0.0.1",
            "[::2]:80",
            "0.0.0.0:80",
            "[fe80::1]:80",
        ] {
            assert!(reached(off).unwrap_err().contains("not a loopback address"), "{off}");
        }
        for name in [
            "metadata.google.internal:80",
            "localhost.attacker.example",
            "127.0.0.1.nip.io:80",
        ] {
            assert!(reached(name).unwrap_err().contains("resolves no name"), "{name}");
        }
        assert!(address("127.0.0.1", None).unwrap_err().contains("not HOST:PORT"));
        assert_eq!(
            reached("::1"),
            Ok("[::1]:80".parse().unwrap()),
            "a bare IPv6 address has no port"
        );
    }
}
