//! Calls catraca makes to URLs its users give it (webhooks): never to the machine itself, the
//! private network or a cloud metadata service. A URL's host is resolved and every address
//! checked; the call then goes to exactly the addresses checked (no second lookup a DNS
//! rebinding could answer differently) and follows no redirect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What outbound calls may reach beyond the public internet.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// Loopback addresses (127.0.0.0/8, ::1) too: for tests and single-box setups
    /// (`webhooks.allow_loopback`). Private ranges stay refused.
    pub allow_loopback: bool,
}

/// Why a URL may not be called.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not an http(s) URL with a host.
    #[error("not an http(s) URL with a host")]
    BadUrl,
    /// The host is or resolves to an address of this machine or a private network.
    #[error("{0} is a loopback, private, link-local or otherwise internal address")]
    Internal(IpAddr),
    /// The host does not resolve.
    #[error("the host does not resolve")]
    Unresolved,
}

fn v4_internal(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local() // 169.254/16, the metadata service's range
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // 0/8: "this network"
        || (a == 100 && (64..128).contains(&b)) // 100.64/10: shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // 192.0.0/24: IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // 198.18/15: benchmarking
        || a >= 240 // 240/4: reserved
}

fn v6_internal(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_internal(v4);
    }
    let s = ip.segments();
    // 64:ff9b::/96 (NAT64) carries an IPv4 address in its last 32 bits
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return v4_internal(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // fc00::/7 unique local (AWS metadata fd00:ec2::254)
        || (s[0] & 0xffc0) == 0xfe80 // fe80::/10 link-local
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated) ::a.b.c.d
}

/// Whether `ip` may not be called under `policy`.
pub fn internal(ip: IpAddr, policy: Policy) -> bool {
    if policy.allow_loopback && ip.is_loopback() {
        return false;
    }
    match ip {
        IpAddr::V4(v4) => v4_internal(v4),
        IpAddr::V6(v6) => v6_internal(v6),
    }
}

/// Host and port of an http(s) URL.
pub fn host_port(url: &str) -> Result<(String, u16), Refused> {
    let uri: http::Uri = url.parse().map_err(|_| Refused::BadUrl)?;
    let port = match uri.scheme_str() {
        Some("https") => uri.port_u16().unwrap_or(443),
        Some("http") => uri.port_u16().unwrap_or(80),
        _ => return Err(Refused::BadUrl),
    };
    let host = uri.host().ok_or(Refused::BadUrl)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(Refused::BadUrl);
    }
    Ok((host.to_string(), port))
}

/// Resolve `url`'s host and check every address; the addresses to call.
pub async fn resolve(url: &str, policy: Policy) -> Result<(String, Vec<SocketAddr>), Refused> {
    let (host, port) = host_port(url)?;
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|_| Refused::Unresolved)?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(Refused::Unresolved);
    }
    if let Some(bad) = addrs.iter().find(|a| internal(a.ip(), policy)) {
        return Err(Refused::Internal(bad.ip()));
    }
    Ok((host, addrs))
}

/// The check at creation: an internal address is refused; a host that does not resolve yet
/// is accepted (it is checked again, resolved, at every call).
pub async fn check_at_creation(url: &str, policy: Policy) -> Result<(), Refused> {
    match resolve(url, policy).await {
        Ok(_) | Err(Refused::Unresolved) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A client that calls `host` only at `addrs` (already checked) and follows no redirect.
pub fn pinned_client(
    host: &str,
    addrs: &[SocketAddr],
    timeout: std::time::Duration,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve_to_addrs(host, addrs)
        .timeout(timeout)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_and_public_ones_allowed() {
        let p = Policy::default();
        for bad in [
            "127.0.0.1",
            "127.9.9.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::7f00:1",
            "ff02::1",
        ] {
            assert!(internal(bad.parse().unwrap(), p), "{bad}");
        }
        for ok in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!internal(ok.parse().unwrap(), p), "{ok}");
        }
        let lo = Policy {
            allow_loopback: true,
        };
        assert!(
            !internal("127.0.0.1".parse().unwrap(), lo) && !internal("::1".parse().unwrap(), lo)
        );
        assert!(
            internal("10.0.0.1".parse().unwrap(), lo),
            "only loopback is allowed by the switch"
        );
    }

    #[tokio::test]
    async fn urls_are_resolved_and_every_address_checked() {
        let p = Policy::default();
        assert_eq!(resolve("ftp://x.com/", p).await, Err(Refused::BadUrl));
        assert!(matches!(
            resolve("http://127.0.0.1:9/hook", p).await,
            Err(Refused::Internal(_))
        ));
        assert!(matches!(
            resolve("http://[::1]/hook", p).await,
            Err(Refused::Internal(_))
        ));
        assert!(matches!(
            resolve("http://localhost:8080/", p).await,
            Err(Refused::Internal(_))
        ));
        assert!(matches!(
            resolve("http://169.254.169.254/latest/meta-data", p).await,
            Err(Refused::Internal(_))
        ));
        assert!(
            resolve(
                "http://127.0.0.1:9/",
                Policy {
                    allow_loopback: true
                }
            )
            .await
            .is_ok()
        );
        // a name that does not resolve (no network here): accepted at creation, refused at a call
        assert!(
            check_at_creation("https://nao-existe.invalid/hook", p)
                .await
                .is_ok()
        );
        assert_eq!(
            resolve("https://nao-existe.invalid/hook", p).await,
            Err(Refused::Unresolved)
        );
        assert!(check_at_creation("http://10.0.0.5/", p).await.is_err());
    }
}
