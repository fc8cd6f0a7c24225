//! Zone transfer to a real secondary: NSD (from Debian) transfers a
//! 100k-record zone from popdns over AXFR, serves identical answers, and
//! picks up a new serial through NOTIFY.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use popdns_tests::*;

fn big_zone(serial: u32, last: &str) -> String {
    let mut z = format!(
        "$ORIGIN big.example.\n$TTL 300\n@ IN SOA ns1 hostmaster {serial} 3600 600 604800 60\n  IN NS ns1\n  IN MX 10 mail\nns1 IN A 192.0.2.53\nmail IN A 192.0.2.25\n\
         www IN CNAME h1\n*.wild IN TXT \"wildcard\"\nsub IN NS ns.sub\nns.sub IN A 192.0.2.54\n"
    );
    for i in 0..99_990u32 {
        z.push_str(&format!(
            "h{i} IN A 10.{}.{}.{}\n",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        ));
    }
    z.push_str(&format!("last IN A {last}\n"));
    z
}

fn start_nsd(dir: &TempDir, port: u16, primary: SocketAddr) -> Nsd {
    let d = dir.path().join("nsd");
    std::fs::create_dir_all(&d).unwrap();
    let conf = format!(
        "server:\n  ip-address: 127.0.0.1@{port}\n  username: \"\"\n  zonesdir: \"{d}\"\n  database: \"\"\n  pidfile: \"{d}/nsd.pid\"\n  xfrdfile: \"{d}/xfrd.state\"\n  zonelistfile: \"{d}/zone.list\"\n  chroot: \"\"\n  server-count: 1\n  verbosity: 1\n  logfile: \"{d}/nsd.log\"\n\
         remote-control:\n  control-enable: no\nzone:\n  name: big.example\n  zonefile: \"big.example.zone\"\n  request-xfr: AXFR 127.0.0.1@{} NOKEY\n  allow-notify: 127.0.0.1 NOKEY\n",
        primary.port(),
        d = d.display()
    );
    let cf = d.join("nsd.conf");
    std::fs::write(&cf, conf).unwrap();
    Nsd::start(&cf)
}

fn ask(addr: SocketAddr, name: &str, t: RecordType) -> Option<Message> {
    ask_udp(addr, name, t, Duration::from_millis(500))
}

fn serial(addr: SocketAddr) -> Option<u32> {
    let m = ask(addr, "big.example.", RecordType::SOA)?;
    match &m.answers.first()?.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    }
}

fn sorted(rs: &[Record]) -> Vec<String> {
    let mut v: Vec<String> = rs.iter().map(|r| r.to_string().to_lowercase()).collect();
    v.sort();
    v
}

#[test]
fn nsd_secondary_transfers_and_follows_notify() {
    let nsd_port = free_port();
    let dir = TempDir::new("xfr");
    dir.write("zones/big.example.zone", &big_zone(1, "192.0.2.1"));
    dir.write(
        "popdns.toml",
        &(basic_config("")
            .replace("[zones]\ndirectory = \"zones\"\n", "")
            + &format!(
                "[admin]\nlisten = \"127.0.0.1:0\"\n[zones]\ndirectory = \"zones\"\nallow_transfer = [\"127.0.0.1/32\", \"::1/128\"]\nnotify = [\"127.0.0.1:{nsd_port}\"]\n"
            )),
    );
    let s = Popdns::spawn(dir).unwrap_or_else(|l| panic!("{l}"));
    let nsd_dir = TempDir::new("nsd");
    let _nsd = start_nsd(&nsd_dir, nsd_port, s.addr);
    let nsd_addr: SocketAddr = format!("127.0.0.1:{nsd_port}").parse().unwrap();
    poll_until(Duration::from_secs(30), || serial(nsd_addr) == Some(1)).unwrap_or_else(|| {
        panic!(
            "NSD never transferred the zone: {:?}",
            std::fs::read_to_string(nsd_dir.path().join("nsd/nsd.log"))
        )
    });
    // Identical answers for a sample of names and types.
    let mut names: Vec<(String, RecordType)> = vec![
        ("big.example.".into(), RecordType::SOA),
        ("big.example.".into(), RecordType::NS),
        ("big.example.".into(), RecordType::MX),
        ("www.big.example.".into(), RecordType::A),
        ("x.wild.big.example.".into(), RecordType::TXT),
        ("nope.big.example.".into(), RecordType::A),
        ("h5.big.example.".into(), RecordType::AAAA),
        ("last.big.example.".into(), RecordType::A),
    ];
    for i in (0..99_990).step_by(997) {
        names.push((format!("h{i}.big.example."), RecordType::A));
    }
    for (n, t) in &names {
        let a = ask(s.addr, n, *t).unwrap();
        let b = ask(nsd_addr, n, *t).unwrap();
        assert_eq!(
            a.metadata.response_code, b.metadata.response_code,
            "{n} {t}"
        );
        assert_eq!(sorted(&a.answers), sorted(&b.answers), "{n} {t}");
        assert_eq!(sorted(&a.authorities), sorted(&b.authorities), "{n} {t}");
    }
    // New serial: NOTIFY makes NSD fetch it.
    s.dir
        .write("zones/big.example.zone", &big_zone(2, "192.0.2.2"));
    let (code, body) = s.http("POST", "/reload", None, None);
    assert_eq!(code, 200, "{body}");
    poll_until(Duration::from_secs(20), || serial(nsd_addr) == Some(2))
        .expect("NOTIFY not followed");
    let m = ask(nsd_addr, "last.big.example.", RecordType::A).unwrap();
    assert_eq!(addrs(&m), vec!["192.0.2.2"]);
    assert!(s.wait_log("NOTIFY acknowledged", Duration::from_secs(5)));
}

#[test]
fn axfr_is_multi_message_and_refused_to_others() {
    let dir = TempDir::new("axfr");
    dir.write("zones/big.example.zone", &big_zone(1, "192.0.2.1"));
    dir.write(
        "popdns.toml",
        &(basic_config("").replace("[zones]\ndirectory = \"zones\"\n", "")
            + "[zones]\ndirectory = \"zones\"\nallow_transfer = [\"127.0.0.1/32\"]\n"),
    );
    let s = Popdns::spawn(dir).unwrap();
    let q = query_msg("big.example.", RecordType::AXFR, false)
        .to_vec()
        .unwrap();
    // Allowed from 127.0.0.1: many messages, SOA first and last.
    let mut c = s.tcp();
    tcp_send(&mut c, &q);
    let mut records = 0usize;
    let mut messages = 0usize;
    let mut soas = 0;
    loop {
        let m = Message::from_vec(&tcp_recv(&mut c).expect("transfer cut short")).unwrap();
        messages += 1;
        if records == 0 {
            assert_eq!(m.answers[0].record_type(), RecordType::SOA);
        }
        records += m.answers.len();
        soas += m
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        if soas == 2 {
            assert_eq!(m.answers.last().unwrap().record_type(), RecordType::SOA);
            break;
        }
    }
    assert!(messages > 10, "{messages} messages");
    // 100,000 records, plus the closing SOA.
    assert_eq!(records, 100_001);
    // From 127.0.0.2 (not in allow_transfer): REFUSED.
    let sock = tcp_from("127.0.0.2", s.addr);
    let mut c = sock;
    tcp_send(&mut c, &q);
    let m = Message::from_vec(&tcp_recv(&mut c).unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // Over UDP: always REFUSED.
    let m = s.udp_msg(&query_msg("big.example.", RecordType::AXFR, false));
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}
