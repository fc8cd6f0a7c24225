//! Property-style check: `Router::decide` equals a brute-force ranking over
//! every PoP, for random PoP sets, client points, subsets and down sets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use popdns_route::{
    Answer, Client, DecisionKind, Family, Location, PopSpec, Router, RouterSpec, ServiceSpec,
    distance_km,
};

/// xorshift64*: small deterministic PRNG.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Uniform on the sphere.
    fn point(&mut self) -> (f64, f64) {
        let lat = self.range(-1.0, 1.0).asin().to_degrees();
        (lat, self.range(-180.0, 180.0))
    }
    /// Mostly uniform, sometimes clustered or on edge coordinates.
    fn client_point(&mut self, pops: &[PopSpec]) -> (f64, f64) {
        match self.below(10) {
            0 => {
                let p = &pops[self.below(pops.len())];
                (
                    (p.latitude + self.range(-0.5, 0.5)).clamp(-90.0, 90.0),
                    (p.longitude + self.range(-0.5, 0.5)).clamp(-180.0, 180.0),
                )
            }
            1 => {
                let edges = [-90.0, 90.0, 0.0, 88.0, -88.0];
                let lons = [-180.0, 180.0, 0.0, 2.0, 179.999];
                (edges[self.below(5)], lons[self.below(5)])
            }
            _ => self.point(),
        }
    }
}

fn make_pops(rng: &mut Rng, n: usize, clustered: bool) -> Vec<PopSpec> {
    (0..n)
        .map(|i| {
            let (lat, lon) = if clustered && i % 3 != 0 {
                // Dense clusters in a few regions, like a real CDN footprint.
                let centres = [(50.0, 8.0), (39.0, -77.0), (35.0, 139.0), (1.3, 103.8)];
                let c = centres[rng.below(centres.len())];
                (
                    (c.0 + rng.range(-8.0, 8.0)).clamp(-90.0, 90.0),
                    c.1 + rng.range(-12.0, 12.0),
                )
            } else {
                rng.point()
            };
            let ipv4 = if rng.below(8) == 0 {
                vec![]
            } else {
                vec![Ipv4Addr::from(0x0a00_0000 + i as u32)]
            };
            let ipv6 = if rng.below(5) == 0 && !ipv4.is_empty() {
                vec![]
            } else {
                vec![Ipv6Addr::from(0x2001_0db8_u128 << 96 | i as u128)]
            };
            PopSpec {
                name: format!("pop{i}"),
                latitude: lat,
                longitude: lon,
                ipv4,
                ipv6,
            }
        })
        .collect()
}

fn brute(
    pops: &[PopSpec],
    subset: &[usize],
    at: (f64, f64),
    fam: Family,
    up: &[bool],
    k: usize,
) -> (Vec<usize>, bool, bool) {
    let has = |p: usize| match fam {
        Family::V4 => !pops[p].ipv4.is_empty(),
        Family::V6 => !pops[p].ipv6.is_empty(),
    };
    let mut ranked: Vec<(f64, usize)> = subset
        .iter()
        .copied()
        .filter(|&p| has(p))
        .map(|p| (distance_km(at, (pops[p].latitude, pops[p].longitude)), p))
        .collect();
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let order: Vec<usize> = ranked.into_iter().map(|(_, p)| p).collect();
    let alive: Vec<usize> = order.iter().copied().filter(|&p| up[p]).collect();
    if alive.is_empty() {
        let take = order.len().min(k);
        return (order[..take].to_vec(), !order.is_empty(), !order.is_empty());
    }
    let take = alive.len().min(k);
    let chosen = alive[..take].to_vec();
    // Degraded: a down PoP ranks before the last chosen one (or any down
    // PoP when fewer than k were available).
    let degraded = match chosen.last() {
        Some(&last) if take == k => {
            let pos = order.iter().position(|&p| p == last).unwrap_or(0);
            order[..pos].iter().any(|&p| !up[p])
        }
        _ => order.iter().any(|&p| !up[p]),
    };
    (chosen, degraded, false)
}

fn check(n_pops: usize, seed: u64, queries: usize, clustered: bool) {
    let mut rng = Rng(seed);
    let pops = make_pops(&mut rng, n_pops, clustered);
    // Services: all PoPs with answers 1..4, and two random subsets.
    let mut services = Vec::new();
    let mut subsets: Vec<Vec<usize>> = Vec::new();
    for (i, answers) in [1usize, 2, 4].into_iter().enumerate() {
        services.push(ServiceSpec {
            name: format!("all{i}.example"),
            ttl: 20,
            answers,
            pops: None,
        });
        subsets.push((0..n_pops).collect());
    }
    for i in 0..2 {
        let mut sub: Vec<usize> = (0..n_pops).filter(|_| rng.below(3) == 0).collect();
        if sub.is_empty() {
            sub.push(0);
        }
        services.push(ServiceSpec {
            name: format!("sub{i}.example"),
            ttl: 20,
            answers: 1 + i * 2,
            pops: Some(sub.iter().map(|&p| pops[p].name.clone()).collect()),
        });
        subsets.push(sub);
    }
    let router = Router::new(RouterSpec {
        pops: pops.clone(),
        services: services.clone(),
        overrides: vec![],
        local_pop: None,
    })
    .expect("router");

    let mut out = Answer::new();
    let mut up = vec![true; n_pops];
    let mut fallbacks = 0;
    for q in 0..queries {
        // Down sets: none, a few, many, all.
        let mode = rng.below(10);
        for u in up.iter_mut() {
            *u = match mode {
                0..=3 => true,
                4..=6 => rng.below(10) != 0,
                7 | 8 => rng.below(3) == 0,
                _ => rng.below(200) == 0,
            };
        }
        let at = rng.client_point(&pops);
        let si = rng.below(services.len());
        let fam = if rng.below(2) == 0 {
            Family::V4
        } else {
            Family::V6
        };
        let id = router.service_id(&services[si].name).expect("service");
        let client = Client {
            addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 0)),
            prefix: 24,
            location: Some(Location {
                lat: at.0,
                lon: at.1,
                country: None,
                continent: None,
            }),
        };
        let d = router.decide(id, client, fam, &up, &mut out);
        let k = services[si].answers;
        let (want, degraded, fail_open) = brute(&pops, &subsets[si], at, fam, &up, k);
        let got: Vec<usize> = out.pops().collect();
        assert_eq!(
            got, want,
            "query {q}: seed {seed} n {n_pops} service {si} at {at:?} {fam:?}"
        );
        assert_eq!(
            d.kind == DecisionKind::FailOpen,
            fail_open,
            "query {q}: fail-open"
        );
        assert_eq!(
            d.degraded,
            degraded,
            "query {q}: degraded at {at:?} got {got:?} si {si} up {:?} {fam:?} {d:?}",
            up.iter()
                .enumerate()
                .filter(|(_, u)| !**u)
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        );
        if d.degraded {
            fallbacks += 1;
        }
    }
    assert!(fallbacks > 0, "down sets exercised");
}

#[test]
fn ten_pops_match_brute_force() {
    for seed in 1..=20 {
        check(10, seed * 7919, 2_000, false);
    }
}

#[test]
fn thousand_pops_match_brute_force() {
    check(1_000, 42, 4_000, false);
}

#[test]
fn thousand_clustered_pops_match_brute_force() {
    check(1_000, 4242, 4_000, true);
}

#[test]
fn hundred_pops_match_brute_force() {
    for seed in 1..=3 {
        check(100, seed * 104_729, 3_000, seed == 2);
    }
}
