//! Unit tests of the decision rules.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::*;

fn pop(name: &str, lat: f64, lon: f64) -> PopSpec {
    let n = name.bytes().fold(0u8, |a, b| a.wrapping_add(b));
    PopSpec {
        name: name.into(),
        latitude: lat,
        longitude: lon,
        ipv4: vec![Ipv4Addr::new(192, 0, 2, n)],
        ipv6: vec![Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(n))],
    }
}

fn service(name: &str, answers: usize, pops: Option<&[&str]>) -> ServiceSpec {
    ServiceSpec {
        name: name.into(),
        ttl: 30,
        answers,
        pops: pops.map(|p| p.iter().map(|s| s.to_string()).collect()),
    }
}

/// Paris, London, New York, Tokyo, Sydney.
fn world() -> Vec<PopSpec> {
    vec![
        pop("par", 48.86, 2.35),
        pop("lon", 51.51, -0.13),
        pop("nyc", 40.71, -74.0),
        pop("tyo", 35.68, 139.69),
        pop("syd", -33.87, 151.21),
    ]
}

fn spec() -> RouterSpec {
    RouterSpec {
        pops: world(),
        services: vec![service("cdn.example", 1, None)],
        overrides: vec![],
        local_pop: None,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn at(lat: f64, lon: f64) -> Client {
    Client {
        addr: ip("198.51.100.0"),
        prefix: 24,
        location: Some(Location {
            lat,
            lon,
            country: None,
            continent: None,
        }),
    }
}

fn with_geo(mut c: Client, country: &[u8; 2], continent: &[u8; 2]) -> Client {
    if let Some(l) = c.location.as_mut() {
        l.country = Some(*country);
        l.continent = Some(*continent);
    }
    c
}

fn names(r: &Router, a: &Answer) -> Vec<String> {
    a.pops().map(|p| r.pop(p).name.clone()).collect()
}

fn run(r: &Router, svc: &str, c: Client, fam: Family, up: &[bool]) -> (Vec<String>, Decision) {
    let id = r.service_id(svc).expect("service");
    let mut a = Answer::new();
    let d = r.decide(id, c, fam, up, &mut a);
    (names(r, &a), d)
}

const MADRID: (f64, f64) = (40.42, -3.70);
const BOSTON: (f64, f64) = (42.36, -71.06);

#[test]
fn geo_nearest() {
    let r = Router::new(spec()).expect("router");
    let (n, d) = run(&r, "cdn.example", at(MADRID.0, MADRID.1), Family::V4, &[]);
    assert_eq!(n, ["par"]);
    assert_eq!(d.kind, DecisionKind::Geo);
    assert!(!d.degraded);
    assert_eq!(d.override_index, None);
    let (n, _) = run(&r, "cdn.example", at(-37.8, 145.0), Family::V4, &[]);
    assert_eq!(n, ["syd"]);
}

#[test]
fn answers_two_in_order() {
    let mut s = spec();
    s.services[0].answers = 2;
    let r = Router::new(s).expect("router");
    let (n, _) = run(&r, "cdn.example", at(MADRID.0, MADRID.1), Family::V4, &[]);
    assert_eq!(n, ["par", "lon"]);
    let (n, _) = run(&r, "cdn.example", at(BOSTON.0, BOSTON.1), Family::V6, &[]);
    assert_eq!(n, ["nyc", "lon"]);
}

#[test]
fn addresses_of_family() {
    let mut s = spec();
    s.services[0].answers = 2;
    s.pops[0].ipv4.push(Ipv4Addr::new(203, 0, 113, 1));
    let r = Router::new(s).expect("router");
    let id = r.service_id("cdn.example").expect("service");
    let mut a = Answer::new();
    r.decide(id, at(MADRID.0, MADRID.1), Family::V4, &[], &mut a);
    let addrs: Vec<IpAddr> = r.addresses(&a, Family::V4).collect();
    assert_eq!(addrs.len(), 3);
    assert!(addrs.iter().all(IpAddr::is_ipv4));
    assert_eq!(addrs[1], ip("203.0.113.1"));
    let addrs: Vec<IpAddr> = r.addresses(&a, Family::V6).collect();
    assert_eq!(addrs.len(), 2);
}

#[test]
fn aaaa_skips_pops_without_v6() {
    let mut s = spec();
    s.services[0].answers = 2;
    s.pops[0].ipv6.clear(); // par has no IPv6
    let r = Router::new(s).expect("router");
    let (n, d) = run(&r, "cdn.example", at(MADRID.0, MADRID.1), Family::V6, &[]);
    assert_eq!(n, ["lon", "nyc"]);
    assert!(!d.degraded);
    let (n, _) = run(&r, "cdn.example", at(MADRID.0, MADRID.1), Family::V4, &[]);
    assert_eq!(n, ["par", "lon"]);
}

#[test]
fn a_skips_pops_without_v4() {
    let mut s = spec();
    s.pops[0].ipv4.clear();
    let r = Router::new(s).expect("router");
    let (n, _) = run(&r, "cdn.example", at(MADRID.0, MADRID.1), Family::V4, &[]);
    assert_eq!(n, ["lon"]);
}

#[test]
fn no_pop_of_family_gives_empty_answer() {
    let mut s = spec();
    for p in &mut s.pops {
        p.ipv6.clear();
    }
    let r = Router::new(s).expect("router");
    let (n, d) = run(&r, "cdn.example", at(MADRID.0, MADRID.1), Family::V6, &[]);
    assert!(n.is_empty());
    assert_ne!(d.kind, DecisionKind::FailOpen);
}

#[test]
fn down_pop_skipped_and_degraded() {
    let mut s = spec();
    s.services[0].answers = 2;
    let r = Router::new(s).expect("router");
    let up = [false, true, true, true, true];
    let (n, d) = run(&r, "cdn.example", at(MADRID.0, MADRID.1), Family::V4, &up);
    assert_eq!(n, ["lon", "nyc"]);
    assert!(d.degraded);
    assert_eq!(d.kind, DecisionKind::Geo);
    // A down PoP that would not have been answered does not degrade.
    let up = [true, true, true, false, true];
    let (n, d) = run(&r, "cdn.example", at(MADRID.0, MADRID.1), Family::V4, &up);
    assert_eq!(n, ["par", "lon"]);
    assert!(!d.degraded);
}

#[test]
fn fail_open_when_all_down() {
    let mut s = spec();
    s.services[0].answers = 2;
    let r = Router::new(s).expect("router");
    let up = [false; 5];
    let (n, d) = run(&r, "cdn.example", at(MADRID.0, MADRID.1), Family::V4, &up);
    assert_eq!(n, ["par", "lon"]);
    assert_eq!(d.kind, DecisionKind::FailOpen);
    assert!(d.degraded);
}

#[test]
fn fail_open_considers_only_family_and_subset() {
    let mut s = spec();
    s.pops[0].ipv6.clear();
    s.services
        .push(service("eu.example", 1, Some(&["par", "lon"])));
    let r = Router::new(s).expect("router");
    // Subset {par, lon}; par has no v6, lon is down -> all v6 candidates down.
    let up = [true, false, true, true, true];
    let (n, d) = run(&r, "eu.example", at(MADRID.0, MADRID.1), Family::V6, &up);
    assert_eq!(n, ["lon"]);
    assert_eq!(d.kind, DecisionKind::FailOpen);
    // For A, par is up: no fail-open.
    let (n, d) = run(&r, "eu.example", at(MADRID.0, MADRID.1), Family::V4, &up);
    assert_eq!(n, ["par"]);
    assert_eq!(d.kind, DecisionKind::Geo);
}

#[test]
fn service_subset_respected() {
    let mut s = spec();
    s.services
        .push(service("asia.example", 2, Some(&["syd", "tyo"])));
    let r = Router::new(s).expect("router");
    let (n, _) = run(&r, "asia.example", at(MADRID.0, MADRID.1), Family::V4, &[]);
    assert_eq!(n, ["tyo", "syd"]);
}

fn override_spec() -> RouterSpec {
    let mut s = spec();
    s.services[0].answers = 2;
    s.services
        .push(service("us.example", 1, Some(&["nyc", "lon"])));
    s.overrides = vec![
        // 0: country FR -> tyo
        OverrideSpec {
            countries: vec![*b"fr"],
            pops: vec!["tyo".into()],
            ..Default::default()
        },
        // 1: continent EU + country ES -> syd, nyc
        OverrideSpec {
            continents: vec![*b"EU"],
            countries: vec![*b"ES"],
            pops: vec!["syd".into(), "nyc".into()],
            ..Default::default()
        },
        // 2: broad network -> lon
        OverrideSpec {
            networks: vec![(ip("198.51.0.0"), 16)],
            pops: vec!["lon".into()],
            ..Default::default()
        },
        // 3: specific network -> nyc (listed after the broad one)
        OverrideSpec {
            networks: vec![(ip("198.51.100.0"), 24)],
            pops: vec!["nyc".into()],
            ..Default::default()
        },
        // 4: continent EU again (first override wins) and a mapped v6 network
        OverrideSpec {
            continents: vec![*b"EU"],
            networks: vec![(ip("::ffff:203.0.113.0"), 120), (ip("2001:db8::"), 32)],
            pops: vec!["tyo".into()],
            ..Default::default()
        },
    ];
    s
}

#[test]
fn network_override_most_specific_wins() {
    let r = Router::new(override_spec()).expect("router");
    let c = with_geo(at(MADRID.0, MADRID.1), b"FR", b"EU");
    let (n, d) = run(&r, "cdn.example", c, Family::V4, &[]);
    assert_eq!(d.kind, DecisionKind::Override);
    assert_eq!(d.override_index, Some(3));
    assert_eq!(d.override_prefix, Some(24));
    assert_eq!(d.scope_prefix(24), 24);
    // nyc first, then the rest by distance from Madrid.
    assert_eq!(n, ["nyc", "par"]);
    // Another /24 inside the /16 gets the broad override.
    let mut c2 = c;
    c2.addr = ip("198.51.7.0");
    let (n, d) = run(&r, "cdn.example", c2, Family::V4, &[]);
    assert_eq!(d.override_index, Some(2));
    assert_eq!(d.override_prefix, Some(16));
    assert_eq!(d.scope_prefix(24), 16);
    assert_eq!(n, ["lon", "par"]);
}

#[test]
fn network_longer_than_client_prefix_not_matched() {
    let r = Router::new(override_spec()).expect("router");
    let mut c = at(MADRID.0, MADRID.1);
    c.prefix = 20; // client revealed only a /20: the /24 override can't apply
    c.addr = ip("198.51.96.0");
    let (_, d) = run(&r, "cdn.example", c, Family::V4, &[]);
    assert_eq!(d.override_index, Some(2));
}

#[test]
fn network_before_country_before_continent() {
    let r = Router::new(override_spec()).expect("router");
    // Network beats country.
    let c = with_geo(at(MADRID.0, MADRID.1), b"FR", b"EU");
    let (_, d) = run(&r, "cdn.example", c, Family::V4, &[]);
    assert_eq!(d.override_index, Some(3));
    // No network: country FR (override 0) even though override 1 (EU) is... later anyway;
    let mut c = with_geo(at(MADRID.0, MADRID.1), b"fr", b"EU");
    c.addr = ip("192.0.2.0");
    let (n, d) = run(&r, "cdn.example", c, Family::V4, &[]);
    assert_eq!(d.override_index, Some(0));
    assert_eq!(d.override_prefix, None);
    assert_eq!(n, ["tyo", "par"]);
    // Country ES is in override 1, which beats continent EU of override 1/4.
    let mut c = with_geo(at(MADRID.0, MADRID.1), b"ES", b"XX");
    c.addr = ip("192.0.2.0");
    let (_, d) = run(&r, "cdn.example", c, Family::V4, &[]);
    assert_eq!(d.override_index, Some(1));
    // Continent only: first override listing EU.
    let mut c = with_geo(at(MADRID.0, MADRID.1), b"DE", b"eu");
    c.addr = ip("192.0.2.0");
    let (n, d) = run(&r, "cdn.example", c, Family::V4, &[]);
    assert_eq!(d.override_index, Some(1));
    assert_eq!(n, ["syd", "nyc"]);
}

#[test]
fn country_beats_continent_of_earlier_override() {
    let mut s = spec();
    s.overrides = vec![
        OverrideSpec {
            continents: vec![*b"EU"],
            pops: vec!["syd".into()],
            ..Default::default()
        },
        OverrideSpec {
            countries: vec![*b"DE"],
            pops: vec!["tyo".into()],
            ..Default::default()
        },
    ];
    let r = Router::new(s).expect("router");
    let c = with_geo(at(52.5, 13.4), b"DE", b"EU");
    let (n, d) = run(&r, "cdn.example", c, Family::V4, &[]);
    assert_eq!(d.override_index, Some(1));
    assert_eq!(n, ["tyo"]);
}

#[test]
fn override_pop_outside_subset_ignored() {
    let r = Router::new(override_spec()).expect("router");
    // us.example = {nyc, lon}; country FR override -> tyo (not in subset).
    let mut c = with_geo(at(MADRID.0, MADRID.1), b"FR", b"EU");
    c.addr = ip("192.0.2.0");
    let (n, d) = run(&r, "us.example", c, Family::V4, &[]);
    assert_eq!(d.kind, DecisionKind::Override);
    assert_eq!(d.override_index, Some(0));
    assert_eq!(n, ["lon"]);
    assert!(!d.degraded);
}

#[test]
fn down_override_pop_skipped() {
    let r = Router::new(override_spec()).expect("router");
    // Continent EU -> override 1: syd, nyc. syd down.
    let mut c = with_geo(at(MADRID.0, MADRID.1), b"DE", b"EU");
    c.addr = ip("192.0.2.0");
    let up = [true, true, true, true, false];
    let (n, d) = run(&r, "cdn.example", c, Family::V4, &up);
    assert_eq!(n, ["nyc", "par"]);
    assert!(d.degraded);
    assert_eq!(d.kind, DecisionKind::Override);
}

#[test]
fn override_fail_open_keeps_override() {
    let r = Router::new(override_spec()).expect("router");
    let mut c = with_geo(at(MADRID.0, MADRID.1), b"DE", b"EU");
    c.addr = ip("192.0.2.0");
    let (n, d) = run(&r, "cdn.example", c, Family::V4, &[false; 5]);
    assert_eq!(n, ["syd", "nyc"]);
    assert_eq!(d.kind, DecisionKind::FailOpen);
    assert_eq!(d.override_index, Some(1));
}

#[test]
fn override_with_unknown_location_uses_fallback_order() {
    let r = Router::new(override_spec()).expect("router");
    let c = Client {
        addr: ip("198.51.100.0"),
        prefix: 24,
        location: None,
    };
    let (n, d) = run(&r, "cdn.example", c, Family::V4, &[]);
    assert_eq!(d.kind, DecisionKind::Override);
    assert_eq!(n, ["nyc", "par"]); // then configuration order
}

#[test]
fn mapped_v6_override_network() {
    let r = Router::new(override_spec()).expect("router");
    let (addr, prefix) = ecs_client(ip("::ffff:203.0.113.0"), 120);
    let c = Client {
        addr,
        prefix,
        location: None,
    };
    let (_, d) = run(&r, "cdn.example", c, Family::V4, &[]);
    assert_eq!(d.override_index, Some(4));
    assert_eq!(d.override_prefix, Some(24));
    let (addr, prefix) = ecs_client(ip("2001:db8:aa::"), 48);
    let c = Client {
        addr,
        prefix,
        location: None,
    };
    let (_, d) = run(&r, "cdn.example", c, Family::V4, &[]);
    assert_eq!(d.override_index, Some(4));
    assert_eq!(d.override_prefix, Some(32));
}

#[test]
fn unknown_location_ranks_from_local_pop() {
    let mut s = spec();
    s.services[0].answers = 3;
    s.local_pop = Some("nyc".into());
    let r = Router::new(s).expect("router");
    assert_eq!(r.local_pop(), Some(2));
    let c = Client {
        addr: ip("192.0.2.0"),
        prefix: 24,
        location: None,
    };
    let (n, d) = run(&r, "cdn.example", c, Family::V4, &[]);
    assert_eq!(n, ["nyc", "lon", "par"]);
    assert_eq!(d.kind, DecisionKind::LocalPopFallback);
    let (n, d) = run(&r, "cdn.example", c, Family::V4, &[true, true, false]);
    assert_eq!(n, ["lon", "par", "tyo"]);
    assert!(d.degraded);
    // Invalid coordinates count as unknown.
    let (n, d) = run(&r, "cdn.example", at(f64::NAN, 0.0), Family::V4, &[]);
    assert_eq!(n, ["nyc", "lon", "par"]);
    assert_eq!(d.kind, DecisionKind::LocalPopFallback);
}

#[test]
fn unknown_location_config_order_without_local_pop() {
    let mut s = spec();
    s.services[0].answers = 2;
    s.services
        .push(service("sub.example", 2, Some(&["syd", "par", "tyo"])));
    let r = Router::new(s).expect("router");
    let c = Client {
        addr: ip("192.0.2.0"),
        prefix: 24,
        location: None,
    };
    let (n, d) = run(&r, "cdn.example", c, Family::V4, &[]);
    assert_eq!(n, ["par", "lon"]);
    assert_eq!(d.kind, DecisionKind::ConfigOrder);
    let (n, _) = run(&r, "sub.example", c, Family::V4, &[]);
    assert_eq!(n, ["syd", "par"]);
    let (n, _) = run(&r, "sub.example", c, Family::V4, &[false; 5]);
    assert_eq!(n, ["syd", "par"]);
}

#[test]
fn answers_clamped_and_more_than_pops() {
    let mut s = spec();
    s.services[0].answers = 100;
    let r = Router::new(s).expect("router");
    assert_eq!(
        r.service(ServiceId::from_router(&r, 0)).answers,
        MAX_ANSWERS
    );
    let (n, _) = run(&r, "cdn.example", at(0.0, 0.0), Family::V4, &[]);
    assert_eq!(n.len(), 5);
}

impl ServiceId {
    fn from_router(r: &Router, i: usize) -> ServiceId {
        r.services()
            .nth(i)
            .map(|(id, _)| id)
            .expect("service index")
    }
}

#[test]
fn accessors() {
    let mut s = spec();
    s.services[0].name = "CDN.Example.".into();
    let r = Router::new(s).expect("router");
    let id = r.service_id("cdn.example").expect("normalised name");
    assert_eq!(r.service(id).name, "cdn.example");
    assert_eq!(r.service(id).ttl, 30);
    assert_eq!(r.pops().len(), 5);
    assert_eq!(r.pop(3).name, "tyo");
    assert_eq!(r.pop_id("syd"), Some(4));
    assert_eq!(r.services().len(), 1);
    assert!(r.service_id("nope").is_none());
}

#[test]
fn explain_lists_ranking() {
    let r = Router::new(override_spec()).expect("router");
    let id = r.service_id("cdn.example").expect("service");
    let c = with_geo(at(MADRID.0, MADRID.1), b"FR", b"EU");
    let e = r.explain(id, c, Family::V4, &[true, false, true, true, true]);
    assert_eq!(e.decision.override_index, Some(3));
    assert_eq!(e.answer, vec![2, 0]);
    let order: Vec<usize> = e.ranking.iter().map(|l| l.pop).collect();
    assert_eq!(order, vec![2, 0, 1, 3, 4]);
    assert!(e.ranking[0].preferred && !e.ranking[1].preferred);
    assert_eq!(e.ranking[0].answer_position, Some(0));
    assert_eq!(e.ranking[1].answer_position, Some(1));
    assert!(!e.ranking[2].up);
    let d = e.ranking[1].distance_km.expect("distance");
    assert!((d - distance_km(MADRID, (48.86, 2.35))).abs() < 1e-9);
}

fn err(s: RouterSpec) -> RouteError {
    match Router::new(s) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn validation_errors() {
    let mut s = spec();
    s.pops[1].name = "par".into();
    assert!(matches!(err(s), RouteError::DuplicatePop { .. }));

    for (lat, lon) in [
        (91.0, 0.0),
        (-90.5, 0.0),
        (0.0, 180.1),
        (f64::NAN, 0.0),
        (0.0, f64::INFINITY),
    ] {
        let mut s = spec();
        s.pops[0].latitude = lat;
        s.pops[0].longitude = lon;
        assert!(
            matches!(err(s), RouteError::InvalidCoordinates { .. }),
            "{lat} {lon}"
        );
    }

    let mut s = spec();
    s.services[0].answers = 0;
    assert!(matches!(err(s), RouteError::ZeroAnswers { .. }));

    let mut s = spec();
    s.services.push(service("x", 1, Some(&["par", "mars"])));
    let e = err(s);
    assert_eq!(
        e,
        RouteError::UnknownServicePop {
            service_index: 1,
            service: "x".into(),
            pop: "mars".into()
        }
    );
    assert!(e.to_string().contains("#1") && e.to_string().contains("mars"));

    let mut s = spec();
    s.services.push(service("x", 1, Some(&[])));
    assert!(matches!(
        err(s),
        RouteError::EmptyServicePops {
            service_index: 1,
            ..
        }
    ));

    let mut s = spec();
    s.pops.clear();
    assert!(matches!(err(s), RouteError::EmptyServicePops { .. }));

    let mut s = spec();
    s.services.push(service("CDN.example", 1, None));
    assert!(matches!(err(s), RouteError::DuplicateService { .. }));

    let mut s = override_spec();
    s.overrides[2].pops.push("mars".into());
    let e = err(s);
    assert_eq!(
        e,
        RouteError::UnknownOverridePop {
            override_index: 2,
            pop: "mars".into()
        }
    );
    assert!(e.to_string().contains("#2") && e.to_string().contains("mars"));

    let mut s = override_spec();
    s.overrides[0].pops.clear();
    assert!(matches!(
        err(s),
        RouteError::EmptyOverridePops { override_index: 0 }
    ));

    let mut s = override_spec();
    s.overrides[0].networks.push((ip("10.0.0.0"), 33));
    assert!(matches!(err(s), RouteError::InvalidOverridePrefix { .. }));

    let mut s = spec();
    s.local_pop = Some("mars".into());
    assert!(matches!(err(s), RouteError::UnknownLocalPop { .. }));
    // Errors are std errors.
    let _: &dyn std::error::Error = &RouteError::UnknownLocalPop { pop: "x".into() };
}

#[test]
fn grid_on_many_pops_matches_brute_force_near_poles_and_antimeridian() {
    // Deterministic ring of PoPs, including poles and the antimeridian.
    let mut pops = Vec::new();
    for i in 0..60 {
        let lat = -90.0 + (i as f64) * 3.0;
        let lon = -180.0 + (i as f64 * 37.0) % 360.0;
        pops.push(pop(&format!("p{i}"), lat, lon));
    }
    pops.push(pop("north", 90.0, 0.0));
    pops.push(pop("east", 0.0, 180.0));
    pops.push(pop("west", 0.0, -180.0));
    let n = pops.len();
    let r = Router::new(RouterSpec {
        pops,
        services: vec![service("s", 3, None)],
        overrides: vec![],
        local_pop: None,
    })
    .expect("router");
    let id = r.service_id("s").expect("service");
    let mut a = Answer::new();
    for (lat, lon) in [
        (90.0, 0.0),
        (-90.0, 77.0),
        (0.0, 180.0),
        (0.0, -180.0),
        (89.99, 179.9),
        (-0.5, -179.99),
    ] {
        r.decide(id, at(lat, lon), Family::V4, &[], &mut a);
        let mut brute: Vec<usize> = (0..n).collect();
        brute.sort_by(|&x, &y| {
            let dx = distance_km((lat, lon), (r.pop(x).lat, r.pop(x).lon));
            let dy = distance_km((lat, lon), (r.pop(y).lat, r.pop(y).lon));
            dx.total_cmp(&dy).then(x.cmp(&y))
        });
        assert_eq!(
            a.pops().collect::<Vec<_>>(),
            brute[..3].to_vec(),
            "{lat} {lon}"
        );
    }
}

/// 1,000 PoPs in layouts that stress the candidate grid:
/// all on one spiral line (the PoPs of `bench/scale.sh`), dense metro
/// clusters with repeated coordinates, and a uniform spread. Random clients
/// anywhere, some PoPs down: the answer must be the brute-force ranking's.
#[test]
fn grid_with_early_stop_matches_brute_force_on_1000_pops() {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let line: Vec<(f64, f64)> = (1..=1000)
        .map(|i| {
            let f = (i as f64 * 0.618_033_988_7) % 1.0;
            let lat = (2.0 * f - 1.0).asin().to_degrees() * 0.8;
            let lon = (i as f64 * 137.507_76) % 360.0 - 180.0;
            (lat, lon)
        })
        .collect();
    let metros = [(50.1, 8.7), (40.7, -74.0), (1.35, 103.8), (-33.9, 151.2)];
    let clusters: Vec<(f64, f64)> = (0..1000)
        .map(|i| {
            let (la, lo) = metros[i % metros.len()];
            // Every tenth PoP repeats its metro's exact coordinates.
            if i % 10 == 0 {
                (la, lo)
            } else {
                (la + (rnd() - 0.5) * 4.0, lo + (rnd() - 0.5) * 4.0)
            }
        })
        .collect();
    let uniform: Vec<(f64, f64)> = (0..1000)
        .map(|_| {
            (
                (2.0 * rnd() - 1.0).asin().to_degrees(),
                rnd() * 360.0 - 180.0,
            )
        })
        .collect();
    for (layout, coords) in [("line", line), ("clusters", clusters), ("uniform", uniform)] {
        let pops: Vec<PopSpec> = coords
            .iter()
            .enumerate()
            .map(|(i, &(la, lo))| pop(&format!("p{i}"), la, lo))
            .collect();
        let n = pops.len();
        let r = Router::new(RouterSpec {
            pops,
            services: vec![service("s", 2, None)],
            overrides: vec![],
            local_pop: None,
        })
        .expect("router");
        let id = r.service_id("s").expect("service");
        let mut up = vec![true; n];
        let mut a = Answer::new();
        for round in 0..2000 {
            if round == 1000 {
                // Knock out a tenth of the PoPs (and so some nearest ones).
                for (i, u) in up.iter_mut().enumerate() {
                    *u = i % 10 != 3;
                }
            }
            let (lat, lon) = if round % 2 == 0 {
                // Near a PoP: where the ranking is decided by small gaps.
                let (la, lo) = coords[(rnd() * n as f64) as usize % n];
                (
                    (la + (rnd() - 0.5) * 0.5).clamp(-90.0, 90.0),
                    (lo + (rnd() - 0.5) * 0.5).clamp(-180.0, 180.0),
                )
            } else {
                (
                    (2.0 * rnd() - 1.0).asin().to_degrees(),
                    rnd() * 360.0 - 180.0,
                )
            };
            r.decide(id, at(lat, lon), Family::V4, &up, &mut a);
            let mut brute: Vec<usize> = (0..n).filter(|&p| up[p]).collect();
            brute.sort_by(|&x, &y| {
                let dx = distance_km((lat, lon), (r.pop(x).lat, r.pop(x).lon));
                let dy = distance_km((lat, lon), (r.pop(y).lat, r.pop(y).lon));
                dx.total_cmp(&dy).then(x.cmp(&y))
            });
            assert_eq!(
                a.pops().collect::<Vec<_>>(),
                brute[..2].to_vec(),
                "{layout}: client {lat} {lon}, round {round}"
            );
        }
    }
}
