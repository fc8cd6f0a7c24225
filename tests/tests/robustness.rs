//! Bad input on the wire and bad zone files: FORMERR or drop, never a crash;
//! the server keeps answering others.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::Duration;

use popdns_tests::*;

fn alive(s: &Popdns) {
    let m = s.query("www.cdn.example.", RecordType::A);
    assert_eq!(addrs(&m), vec!["192.0.2.10"], "server stopped answering");
}

fn header(id: u16, qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
    let mut h = id.to_be_bytes().to_vec();
    h.extend_from_slice(&[0x01, 0x00]);
    for c in [qd, an, ns, ar] {
        h.extend_from_slice(&c.to_be_bytes());
    }
    h
}

#[test]
fn malformed_udp_packets() {
    let s = Popdns::start(&basic_config(""));
    // Shorter than a header: dropped.
    for n in 0..12 {
        assert!(s.udp_raw(&vec![0u8; n]).is_none() || n == 0);
    }
    // A response (QR=1) is never answered.
    let mut resp = query_msg("www.cdn.example.", RecordType::A, false)
        .to_vec()
        .unwrap();
    resp[2] |= 0x80;
    assert!(s.udp_raw(&resp).is_none());
    // Truncated question, compression loop, bogus counts, forward pointer.
    let mut cases: Vec<Vec<u8>> = Vec::new();
    let mut p = header(1, 1, 0, 0, 0);
    p.extend_from_slice(b"\x03www\x03cdn");
    cases.push(p);
    let mut p = header(2, 1, 0, 0, 0);
    p.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
    cases.push(p);
    let mut p = header(3, 1, 0, 0, 60000);
    p.extend_from_slice(b"\x03www\x03cdn\x07example\x00\x00\x01\x00\x01");
    cases.push(p);
    let mut p = header(4, 1, 3, 0, 0);
    p.extend_from_slice(b"\x03www\x03cdn\x07example\x00\x00\x01\x00\x01");
    cases.push(p);
    let mut p = header(5, 1, 0, 0, 1);
    p.extend_from_slice(b"\x03www\x03cdn\x07example\x00\x00\x01\x00\x01");
    p.extend_from_slice(&[0xC0, 40, 0, 41]); // additional name points forward
    cases.push(p);
    // Two OPT records.
    let mut p = header(6, 1, 0, 0, 2);
    p.extend_from_slice(b"\x03www\x03cdn\x07example\x00\x00\x01\x00\x01");
    for _ in 0..2 {
        p.extend_from_slice(&[0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]);
    }
    cases.push(p);
    // A label longer than 63.
    let mut p = header(7, 1, 0, 0, 0);
    p.push(64);
    p.extend_from_slice(&[b'a'; 64]);
    p.extend_from_slice(&[0, 0, 1, 0, 1]);
    cases.push(p);
    for (i, c) in cases.iter().enumerate() {
        let r = s
            .udp_raw(c)
            .unwrap_or_else(|| panic!("case {i}: no answer"));
        assert_eq!(r[0..2], c[0..2], "case {i}: id");
        assert_eq!(r[3] & 0x0F, 1, "case {i}: expected FORMERR");
        alive(&s);
    }
    // Random garbage: whatever happens, the server keeps answering.
    let mut seed = 7u64;
    for len in [12usize, 13, 17, 40, 100, 512, 1500] {
        for _ in 0..30 {
            let mut p = Vec::with_capacity(len);
            for _ in 0..len {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                p.push((seed >> 33) as u8);
            }
            p[2] &= 0x7F;
            let _ = udp_exchange(s.addr, &p, Duration::from_millis(50));
        }
    }
    alive(&s);
}

#[test]
fn malformed_tcp_streams() {
    let s = Popdns::start(&basic_config(""));
    // A length prefix announcing more than is ever sent, then close.
    let mut c = s.tcp();
    c.write_all(&[0xFF, 0xFF, 1, 2, 3]).unwrap();
    drop(c);
    // Garbage that is not DNS: the connection is closed.
    let mut c = s.tcp();
    c.write_all(&[0, 5, 1, 2, 3, 4, 5]).unwrap();
    assert!(tcp_recv(&mut c).is_none());
    // A 64 KiB message: FORMERR (bogus counts) or a clean close, no crash.
    let mut c = s.tcp();
    let mut big = header(9, 1, 0, 0, 0);
    big.resize(65_535, 0x41);
    tcp_send(&mut c, &big);
    if let Some(r) = tcp_recv(&mut c) {
        assert_eq!(r[3] & 0x0F, 1);
    }
    // A zero-length message.
    let mut c = s.tcp();
    c.write_all(&[0, 0]).unwrap();
    assert!(tcp_recv(&mut c).is_none());
    // Half a length prefix, then silence: closed after the idle timeout.
    let mut c = s.tcp();
    c.write_all(&[0]).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    assert!(tcp_recv(&mut c).is_none());
    alive(&s);
    let m = s.tcp_msg(&query_msg("static.cdn.example.", RecordType::A, false));
    assert_eq!(addrs(&m), vec!["192.0.2.80"]);
}

#[test]
fn bad_zone_is_reported_with_file_and_line() {
    let dir = TempDir::new("badzone");
    dir.write("popdns.toml", &basic_config(""));
    let bad = "$TTL 300\n@ IN SOA ns hm 1 2 3 4 5\n  IN NS ns\nns IN A 192.0.2.1\nwww IN A 300.1.2.3\nmx IN MX x\n";
    dir.write("zones/bad.example.zone", bad);
    let cfg = dir.path().join("popdns.toml");
    let (code, out, _) = run_popdns(&["check", "-c", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bad.example.zone:5:"), "{out}");
    assert!(out.contains("bad.example.zone:6:"), "{out}");
    // serve refuses to start and says why.
    match Popdns::spawn(dir) {
        Ok(_) => panic!("started on a bad zone"),
        Err(log) => assert!(log.contains("bad.example.zone:5:"), "{log}"),
    }
}

#[test]
fn zone_semantic_errors() {
    for (zone, needle) in [
        ("$TTL 300\nwww IN A 192.0.2.1\n", "no SOA"),
        (
            "$TTL 300\n@ IN SOA ns hm 1 2 3 4 5\nwww IN CNAME x\nwww IN A 192.0.2.1\n",
            "CNAME and other data",
        ),
        (
            "$TTL 300\n@ IN SOA ns hm 1 2 3 4 5\nwww.other.test. IN A 192.0.2.1\n",
            "outside the zone",
        ),
        (
            "$TTL 300\n@ IN SOA ns hm 1 2 3 4 5\nw IN BOGUS x\n",
            "unknown record type",
        ),
        ("$TTL 300\n@ IN SOA ns hm ( 1 2 3 4 5\n", "unbalanced"),
        (
            "$TTL 300\n@ IN SOA ns hm 1 2 3 4 5\nold IN DNAME new.example.\nwww.old IN A 192.0.2.1\n",
            "so www.old.z.example. cannot have data (RFC 6672",
        ),
        (
            "$TTL 300\n@ IN SOA ns hm 1 2 3 4 5\nold IN DNAME a.example.\nold IN DNAME b.example.\n",
            "more than one DNAME",
        ),
        (
            "$TTL 300\n@ IN SOA ns hm 1 2 3 4 5\nold IN DNAME a.example.\nold IN CNAME b.example.\n",
            "CNAME and other data",
        ),
        (
            "$TTL 300\n@ IN SOA ns hm 1 2 3 4 5\nk IN DNSKEY 257 3 8 !!notbase64\n",
            "DNSKEY: bad base64",
        ),
    ] {
        let dir = TempDir::new("sem");
        dir.write("popdns.toml", &basic_config(""));
        dir.write("zones/z.example.zone", zone);
        let cfg = dir.path().join("popdns.toml");
        let (code, out, _) = run_popdns(&["check", "-c", cfg.to_str().unwrap()]);
        assert_eq!(code, 1, "{zone}: {out}");
        assert!(out.contains(needle), "{zone}: {out}");
        assert!(out.contains("z.example.zone"), "{out}");
    }
}

#[test]
fn check_accepts_good_config_and_rejects_unknown_keys() {
    let dir = TempDir::new("check");
    dir.write("popdns.toml", &basic_config(""));
    dir.write("zones/cdn.example.zone", TEST_ZONE);
    let cfg = dir.path().join("popdns.toml");
    let (code, out, _) = run_popdns(&["check", "-c", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK"), "{out}");
    dir.write("popdns.toml", &basic_config("colour = \"blue\""));
    let (code, out, _) = run_popdns(&["check", "-c", cfg.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        out.contains("popdns.toml:7:") && out.contains("colour"),
        "{out}"
    );
}

#[test]
fn generic_rdata_and_include() {
    let dir = TempDir::new("generic");
    dir.write("popdns.toml", &basic_config(""));
    dir.write(
        "zones/g.example.zone",
        "$ORIGIN g.example.\n$TTL 300\n@ IN SOA ns hm 1 2 3 4 5\n@ IN NS ns\nns IN A 192.0.2.1\n\
         x IN TYPE65400 \\# 4 0A000001\n$INCLUDE inc.txt sub\nafter IN A 192.0.2.3\n",
    );
    dir.write("zones/inc.txt", "host IN A 192.0.2.2\n");
    let s = Popdns::spawn(dir).unwrap();
    let m = s.query("x.g.example.", RecordType::Unknown(65400));
    assert_eq!(m.answers.len(), 1);
    let m = s.query("host.sub.g.example.", RecordType::A);
    assert_eq!(addrs(&m), vec!["192.0.2.2"]);
    // The origin reverts after $INCLUDE.
    let m = s.query("after.g.example.", RecordType::A);
    assert_eq!(addrs(&m), vec!["192.0.2.3"]);
}

#[test]
fn cli_version_and_help() {
    let (code, out, _) = run_popdns(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.contains(env!("CARGO_PKG_VERSION")));
    let (code, out, _) = run_popdns(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("serve") && out.contains("check"));
}
