//! Network access for components (`wasi:sockets` and outgoing `wasi:http`,
//! WASI 0.2 and 0.3): none unless granted, and then only to the addresses
//! granted.
//!
//! Wasmtime asks the grant about every address a socket uses
//! ([`SocketAddrUse`]): a connection or a datagram is checked against the
//! addresses granted for connecting, a bind or a listener against those
//! granted for binding. The bind a connection makes implicitly (any local
//! address, port 0) comes with any connect grant. Outgoing HTTP has rules
//! of its own, checked by `crate::outgoing` on the address it connects to.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::sockets::SocketAddrUse;

use crate::lookup::Lookups;

/// Addresses a guest may use: an IP network (an address, or
/// `address/prefix`) and, optionally, one port.
///
/// Written `127.0.0.1`, `127.0.0.1:8080`, `10.0.0.0/8`, `10.0.0.0/8:443`,
/// `::1`, `[::1]:8080`, `[fd00::/8]:53`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrRule {
    network: IpAddr,
    prefix: u8,
    port: Option<u16>,
}

impl AddrRule {
    /// Every address on every port, IPv4 and IPv6.
    const ANY: [AddrRule; 2] = [
        AddrRule {
            network: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            prefix: 0,
            port: None,
        },
        AddrRule {
            network: IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            prefix: 0,
            port: None,
        },
    ];

    /// True when `addr` lies in this rule's network and on its port.
    pub fn matches(&self, addr: SocketAddr) -> bool {
        if self.port.is_some_and(|port| port != addr.port()) {
            return false;
        }
        // An IPv4 address may reach an IPv6 socket mapped (`::ffff:a.b.c.d`).
        let ip = match addr.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => same_prefix(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => same_prefix(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

/// True when the first `prefix` bits of `a` and `b` are equal.
fn same_prefix(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let whole = usize::from(prefix / 8);
    let rest = prefix % 8;
    a[..whole] == b[..whole] && (rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0)
}

impl FromStr for AddrRule {
    type Err = ParseAddrRuleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ParseAddrRuleError(text.to_owned());
        // `[v6 or v6/prefix]:port`, or `v4[/prefix][:port]`, or a bare v6.
        let (net, port) = if let Some(rest) = text.strip_prefix('[') {
            let (net, after) = rest.split_once(']').ok_or_else(error)?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or_else(error)?),
            };
            (net, port)
        } else if text.matches(':').count() > 1 {
            (text, None)
        } else {
            match text.split_once(':') {
                Some((net, port)) => (net, Some(port)),
                None => (text, None),
            }
        };
        let (address, prefix) = match net.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (net, None),
        };
        let network: IpAddr = address.parse().map_err(|_| error())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(error)?,
            None => max,
        };
        let port = port.map(|port| port.parse::<u16>().map_err(|_| error())).transpose()?;
        Ok(AddrRule { network, prefix, port })
    }
}

impl fmt::Display for AddrRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.network, self.port) {
            (IpAddr::V6(_), Some(port)) => write!(f, "[{}/{}]:{port}", self.network, self.prefix),
            (_, Some(port)) => write!(f, "{}/{}:{port}", self.network, self.prefix),
            (_, None) => write!(f, "{}/{}", self.network, self.prefix),
        }
    }
}

/// An [`AddrRule`] that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not an address rule: an IP address or network (127.0.0.1, 10.0.0.0/8, ::1, fd00::/8), \
     optionally with a port (127.0.0.1:8080, [::1]:8080)"
)]
pub struct ParseAddrRuleError(String);

/// What a sandbox lets a component do on the network.
#[derive(Debug, Clone, Default)]
pub(crate) struct NetworkGrant {
    connect: Vec<AddrRule>,
    bind: Vec<AddrRule>,
    http: Vec<AddrRule>,
    /// Shared by the sandbox's clones, and so by every store made from it.
    lookups: Lookups,
}

/// What a store may reach by outgoing HTTP: the addresses `rules` grant,
/// a host name only through `lookups`.
#[derive(Debug, Clone, Default)]
pub(crate) struct HttpGrant {
    pub(crate) rules: Arc<[AddrRule]>,
    pub(crate) lookups: Lookups,
}

impl NetworkGrant {
    pub(crate) fn allow_all(&mut self) {
        self.connect.extend(AddrRule::ANY);
        self.bind.extend(AddrRule::ANY);
        self.http.extend(AddrRule::ANY);
    }

    pub(crate) fn allow_http(&mut self, rule: AddrRule) {
        self.http.push(rule);
    }

    /// Where outgoing HTTP requests may go.
    pub(crate) fn http_grant(&self) -> HttpGrant {
        HttpGrant {
            rules: self.http.as_slice().into(),
            lookups: self.lookups.clone(),
        }
    }

    pub(crate) fn allow_connect(&mut self, rule: AddrRule) {
        self.connect.push(rule);
    }

    pub(crate) fn allow_bind(&mut self, rule: AddrRule) {
        self.bind.push(rule);
    }

    pub(crate) fn allow_name_lookup(&mut self) {
        self.lookups.grant();
    }

    /// Looks names up with `resolver`, on at most `threads` (tests: a
    /// resolver of their own), granted as before.
    #[cfg(test)]
    pub(crate) fn resolve_with(
        &mut self,
        resolver: Arc<dyn crate::lookup::Resolve>,
        threads: &'static tokio::sync::Semaphore,
    ) {
        self.lookups = Lookups::with(self.lookups.granted(), resolver, threads);
    }

    /// True when `addr` may be used for `usage`.
    fn permits(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        let any = |rules: &[AddrRule]| rules.iter().any(|rule| rule.matches(addr));
        match usage {
            SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend => any(&self.connect),
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
                any(&self.bind) || (!self.connect.is_empty() && addr.ip().is_unspecified() && addr.port() == 0)
            }
            SocketAddrUse::TcpListen => any(&self.bind),
            // A client of a listener the grant let the guest open.
            SocketAddrUse::TcpAccept => !self.bind.is_empty(),
            // A reply from an address the guest may send to, or anything
            // on a socket it was granted to bind.
            SocketAddrUse::UdpReceive => any(&self.connect) || !self.bind.is_empty(),
        }
    }

    /// Sets `wasi` up to allow what this grant allows, and nothing else.
    pub(crate) fn apply(&self, wasi: &mut WasiCtxBuilder) {
        let sockets = !self.connect.is_empty() || !self.bind.is_empty();
        wasi.allow_tcp(sockets)
            .allow_udp(sockets)
            .allow_ip_name_lookup(self.lookups.granted());
        if sockets {
            let grant = Arc::new(self.clone());
            wasi.socket_addr_check(move |addr, usage| {
                let permitted = grant.permits(addr, usage);
                Box::pin(async move { permitted })
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> AddrRule {
        text.parse().unwrap()
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn rules_parse_addresses_networks_and_ports_and_refuse_the_rest() {
        assert_eq!(rule("127.0.0.1").to_string(), "127.0.0.1/32");
        assert_eq!(rule("127.0.0.1:8080").to_string(), "127.0.0.1/32:8080");
        assert_eq!(rule("10.0.0.0/8:443").to_string(), "10.0.0.0/8:443");
        assert_eq!(rule("::1").to_string(), "::1/128");
        assert_eq!(rule("[::1]:80").to_string(), "[::1/128]:80");
        assert_eq!(rule("[fd00::/8]").to_string(), "fd00::/8");
        for bad in [
            "",
            "localhost",
            "10.0.0.0/33",
            "1.2.3.4:99999",
            "[::1",
            "[::1]80",
            "::1/129",
            "1.2.3.4/",
        ] {
            assert!(bad.parse::<AddrRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_rule_matches_its_network_and_port_only() {
        let loopback_port = rule("127.0.0.1:8080");
        assert!(loopback_port.matches(addr("127.0.0.1:8080")));
        assert!(!loopback_port.matches(addr("127.0.0.1:8081")));
        assert!(!loopback_port.matches(addr("127.0.0.2:8080")));
        assert!(loopback_port.matches(addr("[::ffff:127.0.0.1]:8080")), "IPv4-mapped");
        let net = rule("10.1.0.0/17");
        assert!(net.matches(addr("10.1.127.255:1")));
        assert!(!net.matches(addr("10.1.128.0:1")));
        // Bits past the prefix may differ either way.
        assert!(rule("10.1.128.0/17").matches(addr("10.1.200.1:1")));
        assert!(!net.matches(addr("[::1]:1")));
        assert!(rule("fd00::/8").matches(addr("[fdff::1]:5")));
        assert!(!rule("fd00::/8").matches(addr("[fe00::1]:5")));
        assert!(AddrRule::ANY.iter().any(|r| r.matches(addr("8.8.8.8:53"))));
        assert!(AddrRule::ANY.iter().any(|r| r.matches(addr("[2001:db8::1]:53"))));
    }

    #[test]
    fn connecting_binding_and_listening_are_granted_apart() {
        let mut grant = NetworkGrant::default();
        assert!(!grant.permits(addr("127.0.0.1:80"), SocketAddrUse::TcpConnect));
        assert!(!grant.permits(addr("0.0.0.0:0"), SocketAddrUse::TcpBind));
        grant.allow_connect(rule("127.0.0.1:80"));
        assert!(grant.permits(addr("127.0.0.1:80"), SocketAddrUse::TcpConnect));
        assert!(grant.permits(addr("127.0.0.1:80"), SocketAddrUse::UdpSend));
        assert!(grant.permits(addr("127.0.0.1:80"), SocketAddrUse::UdpReceive));
        assert!(!grant.permits(addr("127.0.0.9:80"), SocketAddrUse::UdpReceive));
        assert!(!grant.permits(addr("127.0.0.1:81"), SocketAddrUse::TcpConnect));
        // The implicit bind of a connection, but no listener.
        assert!(grant.permits(addr("0.0.0.0:0"), SocketAddrUse::TcpBind));
        assert!(!grant.permits(addr("0.0.0.0:8000"), SocketAddrUse::TcpBind));
        assert!(!grant.permits(addr("0.0.0.0:0"), SocketAddrUse::TcpListen));
        assert!(!grant.permits(addr("127.0.0.1:5000"), SocketAddrUse::TcpAccept));
        grant.allow_bind(rule("127.0.0.1:8000"));
        assert!(grant.permits(addr("127.0.0.1:8000"), SocketAddrUse::TcpBind));
        assert!(grant.permits(addr("127.0.0.1:8000"), SocketAddrUse::TcpListen));
        assert!(!grant.permits(addr("0.0.0.0:8000"), SocketAddrUse::TcpListen));
        assert!(grant.permits(addr("127.0.0.1:5000"), SocketAddrUse::TcpAccept));
    }

    #[test]
    fn name_lookup_is_granted_apart_and_shared_with_http() {
        let mut grant = NetworkGrant::default();
        grant.allow_all();
        assert!(!grant.http_grant().lookups.granted(), "the whole network, but no names");
        grant.allow_name_lookup();
        assert!(grant.http_grant().lookups.granted());
    }
}
