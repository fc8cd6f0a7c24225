//! Client address normalisation, masking and EDNS Client Subnet handling.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Largest IPv4 prefix used for routing and reported as ECS scope.
pub const ECS_MAX_PREFIX_V4: u8 = 24;
/// Largest IPv6 prefix used for routing and reported as ECS scope.
pub const ECS_MAX_PREFIX_V6: u8 = 56;

/// How an IPv6 address embeds an IPv4 address.
#[derive(Clone, Copy)]
struct Embedding {
    /// Bits of the IPv6 address before the first embedded IPv4 bit.
    offset: u8,
    /// Bits that identify the embedding (must be covered by a prefix).
    ident: u8,
    /// XOR applied to the extracted 32 bits (Teredo obfuscates the client).
    xor: u32,
}

fn embedding(v6: Ipv6Addr) -> Option<Embedding> {
    let bits = u128::from(v6);
    let s = v6.segments();
    if bits >> 32 == 0xffff {
        // ::ffff:a.b.c.d (IPv4-mapped)
        Some(Embedding {
            offset: 96,
            ident: 96,
            xor: 0,
        })
    } else if s[0] == 0x2002 {
        // 2002:AABB:CCDD::/16 (6to4)
        Some(Embedding {
            offset: 16,
            ident: 16,
            xor: 0,
        })
    } else if s[0] == 0x2001 && s[1] == 0 {
        // 2001:0::/32 (Teredo): client address is the last 32 bits, inverted.
        Some(Embedding {
            offset: 96,
            ident: 32,
            xor: 0xffff_ffff,
        })
    } else if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        // 64:ff9b::/96 (NAT64 well-known prefix)
        Some(Embedding {
            offset: 96,
            ident: 96,
            xor: 0,
        })
    } else {
        None
    }
}

fn extract(v6: Ipv6Addr, e: Embedding) -> Ipv4Addr {
    let bits = u128::from(v6);
    // The embedded address occupies bits [offset, offset + 32).
    let shift = 128 - 32 - u32::from(e.offset);
    // Truncation to the 32 embedded bits is the point of the cast.
    let v4 = (bits >> shift) as u32;
    Ipv4Addr::from(v4 ^ e.xor)
}

/// Maps a client address to the address that should be routed: IPv6
/// addresses embedding an IPv4 client become that IPv4 address.
///
/// Handled: IPv4-mapped `::ffff:a.b.c.d`, 6to4 `2002:AABB:CCDD::/16`,
/// Teredo `2001:0::/32` (client = last 32 bits XOR `0xffffffff`) and the
/// NAT64 well-known prefix `64:ff9b::/96`. Everything else is returned
/// unchanged.
pub fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match embedding(v6) {
            Some(e) => IpAddr::V4(extract(v6, e)),
            None => ip,
        },
    }
}

/// Zeroes every bit of `ip` after the first `prefix` bits (`prefix` is
/// clamped to the address width).
pub fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(mask_u32(u32::from(v4), prefix))),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(mask_u128(u128::from(v6), prefix))),
    }
}

pub(crate) fn mask_u32(bits: u32, prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p if p >= 32 => bits,
        p => bits & (u32::MAX << (32 - u32::from(p))),
    }
}

pub(crate) fn mask_u128(bits: u128, prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p if p >= 128 => bits,
        p => bits & (u128::MAX << (128 - u32::from(p))),
    }
}

/// Converts a (network, prefix) pair the way [`normalize`] converts an
/// address, without capping: an IPv6 prefix that embeds IPv4 and covers at
/// least one embedded IPv4 bit becomes an IPv4 prefix of
/// `prefix - offset` bits (clamped to `0..=32`). The result is masked.
pub fn convert_prefix(ip: IpAddr, prefix: u8) -> (IpAddr, u8) {
    match ip {
        IpAddr::V4(_) => {
            let p = prefix.min(32);
            (mask(ip, p), p)
        }
        IpAddr::V6(v6) => {
            let p = prefix.min(128);
            if let Some(e) = embedding(v6)
                && p > e.offset
                && p >= e.ident
            {
                let p4 = (p - e.offset).min(32);
                return (mask(IpAddr::V4(extract(v6, e)), p4), p4);
            }
            (mask(ip, p), p)
        }
    }
}

/// Turns an EDNS Client Subnet option (address, source prefix) into the
/// client network to route on: convert first (see [`convert_prefix`]), then
/// cap at /24 for IPv4 and /56 for IPv6, then mask.
///
/// Returns the routing address and the effective prefix, which is also the
/// largest ECS scope prefix the answer may claim (before any override
/// network prefix, see [`Decision::scope_prefix`](crate::Decision)).
///
/// Example: `::ffff:192.0.2.77/120` → `(192.0.2.0, 24)`;
/// `2001:db8:1:2:3::/64` → `(2001:db8:1:200::, 56)`.
pub fn ecs_client(addr: IpAddr, source_prefix: u8) -> (IpAddr, u8) {
    let (ip, p) = convert_prefix(addr, source_prefix);
    let cap = match ip {
        IpAddr::V4(_) => ECS_MAX_PREFIX_V4,
        IpAddr::V6(_) => ECS_MAX_PREFIX_V6,
    };
    let p = p.min(cap);
    (mask(ip, p), p)
}

/// The client network for a query without ECS: the normalised source
/// address with its full width (32 or 128) as prefix.
pub fn source_client(addr: IpAddr) -> (IpAddr, u8) {
    let ip = normalize(addr);
    let p = match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    (ip, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn normalize_mapped() {
        assert_eq!(normalize(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn normalize_6to4() {
        assert_eq!(normalize(ip("2002:c000:0201::1")), ip("192.0.2.1"));
        assert_eq!(normalize(ip("2002:cb00:7101:5::")), ip("203.0.113.1"));
    }

    #[test]
    fn normalize_teredo() {
        // RFC 4380 example: client 192.0.2.45 obfuscated as 3fff:fdd2.
        assert_eq!(
            normalize(ip("2001:0:4136:e378:8000:63bf:3fff:fdd2")),
            ip("192.0.2.45")
        );
    }

    #[test]
    fn normalize_nat64() {
        assert_eq!(normalize(ip("64:ff9b::c000:221")), ip("192.0.2.33"));
        assert_eq!(normalize(ip("64:ff9b::192.0.2.33")), ip("192.0.2.33"));
    }

    #[test]
    fn normalize_others_unchanged() {
        for s in [
            "2001:db8::1",
            "::1",
            "198.51.100.7",
            "64:ff9b:1::c000:221",
            "2001:1::1",
            "::192.0.2.1",
        ] {
            assert_eq!(normalize(ip(s)), ip(s), "{s}");
        }
    }

    #[test]
    fn masking() {
        assert_eq!(mask(ip("192.0.2.255"), 24), ip("192.0.2.0"));
        assert_eq!(mask(ip("192.0.2.255"), 0), ip("0.0.0.0"));
        assert_eq!(mask(ip("192.0.2.255"), 32), ip("192.0.2.255"));
        assert_eq!(mask(ip("192.0.2.255"), 99), ip("192.0.2.255"));
        assert_eq!(mask(ip("192.0.2.255"), 25), ip("192.0.2.128"));
        assert_eq!(mask(ip("2001:db8:ffff::1"), 36), ip("2001:db8:f000::"));
        assert_eq!(mask(ip("2001:db8::1"), 128), ip("2001:db8::1"));
        assert_eq!(mask(ip("2001:db8::1"), 0), ip("::"));
    }

    #[test]
    fn ecs_caps() {
        assert_eq!(ecs_client(ip("192.0.2.77"), 32), (ip("192.0.2.0"), 24));
        assert_eq!(ecs_client(ip("192.0.2.77"), 20), (ip("192.0.0.0"), 20));
        assert_eq!(ecs_client(ip("192.0.2.77"), 40), (ip("192.0.2.0"), 24));
        assert_eq!(
            ecs_client(ip("2001:db8:1:2ff::"), 64),
            (ip("2001:db8:1:200::"), 56)
        );
        assert_eq!(ecs_client(ip("2001:db8:1::"), 48), (ip("2001:db8:1::"), 48));
        assert_eq!(ecs_client(ip("2001:db8::"), 200), (ip("2001:db8::"), 56));
    }

    #[test]
    fn ecs_embedded_v4() {
        // ::ffff:0:0/96 + /120 -> v4 /24
        assert_eq!(
            ecs_client(ip("::ffff:192.0.2.0"), 120),
            (ip("192.0.2.0"), 24)
        );
        // /112 -> v4 /16
        assert_eq!(
            ecs_client(ip("::ffff:192.0.2.0"), 112),
            (ip("192.0.0.0"), 16)
        );
        // full /128 -> v4 /32, capped at /24
        assert_eq!(
            ecs_client(ip("::ffff:192.0.2.9"), 128),
            (ip("192.0.2.0"), 24)
        );
        // 6to4: embedded v4 starts at bit 16; /40 -> v4 /24, /48 -> /32 -> cap 24
        assert_eq!(
            ecs_client(ip("2002:c000:0200::"), 40),
            (ip("192.0.2.0"), 24)
        );
        assert_eq!(
            ecs_client(ip("2002:c000:0201::"), 48),
            (ip("192.0.2.0"), 24)
        );
        assert_eq!(ecs_client(ip("2002:c000::"), 32), (ip("192.0.0.0"), 16));
        // NAT64 /120 -> /24
        assert_eq!(
            ecs_client(ip("64:ff9b::c000:200"), 120),
            (ip("192.0.2.0"), 24)
        );
        // Teredo: unknown (zero) host bits become ones after XOR; masking clears them.
        assert_eq!(
            ecs_client(ip("2001:0:4136:e378:8000:63bf:3fff:fd00"), 120),
            (ip("192.0.2.0"), 24)
        );
    }

    #[test]
    fn ecs_prefix_not_covering_v4_is_plain_v6() {
        // /96 covers none of the embedded bits.
        assert_eq!(ecs_client(ip("::ffff:0:0"), 96), (ip("::"), 56));
        // 6to4 /16: no v4 bits.
        assert_eq!(ecs_client(ip("2002::"), 16), (ip("2002::"), 16));
        // Teredo /64 does not cover the v4 bits (offset 96).
        assert_eq!(
            ecs_client(ip("2001:0:4136:e378::"), 64),
            (ip("2001:0:4136:e300::"), 56)
        );
        // NAT64 /64
        assert_eq!(ecs_client(ip("64:ff9b::"), 64), (ip("64:ff9b::"), 56));
    }

    #[test]
    fn source_client_full_prefix() {
        assert_eq!(source_client(ip("::ffff:192.0.2.9")), (ip("192.0.2.9"), 32));
        assert_eq!(source_client(ip("2001:db8::9")), (ip("2001:db8::9"), 128));
    }

    #[test]
    fn convert_prefix_uncapped() {
        assert_eq!(
            convert_prefix(ip("::ffff:10.1.2.3"), 128),
            (ip("10.1.2.3"), 32)
        );
        assert_eq!(
            convert_prefix(ip("2001:db8::1"), 64),
            (ip("2001:db8::"), 64)
        );
    }
}
