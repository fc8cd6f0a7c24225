//! `Router::decide` must not allocate: counted with a wrapping global
//! allocator (this file holds a single test so nothing else allocates
//! concurrently).

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

use popdns_route::{
    Answer, Client, Family, Location, OverrideSpec, PopSpec, Router, RouterSpec, ServiceSpec,
};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn decide_does_not_allocate() {
    let pops: Vec<PopSpec> = (0..300)
        .map(|i| PopSpec {
            name: format!("p{i}"),
            latitude: ((i * 37) % 180) as f64 - 89.5,
            longitude: ((i * 101) % 360) as f64 - 179.5,
            ipv4: vec![Ipv4Addr::from(0x0a00_0000 + i as u32)],
            ipv6: if i % 4 == 0 {
                vec![]
            } else {
                vec![Ipv6Addr::from(i as u128)]
            },
        })
        .collect();
    let router = Router::new(RouterSpec {
        pops,
        services: vec![ServiceSpec {
            name: "s".into(),
            ttl: 30,
            answers: 3,
            pops: None,
        }],
        overrides: vec![OverrideSpec {
            networks: vec![(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)), 8)],
            countries: vec![*b"DE"],
            continents: vec![*b"EU"],
            pops: vec!["p1".into(), "p2".into()],
        }],
        local_pop: Some("p5".into()),
    })
    .expect("router");
    let id = router.service_id("s").expect("service");
    let mut up = vec![true; 300];
    for (i, u) in up.iter_mut().enumerate() {
        *u = i % 3 != 0;
    }
    let all_down = vec![false; 300];
    let mut out = Answer::new();
    let clients = [
        (IpAddr::V4(Ipv4Addr::new(10, 1, 0, 0)), None),
        (
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 0)),
            Some((50.0, 8.0, *b"DE")),
        ),
        (
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 0)),
            Some((-33.0, 151.0, *b"AU")),
        ),
        (IpAddr::V6(Ipv6Addr::LOCALHOST), None),
    ];
    let before = ALLOCS.load(Ordering::Relaxed);
    let mut total = 0;
    for (addr, loc) in clients {
        let client = Client {
            addr,
            prefix: 24,
            location: loc.map(|(lat, lon, country)| Location {
                lat,
                lon,
                country: Some(country),
                continent: Some(*b"EU"),
            }),
        };
        for fam in [Family::V4, Family::V6] {
            for health in [&up[..], &all_down[..], &[]] {
                router.decide(id, client, fam, health, &mut out);
                total += out.len();
            }
        }
    }
    let after = ALLOCS.load(Ordering::Relaxed);
    assert!(total > 0);
    assert_eq!(after - before, 0, "decide allocated");
}
