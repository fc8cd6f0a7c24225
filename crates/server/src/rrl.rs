//! Response Rate Limiting (as in BIND, Knot and NSD), for UDP only.
//!
//! Each UDP worker owns one fixed-size table of token buckets (no lock, and
//! memory bounded by `table_size` however many source addresses are seen).
//! A bucket is keyed by (client prefix, response class, name): identical
//! positive answers are keyed by query name and type, negative answers
//! (NXDOMAIN/NODATA) and errors by class alone, so a random-subdomain flood
//! from one prefix shares one bucket. A colliding key takes the slot over.
//! Over the limit a response is dropped, except every `slip`-th, which is
//! sent truncated (TC=1, no records) so a real client behind the prefix
//! retries over TCP, which is never limited.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::time::Instant;

/// RRL settings (per worker: the rate is divided by the number of workers).
#[derive(Clone, Copy, Debug)]
pub struct RrlConfig {
    pub responses_per_second: f64,
    pub slip: u32,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    pub table_size: usize,
}

/// What to do with a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Send,
    Drop,
    Slip,
}

#[derive(Clone, Copy, Default)]
struct Bucket {
    key: u64,
    tokens: f32,
    last_ms: u32,
}

/// One worker's limiter.
pub struct Rrl {
    cfg: RrlConfig,
    table: Box<[Bucket]>,
    start: Instant,
    limited: u32,
}

fn prefix_key(ip: IpAddr, v4: u8, v6: u8) -> u128 {
    match ip {
        IpAddr::V4(a) => {
            let m = if v4 == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(v4.min(32)))
            };
            u128::from(u32::from(a) & m)
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(a4) => prefix_key(IpAddr::V4(a4), v4, v6),
            None => {
                let m = if v6 == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(v6.min(128)))
                };
                (u128::from(a) & m) | 1
            }
        },
    }
}

impl Rrl {
    pub fn new(cfg: RrlConfig) -> Rrl {
        Rrl {
            cfg,
            table: vec![Bucket::default(); cfg.table_size.max(1)].into_boxed_slice(),
            start: Instant::now(),
            limited: 0,
        }
    }

    /// Decide for the response in `resp` (a complete DNS message) to `client`.
    pub fn check(&mut self, client: IpAddr, resp: &[u8]) -> Verdict {
        let now_ms = self.start.elapsed().as_millis() as u32;
        self.check_at(client, resp, now_ms)
    }

    fn check_at(&mut self, client: IpAddr, resp: &[u8], now_ms: u32) -> Verdict {
        let mut h = rustc_hash::FxHasher::default();
        prefix_key(client, self.cfg.ipv4_prefix, self.cfg.ipv6_prefix).hash(&mut h);
        let rcode = resp.get(3).map_or(0, |b| b & 0x0F);
        let ancount = resp
            .get(6..8)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
        match (rcode, ancount) {
            (0, n) if n > 0 => {
                // Positive answer: keyed by query name (lowercase) and type.
                0u8.hash(&mut h);
                let mut off = 12usize;
                while let Some(&l) = resp.get(off) {
                    if l == 0 || l & 0xC0 != 0 {
                        break;
                    }
                    for &c in resp.get(off + 1..off + 1 + l as usize).unwrap_or(&[]) {
                        c.to_ascii_lowercase().hash(&mut h);
                    }
                    off += 1 + l as usize;
                }
                resp.get(off + 1..off + 3).hash(&mut h);
            }
            (0 | 3, _) => 1u8.hash(&mut h), // NODATA / NXDOMAIN
            (rc, _) => (2u8, rc).hash(&mut h),
        }
        let key = h.finish() | 1;
        let slot = (key as usize) % self.table.len();
        let rate = self.cfg.responses_per_second as f32;
        let b = &mut self.table[slot];
        if b.key != key {
            *b = Bucket {
                key,
                tokens: rate,
                last_ms: now_ms,
            };
        } else {
            let dt = now_ms.wrapping_sub(b.last_ms) as f32 / 1000.0;
            b.tokens = (b.tokens + dt * rate).min(rate);
            b.last_ms = now_ms;
        }
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Verdict::Send;
        }
        self.limited = self.limited.wrapping_add(1);
        if self.cfg.slip > 0 && self.limited.is_multiple_of(self.cfg.slip) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }
}

/// Turn a response into its truncated form: header and question, TC=1, no
/// records. Returns the new length.
pub fn slip(resp: &mut [u8], len: usize) -> usize {
    if len < 12 {
        return len;
    }
    let qd = u16::from_be_bytes([resp[4], resp[5]]);
    let mut end = 12usize;
    if qd == 1 {
        while let Some(&l) = resp.get(end) {
            if l == 0 || l & 0xC0 != 0 {
                break;
            }
            end += 1 + l as usize;
        }
        end = (end + 5).min(len);
    }
    resp[2] |= 0x02;
    resp[6..12].fill(0);
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(rcode: u8, an: u16) -> Vec<u8> {
        let mut r = vec![0, 1, 0x84, rcode, 0, 1];
        r.extend_from_slice(&an.to_be_bytes());
        r.extend_from_slice(&[0, 0, 0, 0]);
        r.extend_from_slice(b"\x03www\x07example\x00\x00\x01\x00\x01");
        r
    }

    #[test]
    fn limits_per_prefix_and_refills() {
        let mut r = Rrl::new(RrlConfig {
            responses_per_second: 5.0,
            slip: 2,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            table_size: 1024,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let a2: IpAddr = "192.0.2.77".parse().unwrap();
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        let p = resp(0, 1);
        let mut sent = 0;
        let mut slipped = 0;
        for i in 0..100 {
            let who = if i % 2 == 0 { a } else { a2 };
            match r.check_at(who, &p, 0) {
                Verdict::Send => sent += 1,
                Verdict::Slip => slipped += 1,
                Verdict::Drop => {}
            }
        }
        assert_eq!(sent, 5, "same /24 shares the bucket");
        assert_eq!(slipped, 47);
        assert_eq!(r.check_at(other, &p, 0), Verdict::Send);
        // One second later: refilled.
        assert_eq!(r.check_at(a, &p, 1000), Verdict::Send);
    }

    #[test]
    fn slip_truncates() {
        let mut p = resp(0, 3);
        let n = p.len();
        p.extend_from_slice(&[1, 2, 3, 4]);
        let len = slip(&mut p, n + 4);
        assert_eq!(len, n);
        assert_eq!(p[2] & 0x02, 0x02);
        assert_eq!(&p[6..12], &[0; 6]);
    }
}
