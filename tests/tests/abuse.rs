//! Abuse limits end to end: TCP connection caps per client prefix,
//! slow-loris cut-off, queries per connection, response rate limiting.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use popdns_tests::*;

fn works(c: &mut TcpStream) -> bool {
    let q = query_msg("www.cdn.example.", RecordType::A, false)
        .to_vec()
        .unwrap();
    let mut v = (q.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(&q);
    if c.write_all(&v).is_err() {
        return false;
    }
    tcp_recv(c).is_some()
}

#[test]
fn per_client_connection_cap() {
    let s = Popdns::start(&basic_config("tcp_max_connections_per_client = 3"));
    let mut open: Vec<TcpStream> = (0..3).map(|_| tcp_from("127.0.0.1", s.addr)).collect();
    for c in &mut open {
        assert!(works(c));
    }
    // A fourth from the same /24 is refused...
    let mut c = tcp_from("127.0.0.9", s.addr);
    assert!(
        !works(&mut c),
        "fourth connection from 127.0.0.0/24 must be refused"
    );
    // ...while another /24 is served.
    let mut other = tcp_from("127.0.1.1", s.addr);
    assert!(works(&mut other));
    // Closing one frees a slot.
    drop(open.pop());
    std::thread::sleep(Duration::from_millis(200));
    let mut again = tcp_from("127.0.0.1", s.addr);
    assert!(works(&mut again));
}

#[test]
fn slow_loris_is_cut() {
    let s = Popdns::start(
        &basic_config("tcp_query_timeout = \"500ms\"")
            .replace("tcp_idle_timeout = \"2s\"", "tcp_idle_timeout = \"10s\""),
    );
    let mut c = s.tcp();
    let q = query_msg("www.cdn.example.", RecordType::A, false)
        .to_vec()
        .unwrap();
    let mut v = (q.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(&q);
    let t0 = Instant::now();
    let mut cut = false;
    for b in v {
        if c.write_all(&[b]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(150));
        if t0.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    // Either a write failed, or the read sees the close without an answer.
    if !cut {
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        assert!(
            tcp_recv(&mut c).is_none(),
            "a slow-loris query was answered"
        );
    }
    assert!(t0.elapsed() < Duration::from_secs(4));
    // An honest client is still served.
    let m = s.tcp_msg(&query_msg("www.cdn.example.", RecordType::A, false));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
}

#[test]
fn queries_per_connection_cap() {
    let s = Popdns::start(&basic_config("tcp_max_queries_per_connection = 5"));
    let mut c = s.tcp();
    for _ in 0..6 {
        tcp_send(
            &mut c,
            &query_msg("www.cdn.example.", RecordType::A, false)
                .to_vec()
                .unwrap(),
        );
    }
    for i in 0..5 {
        assert!(tcp_recv(&mut c).is_some(), "answer {i}");
    }
    assert!(
        tcp_recv(&mut c).is_none(),
        "sixth query must not be answered"
    );
}

fn flood(src: &str, to: SocketAddr, n: usize) -> (usize, usize) {
    let sock = UdpSocket::bind(format!("{src}:0")).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let q = query_msg("www.cdn.example.", RecordType::A, false)
        .to_vec()
        .unwrap();
    for _ in 0..n {
        sock.send_to(&q, to).unwrap();
    }
    let (mut full, mut truncated) = (0, 0);
    let mut buf = [0u8; 1500];
    while let Ok((len, _)) = sock.recv_from(&mut buf) {
        let m = Message::from_vec(&buf[..len]).unwrap();
        if m.metadata.truncation {
            assert!(m.answers.is_empty());
            truncated += 1;
        } else {
            full += 1;
        }
    }
    (full, truncated)
}

#[test]
fn rrl_limits_one_prefix_and_serves_another() {
    let cfg = basic_config("") + "[rrl]\nenabled = true\nresponses_per_second = 10\nslip = 2\n";
    let s = Popdns::start(&cfg);
    let (full, truncated) = flood("127.0.0.1", s.addr, 300);
    assert!(full <= 20, "{full} full answers to a flood at 10/s");
    assert!(truncated >= 100, "{truncated} slipped (TC) answers");
    // Another prefix meanwhile gets normal answers.
    let (full2, tc2) = flood("127.0.1.1", s.addr, 10);
    assert_eq!((full2, tc2), (10, 0));
    // TCP is never rate limited.
    let m = s.tcp_msg(&query_msg("www.cdn.example.", RecordType::A, false));
    assert_eq!(addrs(&m), vec!["192.0.2.10"]);
}
