//! `Router::decide` cost for 10 vs 1 000 PoPs at random client locations,
//! plus the build cost of 1 000 PoPs × 10 services.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use popdns_route::{Answer, Client, Family, Location, PopSpec, Router, RouterSpec, ServiceSpec};

/// xorshift64*: small deterministic PRNG.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next() >> 11) as f64 / (1u64 << 53) as f64)
    }
    /// Uniform on the sphere.
    fn point(&mut self) -> (f64, f64) {
        (
            self.range(-1.0, 1.0).asin().to_degrees(),
            self.range(-180.0, 180.0),
        )
    }
}

fn spec(n: usize, services: usize, rng: &mut Rng) -> RouterSpec {
    let pops = (0..n)
        .map(|i| {
            let (lat, lon) = rng.point();
            PopSpec {
                name: format!("pop{i}"),
                latitude: lat,
                longitude: lon,
                ipv4: vec![Ipv4Addr::from(0x0a00_0000 + i as u32)],
                ipv6: vec![Ipv6Addr::from(0x2001_0db8_u128 << 96 | i as u128)],
            }
        })
        .collect::<Vec<_>>();
    let services = (0..services)
        .map(|s| ServiceSpec {
            name: format!("svc{s}.example"),
            ttl: 30,
            answers: 1 + s % 3,
            // Half the services use a distinct subset (distinct tables).
            pops: (s % 2 == 1).then(|| {
                pops.iter()
                    .enumerate()
                    .filter(|(i, _)| (i + s) % 3 != 0)
                    .map(|(_, p)| p.name.clone())
                    .collect()
            }),
        })
        .collect();
    RouterSpec {
        pops,
        services,
        overrides: vec![],
        local_pop: None,
    }
}

fn clients(rng: &mut Rng, n: usize) -> Vec<Client> {
    (0..n)
        .map(|_| {
            let (lat, lon) = rng.point();
            Client {
                addr: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 0)),
                prefix: 24,
                location: Some(Location {
                    lat,
                    lon,
                    country: Some(*b"DE"),
                    continent: Some(*b"EU"),
                }),
            }
        })
        .collect()
}

fn bench_decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    for n in [10usize, 1000] {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ n as u64);
        let router = Router::new(spec(n, 2, &mut rng)).expect("router");
        let stats = router.table_stats();
        eprintln!(
            "{n} PoPs: {} tables, {} KiB, mean candidates/cell {:.1}",
            stats.tables,
            stats.heap_bytes / 1024,
            stats.max_mean_candidates
        );
        let svc = router.service_id("svc0.example").expect("service");
        let cl = clients(&mut rng, 4096);
        let up = vec![true; n];
        let mut out = Answer::new();
        let mut i = 0usize;
        group.bench_function(format!("{n}_pops"), |b| {
            b.iter(|| {
                i = (i + 1) & 4095;
                black_box(router.decide(svc, black_box(cl[i]), Family::V4, &up, &mut out))
            })
        });
        // With 10% of PoPs down (occasional full-scan fallback).
        let up: Vec<bool> = (0..n).map(|p| p % 10 != 3).collect();
        group.bench_function(format!("{n}_pops_10pct_down"), |b| {
            b.iter(|| {
                i = (i + 1) & 4095;
                black_box(router.decide(svc, black_box(cl[i]), Family::V4, &up, &mut out))
            })
        });
    }
    group.finish();
}

fn bench_build(c: &mut Criterion) {
    let mut rng = Rng(7);
    let s = spec(1000, 10, &mut rng);
    let t = Instant::now();
    let r = Router::new(s.clone()).expect("router");
    eprintln!(
        "build 1000 PoPs x 10 services: {:?} ({} tables, {} KiB)",
        t.elapsed(),
        r.table_stats().tables,
        r.table_stats().heap_bytes / 1024
    );
    // Worst case: every service has its own subset and IPv6 is missing on
    // some PoPs, so each (service, family) needs its own table (20 tables).
    let mut worst = spec(1000, 10, &mut rng);
    for (i, p) in worst.pops.iter_mut().enumerate() {
        if i % 7 == 0 {
            p.ipv6.clear();
        }
    }
    let names: Vec<String> = worst.pops.iter().map(|p| p.name.clone()).collect();
    for (si, svc) in worst.services.iter_mut().enumerate() {
        svc.pops = Some(
            names
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 11 != si)
                .map(|(_, n)| n.clone())
                .collect(),
        );
    }
    let t = Instant::now();
    let r = Router::new(worst).expect("router");
    eprintln!(
        "build 1000 PoPs x 10 distinct subsets: {:?} ({} tables, {} KiB)",
        t.elapsed(),
        r.table_stats().tables,
        r.table_stats().heap_bytes / 1024
    );
    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    group.bench_function("1000_pops_10_services", |b| {
        b.iter(|| black_box(Router::new(black_box(s.clone())).expect("router")))
    });
    group.finish();
}

criterion_group!(benches, bench_decide, bench_build);
criterion_main!(benches);
