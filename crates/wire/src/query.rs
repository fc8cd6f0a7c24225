//! Parsing of incoming queries.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::name::{NameBuf, parse_name, parse_question_name};
use crate::{edns_code, opcode, rtype};

/// EDNS Client Subnet option of a query (RFC 7871), validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ecs {
    /// 1 = IPv4, 2 = IPv6.
    pub family: u16,
    pub source_prefix: u8,
    pub scope_prefix: u8,
    /// The address, bits past the source prefix zero (checked).
    pub addr: IpAddr,
}

/// The OPT record of a query (RFC 6891).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns {
    pub udp_payload: u16,
    pub version: u8,
    pub dnssec_ok: bool,
    pub nsid: bool,
    pub ecs: Option<Ecs>,
}

/// A parsed query. Borrows the packet it came from.
pub struct Query<'a> {
    pub packet: &'a [u8],
    pub id: u16,
    pub opcode: u8,
    pub rd: bool,
    pub cd: bool,
    /// The question name as sent (case kept), uncompressed wire form: a
    /// slice of `packet` (a compression pointer in the question is rejected).
    pub qname: &'a [u8],
    /// The question name lowercased.
    pub qname_lc: NameBuf,
    pub qtype: u16,
    pub qclass: u16,
    /// Offset just past the question in `packet`.
    pub question_end: usize,
    pub edns: Option<Edns>,
}

/// Why a packet could not be answered normally.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not worth an answer: shorter than a header, or a response (QR=1).
    Drop,
    /// Answer FORMERR (or NOTIMP for an unknown opcode) with what could be read.
    FormErr(FormErr),
}

/// What the FORMERR/NOTIMP answer can echo.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct FormErr {
    pub id: u16,
    pub opcode: u8,
    pub rd: bool,
    pub cd: bool,
    /// Offset past the question when exactly one question could be read.
    pub question_end: Option<usize>,
    /// The query's OPT when it was readable (RFC 7871 §6: FORMERR with OPT).
    pub edns: Option<Edns>,
    /// NOTIMP instead of FORMERR (unknown opcode).
    pub notimp: bool,
    /// The OPT record was readable but an option in it was malformed
    /// (ECS per RFC 7871 §6, repeated or too many options).
    pub bad_option: bool,
}

/// Most EDNS options we read per query; more is treated as abuse.
const MAX_OPTIONS: usize = 16;

/// Parse a query. Bounded work, never panics.
pub fn parse_query(packet: &[u8]) -> Result<Query<'_>, ParseError> {
    if packet.len() < 12 {
        return Err(ParseError::Drop);
    }
    let id = u16::from_be_bytes([packet[0], packet[1]]);
    let f1 = packet[2];
    let f2 = packet[3];
    if f1 & 0x80 != 0 {
        return Err(ParseError::Drop);
    }
    let op = (f1 >> 3) & 0x0F;
    let rd = f1 & 0x01 != 0;
    let cd = f2 & 0x10 != 0;
    let qd = u16::from_be_bytes([packet[4], packet[5]]);
    let an = u16::from_be_bytes([packet[6], packet[7]]);
    let ns = u16::from_be_bytes([packet[8], packet[9]]);
    let ar = u16::from_be_bytes([packet[10], packet[11]]);
    let mut fe = FormErr {
        id,
        opcode: op,
        rd,
        cd,
        question_end: None,
        edns: None,
        notimp: false,
        bad_option: false,
    };
    if op != opcode::QUERY {
        // RFC 1035: unknown opcodes are "not implemented". NOTIFY is answered
        // the same way until transfers are implemented.
        fe.notimp = true;
        if qd == 1 {
            let mut n = NameBuf::new();
            if let Ok(end) = parse_name(packet, 12, &mut n)
                && end + 4 <= packet.len()
                && end - 12 == n.as_bytes().len()
            {
                fe.question_end = Some(end + 4);
            }
        }
        return Err(ParseError::FormErr(fe));
    }
    if qd != 1 {
        return Err(ParseError::FormErr(fe));
    }
    let mut qname_lc = NameBuf::new();
    let qend = match parse_question_name(packet, &mut qname_lc) {
        // No compression pointer in the question: it could only point into
        // the header, and the question is echoed byte for byte.
        Ok(e) if e + 4 <= packet.len() => e,
        _ => return Err(ParseError::FormErr(fe)),
    };
    let qname = &packet[12..qend];
    let qtype = u16::from_be_bytes([packet[qend], packet[qend + 1]]);
    let qclass = u16::from_be_bytes([packet[qend + 2], packet[qend + 3]]);
    let question_end = qend + 4;
    fe.question_end = Some(question_end);

    // RFC 1035 queries carry no answer/authority records (IXFR carries a SOA
    // in authority, RFC 1995).
    if an != 0 || (ns != 0 && qtype != rtype::IXFR) {
        return Err(ParseError::FormErr(fe));
    }
    let mut off = question_end;
    // Skip authority records (IXFR only).
    for _ in 0..ns {
        off = skip_rr(packet, off).map_err(|_| ParseError::FormErr(fe))?;
    }
    let mut edns: Option<Edns> = None;
    let mut opt_error = false;
    for _ in 0..ar {
        // The usual owner is the root (always, for OPT): one byte.
        let (name_end, root) = if packet.get(off) == Some(&0) {
            (off + 1, true)
        } else {
            let mut scratch = NameBuf::new();
            let e = parse_name(packet, off, &mut scratch).map_err(|_| ParseError::FormErr(fe))?;
            (e, scratch.as_bytes() == [0])
        };
        let hdr = packet
            .get(name_end..name_end + 10)
            .ok_or(ParseError::FormErr(fe))?;
        let t = u16::from_be_bytes([hdr[0], hdr[1]]);
        let class = u16::from_be_bytes([hdr[2], hdr[3]]);
        let ttl = [hdr[4], hdr[5], hdr[6], hdr[7]];
        let rdlen = u16::from_be_bytes([hdr[8], hdr[9]]) as usize;
        let rdata = packet
            .get(name_end + 10..name_end + 10 + rdlen)
            .ok_or(ParseError::FormErr(fe))?;
        off = name_end + 10 + rdlen;
        if t == rtype::OPT {
            // RFC 6891 §6.1.1: one OPT, owner is the root.
            if edns.is_some() || !root {
                fe.edns = edns;
                return Err(ParseError::FormErr(fe));
            }
            let mut e = Edns {
                udp_payload: class,
                version: ttl[1],
                dnssec_ok: ttl[2] & 0x80 != 0,
                nsid: false,
                ecs: None,
            };
            if parse_options(rdata, &mut e).is_err() {
                opt_error = true;
            }
            edns = Some(e);
        }
        // TSIG and other records are ignored.
    }
    if opt_error {
        fe.bad_option = true;
        fe.edns = edns.map(|mut e| {
            e.ecs = None;
            e
        });
        return Err(ParseError::FormErr(fe));
    }
    Ok(Query {
        packet,
        id,
        opcode: op,
        rd,
        cd,
        qname,
        qname_lc,
        qtype,
        qclass,
        question_end,
        edns,
    })
}

fn skip_rr(packet: &[u8], off: usize) -> Result<usize, ()> {
    let mut scratch = NameBuf::new();
    let e = parse_name(packet, off, &mut scratch).map_err(|_| ())?;
    let hdr = packet.get(e..e + 10).ok_or(())?;
    let rdlen = u16::from_be_bytes([hdr[8], hdr[9]]) as usize;
    let end = e + 10 + rdlen;
    if end > packet.len() {
        return Err(());
    }
    Ok(end)
}

fn parse_options(mut rdata: &[u8], e: &mut Edns) -> Result<(), ()> {
    let mut n = 0;
    while !rdata.is_empty() {
        n += 1;
        if rdata.len() < 4 || n > MAX_OPTIONS {
            return Err(());
        }
        let code = u16::from_be_bytes([rdata[0], rdata[1]]);
        let len = u16::from_be_bytes([rdata[2], rdata[3]]) as usize;
        let data = rdata.get(4..4 + len).ok_or(())?;
        rdata = &rdata[4 + len..];
        match code {
            edns_code::NSID => {
                if e.nsid {
                    return Err(());
                }
                e.nsid = true;
            }
            edns_code::ECS => {
                if e.ecs.is_some() {
                    return Err(());
                }
                e.ecs = Some(parse_ecs(data)?);
            }
            _ => {}
        }
    }
    Ok(())
}

/// RFC 7871 §6: validate and decode an ECS option payload.
fn parse_ecs(data: &[u8]) -> Result<Ecs, ()> {
    if data.len() < 4 {
        return Err(());
    }
    let family = u16::from_be_bytes([data[0], data[1]]);
    let source = data[2];
    let scope = data[3];
    let addr = &data[4..];
    let max = match family {
        1 => 32u8,
        2 => 128u8,
        _ => return Err(()),
    };
    if source > max || scope > max {
        return Err(());
    }
    let need = (source as usize).div_ceil(8);
    if addr.len() != need {
        return Err(());
    }
    // Bits past the source prefix must be zero.
    if !source.is_multiple_of(8)
        && let Some(&last) = addr.last()
    {
        let mask = 0xFFu8 >> (source % 8);
        if last & mask != 0 {
            return Err(());
        }
    }
    let ip = if family == 1 {
        let mut b = [0u8; 4];
        b[..need].copy_from_slice(addr);
        IpAddr::V4(Ipv4Addr::from(b))
    } else {
        let mut b = [0u8; 16];
        b[..need].copy_from_slice(addr);
        IpAddr::V6(Ipv6Addr::from(b))
    };
    Ok(Ecs {
        family,
        source_prefix: source,
        scope_prefix: scope,
        addr: ip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(extra_ar: &[u8], ar: u16) -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        p.extend_from_slice(&ar.to_be_bytes());
        p.extend_from_slice(b"\x03WwW\x07example\x00\x00\x01\x00\x01");
        p.extend_from_slice(extra_ar);
        p
    }

    fn opt(options: &[u8]) -> Vec<u8> {
        let mut o = vec![0, 0, 41, 0x10, 0x00, 0, 0, 0x80, 0];
        o.extend_from_slice(&(options.len() as u16).to_be_bytes());
        o.extend_from_slice(options);
        o
    }

    #[test]
    fn basic() {
        let p = q(&[], 0);
        let r = parse_query(&p).unwrap();
        assert_eq!(r.id, 0x1234);
        assert!(r.rd);
        assert_eq!(r.qtype, 1);
        assert_eq!(r.qname_lc.as_bytes(), b"\x03www\x07example\x00");
        assert_eq!(r.qname, b"\x03WwW\x07example\x00");
        assert!(r.edns.is_none());
    }

    #[test]
    fn edns_and_ecs() {
        let p = q(&opt(&[0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2, 0, 3, 0, 0]), 1);
        let r = parse_query(&p).unwrap();
        let e = r.edns.unwrap();
        assert_eq!(e.udp_payload, 4096);
        assert!(e.dnssec_ok);
        assert!(e.nsid);
        let ecs = e.ecs.unwrap();
        assert_eq!(ecs.source_prefix, 24);
        assert_eq!(ecs.addr, "192.0.2.0".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn malformed_ecs() {
        for bad in [
            &[0u8, 8, 0, 6, 0, 1, 24, 0, 192, 0][..], // too few octets
            &[0, 8, 0, 9, 0, 1, 24, 0, 192, 0, 2, 0, 0], // too many
            &[0, 8, 0, 8, 0, 1, 23, 0, 192, 0, 3],    // bits past prefix
            &[0, 8, 0, 9, 0, 1, 33, 0, 192, 0, 2, 0, 0], // prefix > 32
            &[0, 8, 0, 7, 0, 3, 24, 0, 192, 0, 2],    // family
            &[0, 8, 0, 2, 0, 1],                      // truncated
        ] {
            match parse_query(&q(&opt(bad), 1)) {
                Err(ParseError::FormErr(f)) => assert!(f.edns.is_some(), "{bad:?}"),
                _ => panic!("accepted {bad:?}"),
            }
        }
    }

    #[test]
    fn pointer_in_question_is_formerr() {
        // Found by fuzzing: the question is a pointer into the header.
        let p = [
            0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x02, 0, 1, 0, 1,
        ];
        match parse_query(&p) {
            Err(ParseError::FormErr(f)) => assert_eq!(f.question_end, None),
            _ => panic!("accepted a compressed question"),
        }
        let mut p = p;
        p[2] = 0x28; // opcode 5 (UPDATE): NOTIMP must not echo it either
        match parse_query(&p) {
            Err(ParseError::FormErr(f)) => assert!(f.notimp && f.question_end.is_none()),
            _ => panic!(),
        }
    }

    #[test]
    fn question_name_limits() {
        let with_name = |name: &[u8]| {
            let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
            p.extend_from_slice(name);
            p.extend_from_slice(&[0, 1, 0, 1]);
            p
        };
        // 255 octets (three labels of 63, one of 61, the root): accepted.
        let mut name = Vec::new();
        for (n, c) in [(63, b'A'), (63, b'b'), (63, b'C'), (61, b'd')] {
            name.push(n as u8);
            name.extend(std::iter::repeat_n(c, n));
        }
        name.push(0);
        assert_eq!(name.len(), 255);
        let p = with_name(&name);
        let r = parse_query(&p).unwrap();
        assert_eq!(r.qname, &name[..]);
        assert_eq!(r.qname_lc.as_bytes(), name.to_ascii_lowercase());
        // 257 octets (one more label in front): FORMERR.
        let mut long = vec![1, b'z'];
        long.extend_from_slice(&name);
        assert!(long.len() > 255);
        assert!(matches!(
            parse_query(&with_name(&long)),
            Err(ParseError::FormErr(_))
        ));
        // A label longer than 63, and a name cut short by the packet's end.
        assert!(matches!(
            parse_query(&with_name(b"\x40abc\x00")),
            Err(ParseError::FormErr(_))
        ));
        for cut in 13..p.len() - 4 {
            assert!(
                matches!(parse_query(&p[..cut]), Err(ParseError::FormErr(_))),
                "{cut}"
            );
        }
        // The root name.
        let root = with_name(b"\x00");
        let r = parse_query(&root).unwrap();
        assert_eq!(r.qname_lc.as_bytes(), b"\x00");
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 1u64;
        for len in 0..300 {
            for _ in 0..50 {
                let mut p = Vec::with_capacity(len);
                for _ in 0..len {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    p.push((seed >> 33) as u8);
                }
                if p.len() > 5 {
                    p[4] = 0;
                    p[5] = 1;
                }
                let _ = parse_query(&p);
            }
        }
    }
}
