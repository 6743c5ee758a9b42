//! Where a guest's `http` requests may go. Granting a host name is not enough: the name is
//! resolved when the connection is made and every address that is not public (loopback,
//! private, link-local, unique-local, CGNAT, unspecified, multicast, reserved) is dropped
//! there, so a name that resolves (or is rebound) to the host's own network reaches
//! nothing. Ports are 80 and 443 unless the operator grants others; only an operator's
//! `http_private: true` lets a plugin reach private addresses (an internal service).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether an address is reachable from the public internet (and so not the host's own
/// network, a cloud metadata service, or a neighbour).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return public_v4(Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                ));
            }
            if s[0] == 0x2002 {
                return public_v4(Ipv4Addr::new(
                    (s[1] >> 8) as u8,
                    s[1] as u8,
                    (s[2] >> 8) as u8,
                    s[2] as u8,
                ));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xfe00) == 0xfc00 // unique-local
                || (s[0] == 0x2001 && s[1] == 0xdb8)) // documentation
        }
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (64..128).contains(&o[1])) // CGNAT 100.64/10
        || (o[0] == 198 && (18..20).contains(&o[1])) // benchmarking 198.18/15
        || o[0] >= 240) // reserved
}

/// A resolver that keeps only public addresses (see the module docs).
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!(
                    "`{host}` resolves to no public address (private, loopback and link-local addresses are refused)"
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// The outbound clients for guests: no redirects (each hop must be granted), a timeout, and
/// public addresses only unless the plugin is granted private ones.
#[derive(Clone)]
pub struct Egress {
    public: reqwest::Client,
    private: reqwest::Client,
}

impl Default for Egress {
    fn default() -> Self {
        let base = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(10))
                .user_agent(concat!("kdhost/", env!("CARGO_PKG_VERSION")))
        };
        Self {
            public: base()
                .dns_resolver(Arc::new(PublicOnly))
                .build()
                .expect("static reqwest configuration"),
            private: base().build().expect("static reqwest configuration"),
        }
    }
}

impl Egress {
    /// The client for a plugin: `private` only when the operator granted private addresses.
    pub fn client(&self, private: bool) -> &reqwest::Client {
        if private { &self.private } else { &self.public }
    }
}

/// Headers a guest may not set: the connection's own (the host manages them) and `Host`
/// (a granted name must not be turned into a request for another virtual host).
pub fn guest_may_set(header: &str) -> bool {
    !matches!(
        header.to_ascii_lowercase().as_str(),
        "host"
            | "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "trailers"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
            | "expect"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private} passed");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public} was refused");
        }
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_reaches_nothing() {
        let err = PublicOnly
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .expect("localhost resolves to loopback only");
        assert!(err.to_string().contains("no public address"), "{err}");
    }

    #[test]
    fn connection_headers_and_host_are_the_hosts() {
        for h in ["Host", "connection", "Transfer-Encoding", "upgrade"] {
            assert!(!guest_may_set(h), "{h}");
        }
        assert!(guest_may_set("Authorization") && guest_may_set("accept"));
    }
}
