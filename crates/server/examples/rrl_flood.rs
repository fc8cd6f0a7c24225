//! Memory of response rate limiting under a flood from many sources,
//! simulated in-process: 1M distinct IPv4 /24s and 1M IPv6 /56s hit one
//! worker's limiter; RSS is read before and after.
//!
//! `cargo run --release -p popdns-server --example rrl_flood`

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use popdns_server::{Rrl, RrlConfig, Verdict};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    // A positive answer for www.example. A.
    let mut resp = vec![0, 1, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0];
    resp.extend_from_slice(b"\x03www\x07example\x00\x00\x01\x00\x01");
    let mut rrl = Rrl::new(RrlConfig {
        responses_per_second: 20.0,
        slip: 2,
        ipv4_prefix: 24,
        ipv6_prefix: 56,
        table_size: 65_536,
    });
    let before = rss_kib();
    let mut counts = [0u64; 3];
    for round in 0..3u32 {
        for i in 0..1_000_000u32 {
            let v4 = IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(256) ^ (round << 28)));
            let v6 = IpAddr::V6(Ipv6Addr::from(
                u128::from(i) << 72 | u128::from(round) << 100,
            ));
            for ip in [v4, v6] {
                let k = match rrl.check(ip, &resp) {
                    Verdict::Send => 0,
                    Verdict::Drop => 1,
                    Verdict::Slip => 2,
                };
                counts[k] += 1;
            }
        }
    }
    let after = rss_kib();
    println!(
        "6,000,000 responses to 6,000,000 distinct source prefixes: sent {}, dropped {}, slipped {}",
        counts[0], counts[1], counts[2]
    );
    println!(
        "RSS before {before} KiB, after {after} KiB (table: 65,536 buckets x 16 bytes = 1 MiB, fixed)"
    );
}
