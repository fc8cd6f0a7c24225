//! Shared pieces of the popdns fuzz targets: the snapshot the request-path
//! target answers from, and a small, independent reading of raw queries
//! (question, OPT presence) used to check the responses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::OnceLock;

use hickory_proto::op::{Message, MessageType};
use popdns_server::{Snapshot, Transport};

/// The demo zones, served as they ship.
const CDN_ZONE: &str = include_str!("../../zones/cdn.example.zone");
const NET_ZONE: &str = include_str!("../../zones/example.net.zone");

/// A third zone with the less common shapes: wildcards below a delegation,
/// CNAME chains and loops, long TXT, SRV/MX targets in and out of zone,
/// generic RDATA, names that need many compression slots.
const EXTRA_ZONE: &str = r#"$ORIGIN edge.test.
$TTL 120
@           IN SOA ns.edge.test. ops.edge.test. 7 3600 600 86400 30
            IN NS  ns
            IN NS  ns.cdn.example.
            IN MX  5 mx
            IN MX  10 mail.cdn.example.
ns          IN A   192.0.2.250
            IN AAAA 2001:db8:ff::250
mx          IN A   192.0.2.251
*           IN A   192.0.2.252
*.deep      IN CNAME target
target      IN A   192.0.2.253
            IN AAAA 2001:db8:ff::253
            IN TXT "a" "b" "c"
loop1       IN CNAME loop2
loop2       IN CNAME loop1
chain1      IN CNAME chain2
chain2      IN CNAME chain3
chain3      IN CNAME www.cdn.example.
geo         IN CNAME video.cdn.example.
_srv._tcp   IN SRV 0 0 443 target
            IN SRV 1 0 443 www.cdn.example.
child       IN NS  ns.child
            IN NS  ns.elsewhere.invalid.
ns.child    IN A   192.0.2.254
*.child     IN A   192.0.2.1
big         IN TXT "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big         IN TXT "second"
many        IN A   192.0.2.1
many        IN A   192.0.2.2
many        IN A   192.0.2.3
many        IN A   192.0.2.4
many        IN A   192.0.2.5
many        IN A   192.0.2.6
many        IN A   192.0.2.7
many        IN A   192.0.2.8
many        IN AAAA 2001:db8::1
many        IN AAAA 2001:db8::2
many        IN AAAA 2001:db8::3
many        IN AAAA 2001:db8::4
many        IN AAAA 2001:db8::5
many        IN AAAA 2001:db8::6
many        IN AAAA 2001:db8::7
many        IN AAAA 2001:db8::8
many        IN AAAA 2001:db8::9
many        IN AAAA 2001:db8::10
many        IN AAAA 2001:db8::11
many        IN AAAA 2001:db8::12
many        IN AAAA 2001:db8::13
many        IN AAAA 2001:db8::14
many        IN AAAA 2001:db8::15
many        IN AAAA 2001:db8::16
many        IN AAAA 2001:db8::17
many        IN AAAA 2001:db8::18
many        IN AAAA 2001:db8::19
many        IN AAAA 2001:db8::20
many        IN AAAA 2001:db8::21
many        IN AAAA 2001:db8::22
many        IN AAAA 2001:db8::23
many        IN AAAA 2001:db8::24
many        IN AAAA 2001:db8::25
many        IN AAAA 2001:db8::26
many        IN AAAA 2001:db8::27
many        IN AAAA 2001:db8::28
many        IN AAAA 2001:db8::29
many        IN AAAA 2001:db8::30
many        IN AAAA 2001:db8::31
many        IN AAAA 2001:db8::32
many        IN AAAA 2001:db8::33
many        IN AAAA 2001:db8::34
many        IN AAAA 2001:db8::35
many        IN AAAA 2001:db8::36
many        IN AAAA 2001:db8::37
many        IN AAAA 2001:db8::38
many        IN AAAA 2001:db8::39
many        IN AAAA 2001:db8::40
many        IN AAAA 2001:db8::41
many        IN AAAA 2001:db8::42
many        IN AAAA 2001:db8::43
many        IN AAAA 2001:db8::44
many        IN AAAA 2001:db8::45
many        IN AAAA 2001:db8::46
many        IN AAAA 2001:db8::47
many        IN AAAA 2001:db8::48
many        IN AAAA 2001:db8::49
many        IN AAAA 2001:db8::50
many        IN AAAA 2001:db8::51
many        IN AAAA 2001:db8::52
many        IN AAAA 2001:db8::53
many        IN AAAA 2001:db8::54
many        IN AAAA 2001:db8::55
many        IN AAAA 2001:db8::56
many        IN AAAA 2001:db8::57
many        IN AAAA 2001:db8::58
many        IN AAAA 2001:db8::59
many        IN AAAA 2001:db8::60
many        IN AAAA 2001:db8::61
many        IN AAAA 2001:db8::62
many        IN AAAA 2001:db8::63
many        IN AAAA 2001:db8::64
many        IN AAAA 2001:db8::65
many        IN AAAA 2001:db8::66
many        IN AAAA 2001:db8::67
many        IN AAAA 2001:db8::68
many        IN AAAA 2001:db8::69
many        IN AAAA 2001:db8::70
many        IN AAAA 2001:db8::71
many        IN AAAA 2001:db8::72
many        IN AAAA 2001:db8::73
many        IN AAAA 2001:db8::74
many        IN AAAA 2001:db8::75
many        IN AAAA 2001:db8::76
many        IN AAAA 2001:db8::77
many        IN AAAA 2001:db8::78
many        IN AAAA 2001:db8::79
many        IN AAAA 2001:db8::80
unknown     IN TYPE65400 \# 4 0a0b0c0d
caa         IN CAA 0 issue "ca.example"
a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z IN A 192.0.2.9
"#;

/// PoPs: name, latitude, longitude, IPv4, IPv6 (empty = none).
const POPS: &[(&str, f64, f64, &str, &str)] = &[
    ("fra", 50.11, 8.68, "192.0.2.1", "2001:db8:1::1"),
    ("iad", 39.04, -77.49, "198.51.100.1", "2001:db8:2::1"),
    ("sjc", 37.34, -121.89, "203.0.113.1", "2001:db8:3::1"),
    ("sin", 1.35, 103.82, "192.0.2.129", "2001:db8:4::1"),
    ("gru", -23.44, -46.47, "198.51.100.129", ""),
    ("syd", -33.87, 151.21, "203.0.113.129", "2001:db8:6::1"),
    ("nrt", 35.68, 139.69, "192.0.2.161", "2001:db8:7::1"),
    ("jnb", -26.20, 28.05, "", "2001:db8:8::1"),
];

const SERVICES: &str = r#"
[[services]]
name = "www.cdn.example"
ttl = 30
answers = 1

[[services]]
name = "video.cdn.example"
ttl = 30
answers = 2
pops = ["fra", "iad", "sjc", "sin", "syd"]

[[services]]
name = "all.edge.test"
ttl = 5
answers = 8

[[services]]
name = "v6.edge.test"
ttl = 60
answers = 3
pops = ["jnb", "gru", "nrt"]

[[overrides]]
networks = ["10.0.0.0/8", "2001:db8:dead::/48", "192.0.2.128/25"]
pops = ["iad"]

[[overrides]]
networks = ["10.1.0.0/16"]
pops = ["sin", "syd"]

[[overrides]]
countries = ["FR", "au"]
pops = ["fra"]

[[overrides]]
continents = ["SA"]
pops = ["gru", "jnb"]
"#;

/// Client addresses the request target picks from: every region of
/// geoip/test-city.csv, the override networks, unknown and special ones.
pub const ADDRS: &[&str] = &[
    "127.0.0.1",
    "192.0.2.10",
    "192.0.2.70",
    "192.0.2.140",
    "192.0.2.200",
    "198.51.100.7",
    "203.0.113.5",
    "203.0.113.200",
    "198.18.3.4",
    "198.19.0.8",
    "198.19.1.1",
    "10.1.2.3",
    "10.200.0.1",
    "8.8.8.8",
    "::1",
    "2001:db8:1::53",
    "2001:db8:2::1",
    "2001:db8:3::9",
    "2001:db8:4::1",
    "2001:db8:dead::1",
    "::ffff:192.0.2.70",
    "2002:c000:0246::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdb9",
    "64:ff9b::c000:0246",
    "fe80::1",
];

fn build_snapshot() -> Snapshot {
    let dir: PathBuf = std::env::temp_dir().join(format!("popdns-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("zones")).expect("mkdir");
    std::fs::write(dir.join("zones/cdn.example.zone"), CDN_ZONE).expect("zone");
    std::fs::write(dir.join("zones/example.net.zone"), NET_ZONE).expect("zone");
    std::fs::write(dir.join("zones/edge.test.zone"), EXTRA_ZONE).expect("zone");
    let entries = popdns_mmdbgen::parse_csv(popdns_mmdbgen::TEST_CITY_CSV).expect("csv");
    popdns_mmdbgen::write_mmdb(
        &entries,
        popdns_mmdbgen::Schema::GeoIP2City,
        &dir.join("city.mmdb"),
    )
    .expect("city mmdb");
    popdns_mmdbgen::write_mmdb(
        &entries,
        popdns_mmdbgen::Schema::CountryOnly,
        &dir.join("country.mmdb"),
    )
    .expect("country mmdb");
    let mut cfg = String::from(
        "version = 1\n\
         [server]\n\
         listen = [\"127.0.0.1:0\"]\n\
         identity = \"popdns-fuzz-1\"\n\
         local_pop = \"fra\"\n\
         workers = 1\n\
         [zones]\n\
         directory = \"zones\"\n\
         allow_transfer = [\"127.0.0.1/32\"]\n\
         [geoip]\n\
         database = [\"city.mmdb\", \"country.mmdb\"]\n",
    );
    for (name, lat, lon, v4, v6) in POPS {
        cfg.push_str(&format!(
            "[[pops]]\nname = \"{name}\"\nlatitude = {lat}\nlongitude = {lon}\n"
        ));
        if !v4.is_empty() {
            cfg.push_str(&format!("ipv4 = [\"{v4}\"]\n"));
        }
        if !v6.is_empty() {
            cfg.push_str(&format!("ipv6 = [\"{v6}\"]\n"));
        }
    }
    cfg.push_str(SERVICES);
    let path = dir.join("popdns.toml");
    std::fs::write(&path, cfg).expect("config");
    let config = match popdns_config::load(&path) {
        Ok(c) => c,
        Err(es) => panic!("fuzz config does not load: {es:?}"),
    };
    let snap = match popdns_server::build(&config, 1) {
        Ok(s) => s,
        Err(es) => panic!("fuzz snapshot does not build: {es:?}"),
    };
    // Zones are in memory and the GeoIP files are mapped: the folder can go.
    let _ = std::fs::remove_dir_all(&dir);
    snap
}

/// The snapshot every request-path input is answered from, built once.
pub fn snapshot() -> &'static Snapshot {
    static SNAP: OnceLock<Snapshot> = OnceLock::new();
    SNAP.get_or_init(build_snapshot)
}

/// Number of PoPs in the snapshot (for the health bitmap).
pub const NPOPS: usize = POPS.len();

/// The request target's input: a small prefix chooses the client and the
/// transport, the rest is the DNS message.
pub struct RequestInput<'a> {
    pub src: IpAddr,
    pub transport: Transport,
    /// `Some(up)`: answer with this PoP health (`handle_with_health`).
    pub health: Option<[bool; NPOPS]>,
    pub message: &'a [u8],
}

/// Decode the request target's input.
///
/// Byte 0: bit 0 = TCP; bits 1-2 = address mode (0: `ADDRS[byte % len]`,
/// 1: raw IPv4 (4 bytes), 2: raw IPv6 (16 bytes), 3: `ADDRS[byte % len]`
/// as an IPv4-mapped IPv6 address when IPv4); bit 3 = one more byte follows
/// with the PoP health bitmap (bit i = PoP i up).
pub fn decode_request(data: &[u8]) -> Option<RequestInput<'_>> {
    let (&flags, mut rest) = data.split_first()?;
    let transport = if flags & 1 != 0 {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    let pick = |b: u8| -> IpAddr {
        ADDRS[b as usize % ADDRS.len()]
            .parse()
            .expect("ADDRS are addresses")
    };
    let src = match (flags >> 1) & 3 {
        0 => {
            let (&b, r) = rest.split_first()?;
            rest = r;
            pick(b)
        }
        1 => {
            let (a, r) = rest.split_first_chunk::<4>()?;
            rest = r;
            IpAddr::V4(Ipv4Addr::from(*a))
        }
        2 => {
            let (a, r) = rest.split_first_chunk::<16>()?;
            rest = r;
            IpAddr::V6(Ipv6Addr::from(*a))
        }
        _ => {
            let (&b, r) = rest.split_first()?;
            rest = r;
            match pick(b) {
                IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
                v6 => v6,
            }
        }
    };
    let health = if flags & 8 != 0 {
        let (&bits, r) = rest.split_first()?;
        rest = r;
        let mut up = [false; NPOPS];
        for (i, u) in up.iter_mut().enumerate() {
            *u = bits & (1 << i) != 0;
        }
        Some(up)
    } else {
        None
    };
    Some(RequestInput {
        src,
        transport,
        health,
        message: rest,
    })
}

/// A question read from a raw message, independently of popdns-wire.
#[derive(Debug)]
pub struct RawQuestion {
    /// Labels of the name, pointers followed.
    pub labels: Vec<Vec<u8>>,
    pub qtype: u16,
    pub qclass: u16,
}

/// Read the name at `off` (following any compression pointer, with a hop
/// limit), returning its labels and the offset past it where it appears.
fn read_name(msg: &[u8], mut off: usize) -> Option<(Vec<Vec<u8>>, usize)> {
    let mut labels = Vec::new();
    let mut end = None;
    let mut wire_len = 1usize;
    let mut hops = 0;
    loop {
        let b = *msg.get(off)?;
        match b & 0xC0 {
            0x00 if b == 0 => return Some((labels, end.unwrap_or(off + 1))),
            0x00 => {
                let l = b as usize;
                let label = msg.get(off + 1..off + 1 + l)?;
                wire_len += 1 + l;
                if wire_len > 255 {
                    return None;
                }
                labels.push(label.to_vec());
                off += 1 + l;
            }
            0xC0 => {
                let lo = *msg.get(off + 1)?;
                end.get_or_insert(off + 2);
                hops += 1;
                if hops > 127 {
                    return None;
                }
                off = ((b as usize & 0x3F) << 8) | lo as usize;
            }
            _ => return None,
        }
    }
}

/// The first question of a raw message, if it can be read.
pub fn raw_question(msg: &[u8]) -> Option<RawQuestion> {
    let (labels, end) = read_name(msg, 12)?;
    let t = msg.get(end..end + 4)?;
    Some(RawQuestion {
        labels,
        qtype: u16::from_be_bytes([t[0], t[1]]),
        qclass: u16::from_be_bytes([t[2], t[3]]),
    })
}

/// Whether the question name (at offset 12) uses a compression pointer.
pub fn question_has_pointer(msg: &[u8]) -> bool {
    let mut off = 12;
    while let Some(&b) = msg.get(off) {
        match b & 0xC0 {
            0x00 if b == 0 => return false,
            0x00 => off += 1 + b as usize,
            _ => return true,
        }
    }
    false
}

/// `POPDNS_FUZZ_SKIP_QPTR` set: the request target skips queries whose
/// question name holds a compression pointer, to look past that known
/// issue (fuzz/README.md) while it is open.
pub fn skip_question_pointers() -> bool {
    static SKIP: OnceLock<bool> = OnceLock::new();
    *SKIP.get_or_init(|| std::env::var_os("POPDNS_FUZZ_SKIP_QPTR").is_some_and(|v| v != "0"))
}

/// Skip a possibly compressed name without following pointers.
fn skip_name(msg: &[u8], mut off: usize) -> Option<usize> {
    loop {
        let b = *msg.get(off)?;
        match b & 0xC0 {
            0x00 if b == 0 => return Some(off + 1),
            0x00 => off += 1 + b as usize,
            0xC0 => return Some(off + 2),
            _ => return None,
        }
    }
}

/// Whether the raw message carries an OPT record in its additional section
/// before anything unreadable. Lenient on purpose (any owner, any number of
/// questions, answer and authority records skipped), so that it says `true`
/// whenever a stricter parser could have found an OPT.
pub fn raw_has_opt(msg: &[u8]) -> bool {
    let Some(h) = msg.get(..12) else {
        return false;
    };
    let count = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]) as usize;
    let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
    let mut off = 12;
    for _ in 0..qd {
        match skip_name(msg, off) {
            Some(e) if e + 4 <= msg.len() => off = e + 4,
            _ => return false,
        }
    }
    for i in 0..an + ns + ar {
        let Some(e) = skip_name(msg, off) else {
            return false;
        };
        let Some(hdr) = msg.get(e..e + 10) else {
            return false;
        };
        let rtype = u16::from_be_bytes([hdr[0], hdr[1]]);
        let rdlen = u16::from_be_bytes([hdr[8], hdr[9]]) as usize;
        if e + 10 + rdlen > msg.len() {
            return false;
        }
        if i >= an + ns && rtype == 41 {
            return true;
        }
        off = e + 10 + rdlen;
    }
    false
}

/// Check one response of the request path against the query it answers.
/// Panics (a fuzzer crash) on any violation.
pub fn check_response(query: &[u8], resp: &[u8], transport: Transport) {
    let query_opt = raw_has_opt(query);
    match transport {
        Transport::Udp => {
            let max = if query_opt { 1232 } else { 512 };
            assert!(
                resp.len() <= max,
                "UDP response of {} bytes > {max} (query EDNS: {query_opt})",
                resp.len()
            );
        }
        Transport::Tcp => assert!(resp.len() <= 65535, "TCP response of {}", resp.len()),
    }
    let m = match Message::from_vec(resp) {
        Ok(m) => m,
        Err(e) => panic!("response does not parse: {e}\nresponse: {resp:02x?}"),
    };
    let id = u16::from_be_bytes([query[0], query[1]]);
    assert_eq!(m.metadata.id, id, "response ID differs from the query's");
    assert_eq!(m.metadata.message_type, MessageType::Response, "QR not set");
    assert!(resp[2] & 0x80 != 0, "QR bit not set");
    assert!(m.queries.len() <= 1, "more than one question");
    if let Some(rq) = m.queries.first() {
        let Some(qq) = raw_question(query) else {
            panic!("response has a question but the query's cannot be read");
        };
        let rlabels: Vec<&[u8]> = rq.name().iter().collect();
        let same_name = rlabels.len() == qq.labels.len()
            && rlabels
                .iter()
                .zip(&qq.labels)
                .all(|(a, b)| a.eq_ignore_ascii_case(b));
        assert!(
            same_name,
            "question name differs: query {:?} response {:?}",
            qq.labels, rlabels
        );
        assert_eq!(
            u16::from(rq.query_type()),
            qq.qtype,
            "question type differs"
        );
        assert_eq!(
            u16::from(rq.query_class()),
            qq.qclass,
            "question class differs"
        );
    }
    if !query_opt {
        assert!(
            m.edns.is_none(),
            "response has an OPT record but the query had none"
        );
    }
}

/// Build a query message: one question, optional OPT with the given RDATA.
pub fn query_message(
    id: u16,
    flags: [u8; 2],
    name: &[u8],
    qtype: u16,
    opt: Option<(u16, [u8; 4], &[u8])>,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&flags);
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(opt.is_some())]);
    m.extend_from_slice(name);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    if let Some((payload, ttl, rdata)) = opt {
        m.push(0);
        m.extend_from_slice(&41u16.to_be_bytes());
        m.extend_from_slice(&payload.to_be_bytes());
        m.extend_from_slice(&ttl);
        m.extend_from_slice(&(rdata.len().min(0xFFFF) as u16).to_be_bytes());
        m.extend_from_slice(&rdata[..rdata.len().min(0xFFFF)]);
    }
    m
}
