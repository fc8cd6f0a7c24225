//! The fast path (a worker's `QueryCache`: stored zone answers and decoded
//! GeoIP records) must give byte-identical answers to the general path.
//!
//! A real snapshot (the demo zones, an extra zone with oversized RRsets,
//! wildcards, CNAME chains and a delegation, 6 PoPs, two geo services, an
//! override and a City-schema test mmdb written by `popdns-mmdbgen`) answers
//! a corpus of queries (every owner and some missing names × many types ×
//! EDNS variants (none, 512, 1232, 4096, NSID, DO, ECS) × letter case ×
//! source address × health), once through `handle_with_health` and
//! repeatedly through `handle_cached` with one cache: cold, warm, in reverse
//! order, and after a new snapshot replaced the old one. Every message and
//! every summary must be the same, and the warm passes must really hit.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use popdns_server::{QueryCache, Snapshot, Transport, handle_cached, handle_with_health};

mod common;

const EXTRA_ZONE: &str = "$ORIGIN big.test.
$TTL 600
@ IN SOA ns1.big.test. hostmaster.big.test. 7 3600 600 604800 120
@ IN NS ns1
@ IN NS ns2.big.test.
ns1 IN A 192.0.2.1
ns1 IN AAAA 2001:db8::1
ns2 IN A 192.0.2.2
many IN A 10.0.0.1
many IN A 10.0.0.2
many IN A 10.0.0.3
many IN A 10.0.0.4
many IN A 10.0.0.5
many IN A 10.0.0.6
many IN A 10.0.0.7
many IN A 10.0.0.8
many IN A 10.0.0.9
many IN A 10.0.0.10
many IN A 10.0.0.11
many IN A 10.0.0.12
many IN A 10.0.0.13
many IN A 10.0.0.14
many IN A 10.0.0.15
many IN A 10.0.0.16
many IN A 10.0.0.17
many IN A 10.0.0.18
many IN A 10.0.0.19
many IN A 10.0.0.20
many IN A 10.0.0.21
many IN A 10.0.0.22
many IN A 10.0.0.23
many IN A 10.0.0.24
many IN AAAA 2001:db8::a1
many IN AAAA 2001:db8::a2
many IN AAAA 2001:db8::a3
many IN AAAA 2001:db8::a4
many IN AAAA 2001:db8::a5
many IN AAAA 2001:db8::a6
many IN AAAA 2001:db8::a7
many IN AAAA 2001:db8::a8
many IN AAAA 2001:db8::a9
many IN AAAA 2001:db8::aa
many IN AAAA 2001:db8::ab
many IN AAAA 2001:db8::ac
many IN AAAA 2001:db8::ad
many IN AAAA 2001:db8::ae
many IN AAAA 2001:db8::af
many IN AAAA 2001:db8::b0
many IN AAAA 2001:db8::b1
many IN AAAA 2001:db8::b2
many IN AAAA 2001:db8::b3
many IN AAAA 2001:db8::b4
many IN AAAA 2001:db8::b5
many IN AAAA 2001:db8::b6
many IN AAAA 2001:db8::b7
many IN AAAA 2001:db8::b8
many IN AAAA 2001:db8::b9
many IN AAAA 2001:db8::ba
many IN AAAA 2001:db8::bb
many IN AAAA 2001:db8::bc
many IN AAAA 2001:db8::bd
many IN AAAA 2001:db8::be
many IN AAAA 2001:db8::bf
many IN AAAA 2001:db8::c0
many IN AAAA 2001:db8::c1
many IN AAAA 2001:db8::c2
many IN AAAA 2001:db8::c3
many IN AAAA 2001:db8::c4
many IN AAAA 2001:db8::c5
many IN AAAA 2001:db8::c6
many IN AAAA 2001:db8::c7
many IN AAAA 2001:db8::c8
many IN AAAA 2001:db8::c9
many IN AAAA 2001:db8::ca
many IN AAAA 2001:db8::cb
many IN AAAA 2001:db8::cc
many IN AAAA 2001:db8::cd
many IN AAAA 2001:db8::ce
many IN AAAA 2001:db8::cf
many IN AAAA 2001:db8::d0
many IN AAAA 2001:db8::d1
many IN AAAA 2001:db8::d2
many IN AAAA 2001:db8::d3
many IN AAAA 2001:db8::d4
many IN AAAA 2001:db8::d5
many IN AAAA 2001:db8::d6
many IN AAAA 2001:db8::d7
many IN AAAA 2001:db8::d8
many IN AAAA 2001:db8::d9
many IN AAAA 2001:db8::da
many IN AAAA 2001:db8::db
many IN AAAA 2001:db8::dc
txt IN TXT \"a-long-text-record-to-fill-the-message-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789\"
txt IN TXT \"b-long-text-record-to-fill-the-message-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789\"
txt IN TXT \"c-long-text-record-to-fill-the-message-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789\"
txt IN TXT \"d-long-text-record-to-fill-the-message-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789\"
mx IN MX 10 ns1
mx IN MX 20 ns2
mx IN MX 30 mail.cdn.example.
chain1 IN CNAME chain2
chain2 IN CNAME many
toweb IN CNAME www.cdn.example.
*.w IN A 192.0.2.200
*.w IN MX 5 ns1
kid IN NS ns.kid
kid IN NS ns.elsewhere.example.
ns.kid IN A 192.0.2.201
ns.kid IN AAAA 2001:db8::201
";

const POPS: &[common::Pop] = common::POPS;

/// The shared PoPs, with `fra` (also the fallback for clients without a
/// location) given 32 IPv4 and 24 IPv6 addresses: its geo answers fit 1232
/// bytes but not 512, so replaying a kept answer section must check the
/// client's limit.
fn pops() -> Vec<common::Pop> {
    let v4: Vec<String> = (1..=32).map(|i| format!("192.0.2.{i}")).collect();
    let v6: Vec<String> = (1..=24).map(|i| format!("2001:db8:1::{i:x}")).collect();
    let v4: &'static str = Box::leak(v4.join(",").into_boxed_str());
    let v6: &'static str = Box::leak(v6.join(",").into_boxed_str());
    let mut p = POPS.to_vec();
    p[0].3 = v4;
    p[0].4 = v6;
    p
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn setup(dir: &Path, serial_bump: bool) -> Snapshot {
    let mut zones = Vec::new();
    for f in ["cdn.example.zone", "example.net.zone"] {
        let text = std::fs::read_to_string(repo_root().join("zones").join(f)).expect("zone");
        zones.push((f, text));
    }
    let extra = if serial_bump {
        EXTRA_ZONE
            .replace(" 7 3600", " 8 3600")
            .replace("10.0.0.1\n", "10.9.9.9\n")
    } else {
        EXTRA_ZONE.to_string()
    };
    zones.push(("big.test.zone", extra));
    common::snapshot(
        dir,
        "fast-path-test",
        &zones,
        &pops(),
        "[[services]]\nname = \"www.cdn.example\"\nttl = 30\nanswers = 1\n\
         [[services]]\nname = \"video.cdn.example\"\nttl = 20\nanswers = 2\n\
         [[overrides]]\nnetworks = [\"10.0.0.0/8\"]\npops = [\"iad\"]\n",
    )
}

#[derive(Clone, Copy)]
enum Edns {
    None,
    Size(u16),
    Nsid,
    Do,
    Ecs(IpAddr, u8),
}

fn wire_name(name: &str, case: usize) -> Vec<u8> {
    let mut m = Vec::new();
    let mut i = 0usize;
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        m.push(label.len() as u8);
        for b in label.bytes() {
            i += 1;
            m.push(match case {
                0 => b.to_ascii_lowercase(),
                1 => b.to_ascii_uppercase(),
                _ if i.is_multiple_of(2) => b.to_ascii_uppercase(),
                _ => b.to_ascii_lowercase(),
            });
        }
    }
    m.push(0);
    m
}

fn query(id: u16, name: &str, case: usize, qtype: u16, qclass: u16, edns: Edns) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    let ar = u8::from(!matches!(edns, Edns::None));
    m.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, ar]);
    m.extend_from_slice(&wire_name(name, case));
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&qclass.to_be_bytes());
    let (size, flags, opt): (u16, u8, Vec<u8>) = match edns {
        Edns::None => return m,
        Edns::Size(s) => (s, 0, Vec::new()),
        Edns::Nsid => (1232, 0, vec![0, 3, 0, 0]),
        Edns::Do => (1232, 0x80, Vec::new()),
        Edns::Ecs(addr, prefix) => (1232, 0, common::ecs_option(addr, prefix)),
    };
    m.push(0);
    m.extend_from_slice(&41u16.to_be_bytes());
    m.extend_from_slice(&size.to_be_bytes());
    m.extend_from_slice(&[0, 0, flags, 0]);
    m.extend_from_slice(&(opt.len() as u16).to_be_bytes());
    m.extend_from_slice(&opt);
    m
}

const NAMES: &[&str] = &[
    "cdn.example",
    "ns1.cdn.example",
    "ns2.cdn.example",
    "mail.cdn.example",
    "www.cdn.example",
    "video.cdn.example",
    "static.cdn.example",
    "img.cdn.example",
    "alias.cdn.example",
    "_sip._udp.cdn.example",
    "x.wild.cdn.example",
    "y.z.wild.cdn.example",
    "wild.cdn.example",
    "deep.a.b.cdn.example",
    "a.b.cdn.example",
    "b.cdn.example",
    "sub.cdn.example",
    "host.sub.cdn.example",
    "ns.sub.cdn.example",
    "nx.cdn.example",
    "nx.deep.a.b.cdn.example",
    "example.net",
    "www.example.net",
    "docs.example.net",
    "nx.example.net",
    "example.org",
    "big.test",
    "ns1.big.test",
    "many.big.test",
    "txt.big.test",
    "mx.big.test",
    "chain1.big.test",
    "toweb.big.test",
    "q.w.big.test",
    "kid.big.test",
    "a.kid.big.test",
    "nothing.big.test",
];

const TYPES: &[u16] = &[1, 28, 2, 6, 15, 16, 33, 5, 255, 12, 43, 99, 65, 0, 41, 252];

fn corpus() -> Vec<(Vec<u8>, IpAddr)> {
    let edns = [
        Edns::None,
        Edns::Size(512),
        Edns::Size(1232),
        Edns::Size(4096),
        Edns::Size(600),
        Edns::Nsid,
        Edns::Do,
        Edns::Ecs(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 0)), 24),
        Edns::Ecs(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 128)), 25),
        Edns::Ecs(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 0)), 24),
        Edns::Ecs(IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)), 0),
        Edns::Ecs(IpAddr::V6("2001:db8:3::".parse().expect("v6")), 48),
        Edns::Ecs(IpAddr::V6("2001:db8:4::".parse().expect("v6")), 56),
    ];
    let srcs = [
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6("2001:db8:2::5".parse().expect("v6")),
    ];
    let mut out = Vec::new();
    let mut id = 1u16;
    for (ni, name) in NAMES.iter().enumerate() {
        for &t in TYPES {
            for (ei, &e) in edns.iter().enumerate() {
                let case = (ni + ei) % 3;
                let src = srcs[(ni + ei + usize::from(t)) % srcs.len()];
                out.push((query(id, name, case, t, 1, e), src));
                id = id.wrapping_add(1);
            }
        }
        // Other classes: CHAOS, ANY, HS.
        for class in [3u16, 255, 4] {
            out.push((query(id, name, 0, 1, class, Edns::Size(1232)), srcs[0]));
            id = id.wrapping_add(1);
        }
    }
    // One address under many source prefixes (the ECS scope depends on it).
    for name in ["www.cdn.example", "video.cdn.example"] {
        for a in [
            "192.0.2.0",
            "192.0.2.64",
            "10.0.0.0",
            "2001:db8:1::",
            "2001:db8:2::",
        ] {
            let addr: IpAddr = a.parse().expect("addr");
            let max = if addr.is_ipv4() { 32 } else { 128 };
            for p in [
                1u8, 7, 8, 9, 16, 20, 24, 25, 26, 28, 32, 40, 48, 56, 64, 128,
            ] {
                if p <= max {
                    out.push((query(id, name, 0, 1, 1, Edns::Ecs(addr, p)), srcs[0]));
                    out.push((query(id, name, 2, 28, 1, Edns::Ecs(addr, p)), srcs[3]));
                    id = id.wrapping_add(1);
                }
            }
        }
    }
    // Geo names from many client networks, with and without ECS.
    for i in 0..=255u8 {
        for name in ["www.cdn.example", "video.cdn.example"] {
            for t in [1u16, 28] {
                let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, i));
                out.push((
                    query(id, name, usize::from(i) % 3, t, 1, Edns::Ecs(a, 24)),
                    srcs[1],
                ));
                let b = IpAddr::V4(Ipv4Addr::new(203, 0, 113, i));
                out.push((query(id, name, 0, t, 1, Edns::Ecs(b, 32)), srcs[0]));
                out.push((query(id, name, 1, t, 1, Edns::None), b));
                id = id.wrapping_add(1);
            }
        }
    }
    out
}

fn compare(
    snap: &Snapshot,
    up: &[bool],
    version: u64,
    cache: &mut QueryCache,
    corpus: &[(Vec<u8>, IpAddr)],
    pass: &str,
) -> usize {
    let mut general = Vec::new();
    let mut fast = Vec::new();
    let mut answered = 0;
    for (i, (packet, src)) in corpus.iter().enumerate() {
        let a = handle_with_health(snap, up, packet, *src, Transport::Udp, &mut general);
        let b = handle_cached(
            snap,
            up,
            version,
            cache,
            packet,
            *src,
            Transport::Udp,
            &mut fast,
        );
        match (a, b) {
            (None, None) => {}
            (Some(a), Some(b)) => {
                answered += 1;
                assert_eq!(
                    &general[..a.len],
                    &fast[..b.len],
                    "{pass}: query {i} ({packet:02x?} from {src}): answers differ"
                );
                assert_eq!(
                    (a.rcode, a.kind, a.qtype, a.ecs, a.bad_option),
                    (b.rcode, b.kind, b.qtype, b.ecs, b.bad_option),
                    "{pass}: query {i}: summaries differ"
                );
                assert_eq!(
                    a.geo
                        .map(|g| (g.service, g.decision, g.pops, g.npops, g.degraded)),
                    b.geo
                        .map(|g| (g.service, g.decision, g.pops, g.npops, g.degraded)),
                    "{pass}: query {i}: geo summaries differ"
                );
            }
            (a, b) => panic!(
                "{pass}: query {i}: general answered {}, fast answered {}",
                a.is_some(),
                b.is_some()
            ),
        }
    }
    answered
}

#[test]
fn fast_path_answers_are_byte_identical_to_the_general_path() {
    let dir = std::env::temp_dir().join(format!("popdns-fast-path-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let snap = setup(&dir, false);
    let corpus = corpus();
    assert!(corpus.len() > 9000, "corpus of {}", corpus.len());
    let mut cache = QueryCache::new();
    let all_up: Vec<bool> = vec![true; POPS.len()];
    let answered = compare(&snap, &all_up, 1, &mut cache, &corpus, "cold");
    assert!(answered > corpus.len() / 2, "{answered} answered");
    let cold = cache.hits();
    compare(&snap, &all_up, 1, &mut cache, &corpus, "warm");
    let warm = cache.hits() - cold;
    // Nearly every zone answer of the warm pass comes from the cache (some
    // slots collide; answers that did not fit are never stored).
    assert!(warm.zone > 3000, "warm pass: {warm:?}");
    assert!(warm.route > 1000, "warm pass: {warm:?}");
    let reversed: Vec<_> = corpus.iter().rev().cloned().collect();
    compare(&snap, &all_up, 1, &mut cache, &reversed, "reversed");
    // Health changes: geo answers avoid down PoPs the same way.
    let some_down = [false, true, false, true, true, false];
    compare(&snap, &some_down, 2, &mut cache, &corpus, "some PoPs down");
    compare(&snap, &[false; 6], 3, &mut cache, &corpus, "all PoPs down");
    compare(&snap, &all_up, 4, &mut cache, &corpus, "all up again");
    // A new snapshot (changed zone): nothing of the old one is served.
    let snap2 = setup(&dir, true);
    compare(&snap2, &all_up, 4, &mut cache, &corpus, "new snapshot");
    // Without the GeoIP-record memo's help either: a fresh cache, decisions
    // made once and replayed.
    let mut fresh = QueryCache::new();
    compare(&snap2, &some_down, 5, &mut fresh, &corpus, "fresh cache");
    compare(
        &snap2,
        &some_down,
        5,
        &mut fresh,
        &corpus,
        "fresh cache, warm",
    );
    // Decisions first made for big-limit queries (their answer sections
    // kept), then replayed to small-limit ones, which must be truncated.
    let mut fresh = QueryCache::new();
    compare(
        &snap2,
        &all_up,
        6,
        &mut fresh,
        &reversed,
        "fresh cache, reversed",
    );
    let _ = std::fs::remove_dir_all(&dir);
}
