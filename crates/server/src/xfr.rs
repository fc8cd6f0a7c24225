//! Outgoing zone transfers (AXFR, RFC 5936) over TCP, in as many messages
//! as the zone needs, and NOTIFY messages (RFC 1996).

use std::net::IpAddr;

use popdns_wire::{Query, Section, Writer, class, rcode, rtype};
use popdns_zone::Zone;

/// Largest transfer message (leaves room below the 64 KiB TCP limit).
const XFR_MESSAGE: usize = 16_384;

/// Is `ip` inside one of `nets`?
pub fn allowed(ip: IpAddr, nets: &[(IpAddr, u8)]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    nets.iter().any(|&(net, len)| match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    })
}

/// Build the AXFR answer for `zone` as a list of DNS messages: SOA, every
/// other record (glue included; names synthesised for services carry only
/// what the zone file holds), SOA again.
pub fn axfr_messages(zone: &Zone, q: &Query<'_>) -> Vec<Vec<u8>> {
    let apex = zone.apex();
    let Some(soa) = apex.get(rtype::SOA) else {
        return Vec::new();
    };
    let Some(soa_rdata) = soa.rdatas().next() else {
        return Vec::new();
    };
    let mut msgs: Vec<Vec<u8>> = Vec::new();
    let mut buf = Vec::with_capacity(XFR_MESSAGE);
    let mut w = Writer::new(
        &mut buf,
        q.packet,
        Some(q.question_end),
        q.id,
        q.opcode,
        q.rd,
        q.cd,
        XFR_MESSAGE,
        0,
    );
    w.try_push_rr(
        Section::Answer,
        &apex.name,
        rtype::SOA,
        class::IN,
        soa.ttl,
        soa_rdata,
    );
    let mut records: Vec<(&[u8], u16, u32, &[u8])> = Vec::with_capacity(zone.records + 1);
    for node in zone.nodes() {
        for set in node.rrsets.iter() {
            if std::ptr::eq(node, apex) && set.rtype == rtype::SOA {
                continue;
            }
            for rd in set.rdatas() {
                records.push((&node.name, set.rtype, set.ttl, rd));
            }
        }
    }
    records.push((&apex.name, rtype::SOA, soa.ttl, soa_rdata));
    for (owner, t, ttl, rd) in records {
        if !w.try_push_rr(Section::Answer, owner, t, class::IN, ttl, rd) {
            w.finish(rcode::NOERROR, true, None);
            msgs.push(std::mem::take(&mut buf));
            buf.reserve(XFR_MESSAGE);
            w = Writer::new(
                &mut buf,
                q.packet,
                None,
                q.id,
                q.opcode,
                q.rd,
                q.cd,
                XFR_MESSAGE,
                0,
            );
            w.try_push_rr(Section::Answer, owner, t, class::IN, ttl, rd);
        }
    }
    w.finish(rcode::NOERROR, true, None);
    msgs.push(buf);
    msgs
}

/// A NOTIFY message for `zone` (RFC 1996 §3.7: SOA in the answer).
pub fn notify_message(zone: &Zone, id: u16) -> Vec<u8> {
    let apex = zone.apex();
    let mut q = Vec::with_capacity(512);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x24, 0x00]); // opcode NOTIFY, AA
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(&apex.name);
    q.extend_from_slice(&rtype::SOA.to_be_bytes());
    q.extend_from_slice(&class::IN.to_be_bytes());
    if let Some(soa) = apex.get(rtype::SOA)
        && let Some(rd) = soa.rdatas().next()
    {
        q[7] = 1; // ANCOUNT
        q.extend_from_slice(&[0xC0, 12]);
        q.extend_from_slice(&rtype::SOA.to_be_bytes());
        q.extend_from_slice(&class::IN.to_be_bytes());
        q.extend_from_slice(&soa.ttl.to_be_bytes());
        q.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        q.extend_from_slice(rd);
    }
    q
}
