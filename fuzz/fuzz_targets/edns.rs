//! EDNS option parsing (NSID, ECS per RFC 7871 §6, unknown options): the
//! input becomes the RDATA of the OPT record of an otherwise valid query, so
//! every execution reaches the option parser.
//!
//! Input: byte 0 = EDNS version, byte 1 = DO flag byte, bytes 2-3 = UDP
//! payload size, the rest = option bytes.

#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use popdns_wire::{ParseError, parse_query};

const QNAME: &[u8] = b"\x03www\x03cdn\x07example\x00";

fuzz_target!(|data: &[u8]| {
    let (head, options) = data.split_at(data.len().min(4));
    let mut h = [0u8; 4];
    h[..head.len()].copy_from_slice(head);
    let payload = u16::from_be_bytes([h[2], h[3]]);
    let ttl = [0, h[0], h[1], 0];
    let msg = popdns_fuzz::query_message(0x4242, [1, 0], QNAME, 1, Some((payload, ttl, options)));
    match parse_query(&msg) {
        Ok(q) => {
            assert_eq!(q.id, 0x4242);
            assert_eq!(q.qname, QNAME);
            let e = q.edns.expect("OPT record not reported");
            assert_eq!(e.udp_payload, payload);
            assert_eq!(e.version, h[0]);
            assert_eq!(e.dnssec_ok, h[1] & 0x80 != 0);
            if let Some(ecs) = e.ecs {
                let (max, bits): (u8, u128) = match ecs.addr {
                    IpAddr::V4(a) => (32, u128::from(u32::from(a)) << 96),
                    IpAddr::V6(a) => (128, u128::from(a)),
                };
                assert_eq!(ecs.family, if max == 32 { 1 } else { 2 });
                assert!(ecs.source_prefix <= max && ecs.scope_prefix <= max);
                let host = bits.checked_shl(ecs.source_prefix.into()).unwrap_or(0);
                assert_eq!(host, 0, "ECS address has bits past the source prefix");
            }
        }
        Err(ParseError::FormErr(fe)) => {
            assert_eq!(fe.id, 0x4242);
            assert!(
                fe.bad_option,
                "FORMERR on a valid message without bad_option"
            );
            let e = fe.edns.expect("FORMERR for a bad option must keep the OPT");
            assert!(e.ecs.is_none());
        }
        Err(ParseError::Drop) => panic!("a query was dropped"),
    }
});
