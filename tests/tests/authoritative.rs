//! RFC 1034/1035 authoritative behaviour, end to end: the real binary on
//! loopback, queried with hickory's message types over UDP and TCP.
#![allow(clippy::unwrap_used)]

use popdns_tests::*;

fn server() -> Popdns {
    Popdns::start(&basic_config(""))
}

fn names(rs: &[Record]) -> Vec<String> {
    rs.iter()
        .map(|r| format!("{} {}", r.name, r.record_type()))
        .collect()
}

#[test]
fn positive_answer_is_authoritative_with_ns_in_authority() {
    let s = server();
    let m = s.query("www.cdn.example.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert!(!m.metadata.recursion_available);
    assert_eq!(addrs(&m), vec!["192.0.2.10"]);
    assert_eq!(m.answers[0].ttl, 3600);
    // NSD's default: zone NS in authority, their addresses in additional.
    assert_eq!(
        names(&m.authorities),
        vec!["cdn.example. NS", "cdn.example. NS"]
    );
    assert_eq!(
        names(&m.additionals),
        vec![
            "ns1.cdn.example. A",
            "ns2.cdn.example. A",
            "ns1.cdn.example. AAAA"
        ]
    );
}

#[test]
fn nxdomain_has_soa_with_negative_ttl() {
    let s = server();
    let m = s.query("nope.cdn.example.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.metadata.authoritative);
    assert!(m.answers.is_empty());
    assert_eq!(names(&m.authorities), vec!["cdn.example. SOA"]);
    // min(SOA TTL 3600, MINIMUM 300)
    assert_eq!(m.authorities[0].ttl, 300);
}

#[test]
fn nodata_and_empty_non_terminals() {
    let s = server();
    for (name, t) in [
        ("www.cdn.example.", RecordType::AAAA),
        ("b.cdn.example.", RecordType::A),   // empty non-terminal
        ("a.b.cdn.example.", RecordType::A), // empty non-terminal
    ] {
        let m = s.query(name, t);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
        assert!(m.answers.is_empty(), "{name}");
        assert_eq!(names(&m.authorities), vec!["cdn.example. SOA"], "{name}");
        assert!(m.metadata.authoritative);
    }
    let m = s.query("deep.a.b.cdn.example.", RecordType::A);
    assert_eq!(addrs(&m), vec!["192.0.2.77"]);
}

#[test]
fn wildcards_per_rfc4592() {
    let s = server();
    // Synthesis with the query name as owner.
    let m = s.query("anything.wild.cdn.example.", RecordType::TXT);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(names(&m.answers), vec!["anything.wild.cdn.example. TXT"]);
    // Several labels below the wildcard's parent.
    let m = s.query("x.y.wild.cdn.example.", RecordType::A);
    assert_eq!(addrs(&m), vec!["192.0.2.99"]);
    // Wildcard NODATA.
    let m = s.query("anything.wild.cdn.example.", RecordType::MX);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(names(&m.authorities), vec!["cdn.example. SOA"]);
    // An existing name is not overridden by the wildcard...
    let m = s.query("host.wild.cdn.example.", RecordType::A);
    assert_eq!(addrs(&m), vec!["192.0.2.98"]);
    let m = s.query("host.wild.cdn.example.", RecordType::TXT);
    assert!(m.answers.is_empty());
    // ...and no synthesis below an existing name.
    let m = s.query("below.host.wild.cdn.example.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    // The wildcard's parent itself is an empty non-terminal.
    let m = s.query("wild.cdn.example.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
}

#[test]
fn cname_chains() {
    let s = server();
    let m = s.query("chain1.cdn.example.", RecordType::A);
    assert_eq!(
        names(&m.answers),
        vec![
            "chain1.cdn.example. CNAME",
            "chain2.cdn.example. CNAME",
            "static.cdn.example. A"
        ]
    );
    // CNAME asked for directly is not followed.
    let m = s.query("img.cdn.example.", RecordType::CNAME);
    assert_eq!(names(&m.answers), vec!["img.cdn.example. CNAME"]);
    // Target missing in the zone: NXDOMAIN for the target (RFC 6604).
    let m = s.query("dangling.cdn.example.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(names(&m.answers), vec!["dangling.cdn.example. CNAME"]);
    assert_eq!(names(&m.authorities), vec!["cdn.example. SOA"]);
}

#[test]
fn cname_into_another_served_zone_is_followed_but_not_outside() {
    let s = server();
    let m = s.query("alias.cdn.example.", RecordType::A);
    assert_eq!(
        names(&m.answers),
        vec!["alias.cdn.example. CNAME", "www.elsewhere.test. A"]
    );
    // A target outside every served zone: only the CNAME.
    let zone = TEST_ZONE.replace("www.elsewhere.test.", "www.example.org.");
    let s = Popdns::start_with(&basic_config(""), &[("cdn.example.zone", &zone)]);
    let m = s.query("alias.cdn.example.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(names(&m.answers), vec!["alias.cdn.example. CNAME"]);
}

#[test]
fn delegation_gives_referral_with_glue() {
    let s = server();
    for name in [
        "sub.cdn.example.",
        "host.sub.cdn.example.",
        "ns.sub.cdn.example.",
    ] {
        let m = s.query(name, RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
        assert!(!m.metadata.authoritative, "{name}");
        assert!(m.answers.is_empty(), "{name}");
        assert_eq!(names(&m.authorities), vec!["sub.cdn.example. NS"], "{name}");
        assert_eq!(
            names(&m.additionals),
            vec!["ns.sub.cdn.example. A"],
            "{name}"
        );
    }
    // DS is answered by the parent side of the cut.
    let m = s.query("sub.cdn.example.", RecordType::DS);
    assert!(m.metadata.authoritative);
    assert_eq!(names(&m.authorities), vec!["cdn.example. SOA"]);
}

#[test]
fn outside_every_zone_is_refused() {
    let s = server();
    let m = s.query("www.example.org.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(!m.metadata.authoritative);
    assert!(m.answers.is_empty());
}

#[test]
fn any_gets_one_rrset() {
    let s = server();
    let m = s.query("cdn.example.", RecordType::ANY);
    assert_eq!(names(&m.answers), vec!["cdn.example. SOA"]);
    let m = s.query("static.cdn.example.", RecordType::ANY);
    assert_eq!(names(&m.answers), vec!["static.cdn.example. A"]);
}

#[test]
fn case_of_the_question_is_echoed() {
    let s = server();
    let m = s.query("StAtIc.CdN.ExAmPlE.", RecordType::A);
    assert_eq!(m.queries[0].name().to_ascii(), "StAtIc.CdN.ExAmPlE.");
    assert_eq!(addrs(&m), vec!["192.0.2.80"]);
}

#[test]
fn classes_and_transfer_types() {
    let s = server();
    let mut q = query_msg("www.cdn.example.", RecordType::A, true);
    q.queries[0].set_query_class(DNSClass::CH);
    assert_eq!(s.udp_msg(&q).metadata.response_code, ResponseCode::Refused);
    let mut q = query_msg("www.cdn.example.", RecordType::A, true);
    q.queries[0].set_query_class(DNSClass::HS);
    assert_eq!(s.udp_msg(&q).metadata.response_code, ResponseCode::Refused);
    for t in [RecordType::AXFR, RecordType::IXFR] {
        let q = query_msg("cdn.example.", t, false);
        assert_eq!(s.udp_msg(&q).metadata.response_code, ResponseCode::Refused);
        assert_eq!(s.tcp_msg(&q).metadata.response_code, ResponseCode::Refused);
    }
}

#[test]
fn chaos_identity_names() {
    let s = server();
    for (name, want) in [
        ("id.server.", "test-node-1".to_string()),
        ("hostname.bind.", "test-node-1".to_string()),
        (
            "version.server.",
            format!("popdns {}", env!("CARGO_PKG_VERSION")),
        ),
        (
            "version.bind.",
            format!("popdns {}", env!("CARGO_PKG_VERSION")),
        ),
    ] {
        let mut q = query_msg(name, RecordType::TXT, false);
        q.queries[0].set_query_class(DNSClass::CH);
        let m = s.udp_msg(&q);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
        let RData::TXT(t) = &m.answers[0].data else {
            panic!("not TXT")
        };
        assert_eq!(t.to_string(), want, "{name}");
        assert_eq!(m.answers[0].dns_class, DNSClass::CH);
    }
    let mut q = query_msg("other.bind.", RecordType::TXT, false);
    q.queries[0].set_query_class(DNSClass::CH);
    assert_eq!(s.udp_msg(&q).metadata.response_code, ResponseCode::Refused);
}

#[test]
fn version_queries_can_be_turned_off() {
    let s = Popdns::start(&basic_config("version_queries = false"));
    let mut q = query_msg("version.bind.", RecordType::TXT, false);
    q.queries[0].set_query_class(DNSClass::CH);
    assert_eq!(s.udp_msg(&q).metadata.response_code, ResponseCode::Refused);
}

#[test]
fn nsid_only_when_asked() {
    let s = server();
    let m = s.query("www.cdn.example.", RecordType::A);
    assert!(m.edns.as_ref().unwrap().option(EdnsCode::NSID).is_none());
    let mut q = query_msg("www.cdn.example.", RecordType::A, true);
    q.edns
        .as_mut()
        .unwrap()
        .options_mut()
        .insert(EdnsOption::Unknown(3, vec![]));
    let m = s.udp_msg(&q);
    let opt = m.edns.as_ref().unwrap().option(EdnsCode::NSID).unwrap();
    let bytes: Vec<u8> = match opt {
        EdnsOption::NSID(p) => p.as_ref().to_vec(),
        EdnsOption::Unknown(_, b) => b.clone(),
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(bytes, b"test-node-1");
}

#[test]
fn edns_echo_badvers_and_payload() {
    let s = server();
    // No OPT in the query: none in the answer.
    let m = s.udp_msg(&query_msg("www.cdn.example.", RecordType::A, false));
    assert!(m.edns.is_none());
    // OPT: echoed with our payload size.
    let mut q = query_msg("www.cdn.example.", RecordType::A, true);
    q.edns.as_mut().unwrap().set_max_payload(4096);
    let m = s.udp_msg(&q);
    assert_eq!(m.edns.as_ref().unwrap().max_payload(), 1232);
    // Version 1: BADVERS, no answer.
    let mut q = query_msg("www.cdn.example.", RecordType::A, true);
    q.edns.as_mut().unwrap().set_version(1);
    let m = s.udp_msg(&q);
    // 16 is BADVERS in an OPT context (hickory names it BADSIG).
    assert_eq!(u16::from(m.metadata.response_code), 16);
    assert!(m.answers.is_empty());
    assert_eq!(m.edns.as_ref().unwrap().version(), 0);
}

#[test]
fn truncation_never_splits_an_rrset() {
    let s = server();
    // 3 × ~200-byte TXT: more than 512 without EDNS.
    let m = s.udp_msg(&query_msg("big.cdn.example.", RecordType::TXT, false));
    assert!(m.metadata.truncation);
    assert!(m.answers.is_empty());
    // With EDNS 1232 it fits.
    let m = s.udp_msg(&query_msg("big.cdn.example.", RecordType::TXT, true));
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 3);
    // A client payload below 512 is treated as 512.
    let mut q = query_msg("big.cdn.example.", RecordType::TXT, true);
    q.edns.as_mut().unwrap().set_max_payload(100);
    let raw = s.udp_raw(&q.to_vec().unwrap()).unwrap();
    assert!(raw.len() <= 512);
    let m = Message::from_vec(&raw).unwrap();
    assert!(m.metadata.truncation && m.answers.is_empty());
    // Over TCP the whole answer comes.
    let m = s.tcp_msg(&query_msg("big.cdn.example.", RecordType::TXT, false));
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 3);
}

#[test]
fn formerr_notimp() {
    let s = server();
    // QDCOUNT = 0 and 2.
    let mut raw = query_msg("www.cdn.example.", RecordType::A, false)
        .to_vec()
        .unwrap();
    raw[5] = 0;
    let m = Message::from_vec(&s.udp_raw(&raw).unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    raw[5] = 2;
    let m = Message::from_vec(&s.udp_raw(&raw).unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    // Unknown opcode (3) and UPDATE (5): NOTIMP.
    for op in [3u8, 5] {
        let mut raw = query_msg("www.cdn.example.", RecordType::A, false)
            .to_vec()
            .unwrap();
        raw[2] = (raw[2] & 0x87) | (op << 3);
        let resp = s.udp_raw(&raw).unwrap();
        assert_eq!(resp[3] & 0x0F, 4, "opcode {op}");
        assert_eq!(resp[0..2], raw[0..2]);
    }
}

#[test]
fn tcp_pipelined_queries_on_one_connection() {
    let s = server();
    let mut c = s.tcp();
    let names = [
        "www.cdn.example.",
        "static.cdn.example.",
        "nope.cdn.example.",
    ];
    let mut batch = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let mut q = query_msg(n, RecordType::A, false);
        q.metadata.id = 100 + i as u16;
        let b = q.to_vec().unwrap();
        batch.extend_from_slice(&(b.len() as u16).to_be_bytes());
        batch.extend_from_slice(&b);
    }
    std::io::Write::write_all(&mut c, &batch).unwrap();
    for i in 0..3 {
        let m = Message::from_vec(&tcp_recv(&mut c).unwrap()).unwrap();
        assert_eq!(m.metadata.id, 100 + i as u16);
    }
}

#[test]
fn tcp_idle_connections_are_closed() {
    let s = server(); // idle timeout 2 s
    let mut c = s.tcp();
    c.set_read_timeout(Some(std::time::Duration::from_secs(6)))
        .unwrap();
    let t0 = std::time::Instant::now();
    let mut b = [0u8; 1];
    let n = std::io::Read::read(&mut c, &mut b).unwrap_or(0);
    assert_eq!(n, 0, "expected EOF");
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn tcp_connection_cap() {
    let s = Popdns::start(&basic_config("tcp_max_connections = 2"));
    let _a = s.tcp();
    let _b = s.tcp();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut c = s.tcp();
    tcp_send(
        &mut c,
        &query_msg("www.cdn.example.", RecordType::A, false)
            .to_vec()
            .unwrap(),
    );
    assert!(
        tcp_recv(&mut c).is_none(),
        "third connection must be refused"
    );
    drop(_a);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let m = s.tcp_msg(&query_msg("www.cdn.example.", RecordType::A, false));
    assert_eq!(addrs(&m), vec!["192.0.2.10"]);
}
