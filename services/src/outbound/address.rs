//! Which IP addresses this service may connect to. Only global unicast addresses: a project
//! names the URLs the service calls (an OAuth app's `token_url`), so anything else would let
//! it reach this host, the private network or the cloud metadata service (SSRF).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Unspecified,
    Loopback,
    /// RFC 1918, and IPv6 unique local addresses (fc00::/7) and site-local (fec0::/10).
    Private,
    /// 100.64.0.0/10, carrier-grade NAT (RFC 6598).
    SharedAddressSpace,
    /// 169.254.0.0/16 (where cloud metadata services answer) and fe80::/10.
    LinkLocal,
    Multicast,
    Broadcast,
    /// 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32, 3fff::/20.
    Documentation,
    /// "This network", IETF protocol assignments, benchmarking, reserved and discard ranges.
    Reserved,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::SharedAddressSpace => "shared (carrier-grade NAT)",
            Self::LinkLocal => "link-local",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Documentation => "documentation",
            Self::Reserved => "reserved",
        }
    }
}

/// The scope of a non-global address, or `None` for a global unicast one.
pub fn non_global_scope(ip: IpAddr) -> Option<Scope> {
    match ip {
        IpAddr::V4(v4) => v4_scope(v4),
        IpAddr::V6(v6) => v6_scope(v6),
    }
}

fn v4_scope(ip: Ipv4Addr) -> Option<Scope> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() => Scope::Unspecified,
        // Azure's platform endpoint (WireServer), reachable from every VM like the metadata
        // service although the address is public.
        _ if ip == Ipv4Addr::new(168, 63, 129, 16) => Scope::LinkLocal,
        _ if ip.is_broadcast() => Scope::Broadcast,
        (127, ..) => Scope::Loopback,
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => Scope::Private,
        (100, 64..=127, _) => Scope::SharedAddressSpace,
        (169, 254, _) => Scope::LinkLocal,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Scope::Documentation,
        (224..=239, ..) => Scope::Multicast,
        // 0/8 "this network", 192.0.0/24 IETF assignments, 192.88.99/24 the old 6to4 relay,
        // 198.18/15 benchmarking, 240/4 reserved.
        (0, ..) | (192, 0, 0) | (192, 88, 99) | (198, 18..=19, _) | (240..=255, ..) => Scope::Reserved,
        _ => return None,
    })
}

fn v6_scope(ip: Ipv6Addr) -> Option<Scope> {
    if let Some(embedded) = embedded_v4(ip) {
        return v4_scope(embedded);
    }
    let s = ip.segments();
    Some(match s[0] {
        _ if ip.is_unspecified() => Scope::Unspecified,
        _ if ip.is_loopback() => Scope::Loopback,
        0xfc00..=0xfdff | 0xfec0..=0xfeff => Scope::Private,
        0xfe80..=0xfebf => Scope::LinkLocal,
        0xff00..=0xffff => Scope::Multicast,
        0x2001 if s[1] == 0x0db8 => Scope::Documentation,
        0x3fff if s[1] <= 0x0fff => Scope::Documentation,
        // The rest of ::/8 (IPv4-compatible ::/96, local NAT64 64:ff9b:1::/48, ...), 100::/64
        // discard-only, 2001::/23 IETF assignments (Teredo included).
        0x0000..=0x00ff => Scope::Reserved,
        0x0100 if s[1..4] == [0, 0, 0] => Scope::Reserved,
        0x2001 if s[1] <= 0x01ff => Scope::Reserved,
        _ => return None,
    })
}

/// The IPv4 address an IPv6 one stands for, where the network delivers it to that IPv4
/// address: IPv4-mapped (::ffff:0:0/96), NAT64 (64:ff9b::/96), 6to4 (2002::/16).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let from = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(from(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(from(hi, lo)),
        [0x2002, hi, lo, ..] => Some(from(hi, lo)),
        _ => None,
    }
}

/// What the service may connect to: global addresses, and loopback too when the operator
/// allows it for development (`--oauth-allow-loopback-http`). Never private or link-local.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddressPolicy {
    pub allow_loopback: bool,
}

impl AddressPolicy {
    pub fn check(&self, ip: IpAddr) -> Result<(), RefusedAddress> {
        match non_global_scope(ip) {
            None => Ok(()),
            Some(Scope::Loopback) if self.allow_loopback => Ok(()),
            Some(scope) => Err(RefusedAddress { ip, scope }),
        }
    }
}

/// An address the policy does not connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusedAddress {
    pub ip: IpAddr,
    pub scope: Scope,
}

impl fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is a {} address, which this service does not connect to", self.ip, self.scope.name())
    }
}

impl std::error::Error for RefusedAddress {}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(raw: &str) -> Option<Scope> {
        non_global_scope(raw.parse().unwrap())
    }

    #[test]
    fn only_global_unicast_addresses_pass() {
        let cases = [
            ("0.0.0.0", Some(Scope::Unspecified)),
            ("::", Some(Scope::Unspecified)),
            ("127.0.0.1", Some(Scope::Loopback)),
            ("127.255.1.2", Some(Scope::Loopback)),
            ("::1", Some(Scope::Loopback)),
            ("10.1.2.3", Some(Scope::Private)),
            ("172.16.0.1", Some(Scope::Private)),
            ("172.31.255.255", Some(Scope::Private)),
            ("192.168.1.1", Some(Scope::Private)),
            ("fd12:3456::1", Some(Scope::Private)),
            ("fc00::1", Some(Scope::Private)),
            ("fec0::1", Some(Scope::Private)),
            ("100.64.0.1", Some(Scope::SharedAddressSpace)),
            ("100.127.255.255", Some(Scope::SharedAddressSpace)),
            ("169.254.169.254", Some(Scope::LinkLocal)),
            ("168.63.129.16", Some(Scope::LinkLocal)),
            ("fe80::1", Some(Scope::LinkLocal)),
            ("224.0.0.1", Some(Scope::Multicast)),
            ("ff02::1", Some(Scope::Multicast)),
            ("255.255.255.255", Some(Scope::Broadcast)),
            ("192.0.2.1", Some(Scope::Documentation)),
            ("198.51.100.7", Some(Scope::Documentation)),
            ("203.0.113.9", Some(Scope::Documentation)),
            ("2001:db8::1", Some(Scope::Documentation)),
            ("3fff::1", Some(Scope::Documentation)),
            ("0.1.2.3", Some(Scope::Reserved)),
            ("192.0.0.8", Some(Scope::Reserved)),
            ("198.18.0.1", Some(Scope::Reserved)),
            ("240.0.0.1", Some(Scope::Reserved)),
            ("::7f00:1", Some(Scope::Reserved)),
            ("100::1", Some(Scope::Reserved)),
            ("2001::1", Some(Scope::Reserved)),
            ("64:ff9b:1::1", Some(Scope::Reserved)),
            // IPv6 forms of IPv4 addresses are judged by the IPv4 address.
            ("::ffff:127.0.0.1", Some(Scope::Loopback)),
            ("::ffff:169.254.169.254", Some(Scope::LinkLocal)),
            ("64:ff9b::10.0.0.1", Some(Scope::Private)),
            ("2002:c0a8:0101::1", Some(Scope::Private)),
            ("::ffff:8.8.8.8", None),
            // Global unicast.
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("100.63.255.255", None),
            ("100.128.0.1", None),
            ("172.15.0.1", None),
            ("172.32.0.1", None),
            ("169.255.0.1", None),
            ("142.250.74.46", None),
            ("2a00:1450:4001:80b::200e", None),
            ("2606:4700::1111", None),
            ("2002:0808:0808::1", None),
            ("64:ff9b::8.8.8.8", None),
            ("101::1", None),
        ];
        for (ip, expected) in cases {
            assert_eq!(scope(ip), expected, "{ip}");
        }
    }

    #[test]
    fn the_loopback_flag_allows_loopback_and_nothing_else() {
        let dev = AddressPolicy { allow_loopback: true };
        let prod = AddressPolicy::default();
        for ip in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(dev.check(ip.parse().unwrap()).is_ok(), "{ip}");
            assert_eq!(prod.check(ip.parse().unwrap()).unwrap_err().scope, Scope::Loopback, "{ip}");
        }
        for ip in ["10.0.0.1", "169.254.169.254", "fe80::1", "0.0.0.0", "100.64.0.1"] {
            assert!(dev.check(ip.parse().unwrap()).is_err(), "{ip}");
        }
        assert!(prod.check("8.8.8.8".parse().unwrap()).is_ok());
    }

    #[test]
    fn a_refusal_names_the_address_and_why() {
        let refused = AddressPolicy::default().check("169.254.169.254".parse().unwrap()).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "169.254.169.254 is a link-local address, which this service does not connect to"
        );
    }
}
