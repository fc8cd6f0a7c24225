//! The request handler: packet in, packet out, no I/O.
//!
//! `handle` is a pure function of the snapshot, the packet and the client
//! address. The UDP and TCP loops, the fuzz target and the unit tests all
//! call it the same way.

use std::net::IpAddr;

use popdns_wire::{
    Edns, OptOut, ParseError, Query, Section, Writer, class, opcode, parse_query, rcode, rtype,
};

use crate::cache::QueryCache;
use crate::geo::GeoInfo;
use crate::snapshot::Snapshot;

/// RFC 8914 info codes.
const EDE_NOT_AUTHORITATIVE: u16 = 20;
const EDE_NOT_SUPPORTED: u16 = 21;

/// Largest UDP payload we send (RFC 9715 / DNS flag day 2020 advice).
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// Transport the query came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// How the answer was made, for metrics and the query log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Zone,
    Geo,
    Chaos,
    Refused,
    FormErr,
    Other,
}

/// Summary of one handled query, for metrics and the query log.
#[derive(Clone, Copy, Debug)]
pub struct Handled {
    pub len: usize,
    pub rcode: u16,
    pub kind: Kind,
    /// Query type (0 when the question could not be read).
    pub qtype: u16,
    /// The query carried a valid ECS option.
    pub ecs: bool,
    /// FORMERR because of a malformed EDNS option (e.g. ECS).
    pub bad_option: bool,
    /// Set for geo answers.
    pub geo: Option<GeoInfo>,
}

fn udp_limit(edns: Option<&Edns>) -> usize {
    match edns {
        Some(e) => e.udp_payload.clamp(512, MAX_UDP_PAYLOAD) as usize,
        None => 512,
    }
}

fn opt_for<'a>(snap: &'a Snapshot, edns: Option<&Edns>) -> Option<OptOut<'a>> {
    edns.map(|e| OptOut {
        udp_payload: MAX_UDP_PAYLOAD,
        dnssec_ok: e.dnssec_ok,
        nsid: e.nsid.then_some(&snap.identity[..]),
        ecs: e.ecs.map(|ecs| (ecs, 0)),
        ede: None,
    })
}

/// Answer one DNS message with every PoP considered up. Returns `None`
/// when the packet gets no answer.
pub fn handle(
    snap: &Snapshot,
    packet: &[u8],
    src: IpAddr,
    transport: Transport,
    out: &mut Vec<u8>,
) -> Option<Handled> {
    handle_with_health(snap, &[], packet, src, transport, out)
}

/// Answer one DNS message; `up[pop]` is the health of each PoP (missing
/// entries count as up).
pub fn handle_with_health(
    snap: &Snapshot,
    up: &[bool],
    packet: &[u8],
    src: IpAddr,
    transport: Transport,
    out: &mut Vec<u8>,
) -> Option<Handled> {
    handle_inner(snap, up, None, packet, src, transport, out)
}

/// [`handle_with_health`] with a worker's memo of earlier work: the same
/// bytes out for every packet (see [`QueryCache`]), faster for repeated
/// questions. The UDP workers answer through this.
///
/// `health_version` names the contents of `up`: the caller must pass a
/// different value whenever `up` may hold different flags than in an
/// earlier call with the same cache (the UDP worker counts health table
/// swaps).
#[allow(clippy::too_many_arguments)]
pub fn handle_cached(
    snap: &Snapshot,
    up: &[bool],
    health_version: u64,
    cache: &mut QueryCache,
    packet: &[u8],
    src: IpAddr,
    transport: Transport,
    out: &mut Vec<u8>,
) -> Option<Handled> {
    cache.snap_id = snap.cache_id;
    cache.health_version = health_version;
    handle_inner(snap, up, Some(cache), packet, src, transport, out)
}

fn handle_inner(
    snap: &Snapshot,
    up: &[bool],
    cache: Option<&mut QueryCache>,
    packet: &[u8],
    src: IpAddr,
    transport: Transport,
    out: &mut Vec<u8>,
) -> Option<Handled> {
    // Matched by reference: the parsed query (with its name buffer) stays
    // where `parse_query` wrote it instead of being copied out.
    let parsed = parse_query(packet);
    let q = match &parsed {
        Ok(q) => q,
        Err(ParseError::Drop) => return None,
        Err(ParseError::FormErr(fe)) => {
            let fe = *fe;
            let max = if transport == Transport::Tcp {
                u16::MAX as usize
            } else {
                udp_limit(fe.edns.as_ref())
            };
            let opt = fe.edns.as_ref().map(|e| OptOut {
                udp_payload: MAX_UDP_PAYLOAD,
                dnssec_ok: e.dnssec_ok,
                nsid: None,
                ecs: None,
                ede: None,
            });
            let reserve = opt.map_or(0, |o| o.wire_len());
            let w = Writer::new(
                out,
                packet,
                fe.question_end,
                fe.id,
                fe.opcode,
                fe.rd,
                false, // NSD does not copy CD either (no DNSSEC here)
                max,
                reserve,
            );
            let rc = if fe.notimp {
                rcode::NOTIMP
            } else {
                rcode::FORMERR
            };
            let len = w.finish(rc, false, opt);
            let qtype = fe
                .question_end
                .and_then(|e| packet.get(e - 4..e - 2))
                .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
            return Some(Handled {
                len,
                rcode: rc,
                kind: Kind::FormErr,
                qtype,
                ecs: false,
                bad_option: fe.bad_option,
                geo: None,
            });
        }
    };
    Some(answer(snap, up, cache, q, src, transport, out))
}

fn answer(
    snap: &Snapshot,
    up: &[bool],
    mut cache: Option<&mut QueryCache>,
    q: &Query<'_>,
    src: IpAddr,
    transport: Transport,
    out: &mut Vec<u8>,
) -> Handled {
    let max = if transport == Transport::Tcp {
        u16::MAX as usize
    } else {
        udp_limit(q.edns.as_ref())
    };
    let mut opt = opt_for(snap, q.edns.as_ref());
    let reserve = opt.map_or(0, |o| o.wire_len());
    let mut w = Writer::new(
        out,
        q.packet,
        Some(q.question_end),
        q.id,
        q.opcode,
        q.rd,
        false, // CD is not copied (as NSD; no DNSSEC here)
        max,
        reserve,
    );
    let has_ecs = q.edns.is_some_and(|e| e.ecs.is_some());
    let done = |w: Writer<'_>, rc: u16, aa: bool, kind: Kind, opt: Option<OptOut<'_>>| {
        let len = w.finish(rc, aa, opt);
        Handled {
            len,
            rcode: rc,
            kind,
            qtype: q.qtype,
            ecs: has_ecs,
            bad_option: false,
            geo: None,
        }
    };
    // RFC 6891 §6.1.3: only version 0.
    if let Some(e) = &q.edns
        && e.version > 0
    {
        if let Some(o) = opt.as_mut() {
            o.nsid = None;
            o.ecs = None;
        }
        return done(w, rcode::BADVERS, false, Kind::FormErr, opt);
    }
    debug_assert_eq!(q.opcode, opcode::QUERY);
    match q.qtype {
        rtype::OPT => return done(w, rcode::FORMERR, false, Kind::FormErr, opt),
        rtype::AXFR | rtype::IXFR => return done(w, rcode::REFUSED, false, Kind::Refused, opt),
        rtype::MAILA | rtype::MAILB => return done(w, rcode::NOTIMP, false, Kind::Other, opt),
        _ => {}
    }
    if q.qclass == class::CH {
        let (rc, aa) = chaos(snap, q, &mut w);
        if rc == rcode::REFUSED
            && let Some(o) = opt.as_mut()
        {
            o.ede = Some(EDE_NOT_SUPPORTED);
        }
        return done(w, rc, aa, Kind::Chaos, opt);
    }
    if q.qclass != class::IN {
        if let Some(o) = opt.as_mut() {
            o.ede = Some(if q.qclass == class::ANY {
                EDE_NOT_AUTHORITATIVE
            } else {
                EDE_NOT_SUPPORTED
            });
        }
        return done(w, rcode::REFUSED, false, Kind::Refused, opt);
    }
    let qlc = q.qname_lc.as_bytes();
    // One hash of the name for the service table and the answer cache.
    let hash = popdns_wire::name_hash(qlc);
    // Service names lie inside a served zone (checked when the snapshot is
    // built), so the zone lookup can wait.
    if (q.qtype == rtype::A || q.qtype == rtype::AAAA)
        && let Some(geo) = snap.geo.as_ref()
        && let Some(svc) = geo.service_hashed(hash, qlc)
    {
        let (info, scope) = geo.answer(svc, q, src, up, snap.degraded_ttl, cache, &mut w);
        if let (Some(o), Some(s)) = (opt.as_mut(), scope)
            && let Some((ecs, _)) = o.ecs
        {
            o.ecs = Some((ecs, s));
        }
        let mut h = done(w, rcode::NOERROR, true, Kind::Geo, opt);
        h.geo = Some(info);
        return h;
    }
    // A stored answer for this name and type under this snapshot was made
    // by the zone path below (REFUSED answers are never stored), so it is
    // what that path would write again.
    // Answers over IPv6 order NS glue differently (AAAA first), so they are
    // stored apart: the top bit of the snapshot id (a counter from 1) says v6.
    let v6 = src.is_ipv6();
    let memo_key = snap.cache_id | (u64::from(v6) << 63);
    if let Some(c) = cache.as_deref_mut()
        && let Some(hit) = c.get(memo_key, hash, qlc, q.qtype)
        && w.push_body(hit.body, hit.counts)
    {
        let (rc, aa) = (hit.rcode, hit.aa);
        c.zone_hits += 1;
        return done(w, rc, aa, Kind::Zone, opt);
    }
    let Some(zone) = snap.zones.find(qlc) else {
        if let Some(o) = opt.as_mut() {
            o.ede = Some(EDE_NOT_AUTHORITATIVE);
        }
        return done(w, rcode::REFUSED, false, Kind::Refused, opt);
    };
    let (rc, aa, _) = snap.zones.answer(zone, q.qname, qlc, q.qtype, v6, &mut w);
    if let Some(c) = cache {
        c.put(memo_key, hash, qlc, q.qtype, rc, aa, &w);
    }
    done(w, rc, aa, Kind::Zone, opt)
}

const ID_SERVER: &[u8] = b"\x02id\x06server\x00";
const HOSTNAME_BIND: &[u8] = b"\x08hostname\x04bind\x00";
const VERSION_SERVER: &[u8] = b"\x07version\x06server\x00";
const VERSION_BIND: &[u8] = b"\x07version\x04bind\x00";

/// CHAOS-class identity queries (RFC 4892).
fn chaos(snap: &Snapshot, q: &Query<'_>, w: &mut Writer<'_>) -> (u16, bool) {
    let n = q.qname_lc.as_bytes();
    let text: &[u8] = if n == ID_SERVER || n == HOSTNAME_BIND {
        &snap.identity
    } else if (n == VERSION_SERVER || n == VERSION_BIND) && snap.version_queries {
        snap.version.as_bytes()
    } else {
        return (rcode::REFUSED, false);
    };
    if q.qtype == rtype::TXT || q.qtype == rtype::ANY {
        let mut rd = [0u8; 256];
        let len = text.len().min(255);
        rd[0] = len as u8;
        rd[1..=len].copy_from_slice(&text[..len]);
        w.push_rr(
            Section::Answer,
            q.qname,
            rtype::TXT,
            class::CH,
            0,
            &rd[..=len],
        );
    }
    (rcode::NOERROR, true)
}
