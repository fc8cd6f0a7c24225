//! Nearest-PoP routing end to end: a real GeoIP database generated from
//! geoip/test-city.csv, ECS from each region, overrides, the anycast
//! fallback, ECS scope, malformed ECS, `popdns route` and `popdns check`.
#![allow(clippy::unwrap_used)]

use popdns_mmdbgen::{Entry, Schema};
use popdns_tests::*;

const POPS: &str = r#"
[[pops]]
name = "fra"
latitude = 50.11
longitude = 8.68
ipv4 = ["192.0.2.1"]
ipv6 = ["2001:db8:1::1"]

[[pops]]
name = "iad"
latitude = 39.04
longitude = -77.49
ipv4 = ["198.51.100.1", "198.51.100.2"]
ipv6 = ["2001:db8:2::1"]

[[pops]]
name = "sjc"
latitude = 37.34
longitude = -121.89
ipv4 = ["203.0.113.1"]
ipv6 = ["2001:db8:3::1"]

[[pops]]
name = "sin"
latitude = 1.35
longitude = 103.82
ipv4 = ["192.0.2.129"]
ipv6 = ["2001:db8:4::1"]

[[pops]]
name = "gru"
latitude = -23.44
longitude = -46.47
ipv4 = ["198.51.100.129"]

[[pops]]
name = "syd"
latitude = -33.87
longitude = 151.21
ipv4 = ["203.0.113.129"]
ipv6 = ["2001:db8:6::1"]

[[services]]
name = "www.cdn.example"
ttl = 30

[[services]]
name = "video.cdn.example"
ttl = 20
answers = 2
"#;

const FRA: &str = "192.0.2.1";
const IAD: &str = "198.51.100.1";
const SJC: &str = "203.0.113.1";
const SIN: &str = "192.0.2.129";
const GRU: &str = "198.51.100.129";
const SYD: &str = "203.0.113.129";

/// The test City database: documentation and benchmarking prefixes placed
/// in chosen cities. ECS is looked up at most at /24 (v4) and /56 (v6), so
/// regions are /24 or wider.
const CITY_CSV: &str = "network,lat,lon,country,continent,city,radius,registered_country
192.0.2.0/24,50.11,8.68,DE,EU,Frankfurt,20,
198.51.100.0/24,39.04,-77.49,US,NA,Ashburn,20,
203.0.113.0/24,35.68,139.69,JP,AS,Tokyo,20,
198.18.0.0/24,-23.55,-46.63,BR,SA,Sao Paulo,20,
198.18.1.0/24,-33.87,151.21,AU,OC,Sydney,20,
198.18.2.0/24,37.34,-121.89,US,NA,San Jose,20,
198.18.3.0/24,1.29,103.85,SG,AS,Singapore,20,
198.18.4.0/26,50.11,8.68,DE,EU,Frankfurt,20,
198.18.8.0/22,39.04,-77.49,US,NA,Ashburn,20,
198.18.64.0/18,,,FR,,,,
198.19.1.0/24,,,,,,,AU
127.0.0.0/8,-33.87,151.21,AU,OC,Sydney,20,
2001:db8:1::/48,50.11,8.68,DE,EU,Frankfurt,20,
2001:db8:2::/48,39.04,-77.49,US,NA,Ashburn,20,
2001:db8:3::/48,35.68,139.69,JP,AS,Tokyo,20,
2001:db8:4::/48,-23.55,-46.63,BR,SA,Sao Paulo,20,
";

/// Start popdns with the test City database.
fn start(server_extra: &str, tail: &str) -> Popdns {
    let dir = TempDir::new("route");
    write_db(&dir);
    dir.write("zones/cdn.example.zone", TEST_ZONE);
    let cfg = basic_config(server_extra) + "[geoip]\ndatabase = \"test.mmdb\"\n" + POPS + tail;
    dir.write("popdns.toml", &cfg);
    Popdns::spawn(dir).unwrap_or_else(|l| panic!("{l}"))
}

fn write_db(dir: &TempDir) {
    let entries: Vec<Entry> = popdns_mmdbgen::parse_csv(CITY_CSV).unwrap();
    popdns_mmdbgen::write_mmdb(&entries, Schema::GeoIP2City, &dir.path().join("test.mmdb"))
        .unwrap();
}

fn ask(s: &Popdns, name: &str, t: RecordType, subnet: &str) -> (Vec<String>, Option<u8>) {
    let m = s.udp_msg(&ecs_query(name, t, subnet));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    (addrs(&m), scope(&m))
}

fn scope(m: &Message) -> Option<u8> {
    match m.edns.as_ref()?.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(cs) => Some(cs.scope_prefix()),
        _ => None,
    }
}

#[test]
fn ecs_from_each_region_gets_the_nearest_pop() {
    let s = start("local_pop = \"fra\"", "");
    for (subnet, want) in [
        ("192.0.2.0/24", FRA),         // Frankfurt
        ("198.51.100.0/24", IAD),      // Ashburn
        ("203.0.113.0/24", SIN),       // Tokyo
        ("198.18.0.0/24", GRU),        // Sao Paulo
        ("198.18.1.0/24", SYD),        // Sydney
        ("198.18.2.0/24", SJC),        // San Jose
        ("198.18.3.0/24", SIN),        // Singapore
        ("198.18.70.0/24", FRA),       // France, country only: table coordinates
        ("2001:db8:2::/48", IAD),      // IPv6 Ashburn
        ("2001:db8:3::/48", SIN),      // IPv6 Tokyo
        ("2001:db8:1:ff00::/56", FRA), // IPv6 /56 inside Frankfurt
    ] {
        let (a, _) = ask(&s, "www.cdn.example.", RecordType::A, subnet);
        let want_all = if want == IAD {
            vec![IAD, "198.51.100.2"]
        } else {
            vec![want]
        };
        assert_eq!(a, want_all, "{subnet}");
    }
    let m = s.udp_msg(&ecs_query(
        "www.cdn.example.",
        RecordType::A,
        "198.51.100.0/24",
    ));
    assert_eq!(m.answers[0].ttl, 30);
}

#[test]
fn ecs_scope_is_the_deciding_network_capped_at_the_source() {
    let s = start("local_pop = \"fra\"", "");
    // /24 network, /24 source.
    assert_eq!(
        ask(&s, "www.cdn.example.", RecordType::A, "198.51.100.0/24").1,
        Some(24)
    );
    // /22 network: the answer holds for the whole /22.
    let (a, sc) = ask(&s, "www.cdn.example.", RecordType::A, "198.18.9.0/24");
    assert_eq!((a[0].as_str(), sc), (IAD, Some(22)));
    // Network longer than the source: capped at the source prefix.
    assert_eq!(
        ask(&s, "www.cdn.example.", RecordType::A, "198.18.4.0/24").1,
        Some(24)
    );
    // A /26 source is looked up as /24 (privacy cap) and scoped /24.
    assert_eq!(
        ask(&s, "www.cdn.example.", RecordType::A, "198.18.4.0/26").1,
        Some(24)
    );
    // Source wider than the network: capped at the source prefix.
    assert_eq!(
        ask(&s, "www.cdn.example.", RecordType::A, "198.18.0.0/16").1,
        Some(16)
    );
    // IPv6 /64 source is looked up as /56; the /48 network decides.
    assert_eq!(
        ask(
            &s,
            "www.cdn.example.",
            RecordType::AAAA,
            "2001:db8:2:1::/64"
        )
        .1,
        Some(48)
    );
    // Zone data does not depend on location: scope 0.
    let m = s.udp_msg(&ecs_query(
        "static.cdn.example.",
        RecordType::A,
        "198.51.100.0/24",
    ));
    assert_eq!(scope(&m), Some(0));
    // Source prefix 0: the packet's source address is used, scope 0.
    let (a, sc) = ask(&s, "www.cdn.example.", RecordType::A, "0.0.0.0/0");
    assert_eq!(a, vec![SYD]);
    assert_eq!(sc, Some(0));
}

#[test]
fn without_ecs_the_source_address_is_used() {
    let s = start("local_pop = \"fra\"", "");
    // 127.0.0.1 is placed in Sydney in the test database.
    let m = s.query("www.cdn.example.", RecordType::A);
    assert_eq!(addrs(&m), vec![SYD]);
    assert!(scope(&m).is_none());
}

#[test]
fn aaaa_skips_pops_without_ipv6() {
    let s = start("", "");
    // Sao Paulo: gru has no IPv6, the next nearest with IPv6 is iad.
    let (a, _) = ask(&s, "www.cdn.example.", RecordType::AAAA, "2001:db8:4::/48");
    assert_eq!(a, vec!["2001:db8:2::1"]);
    let (a, _) = ask(&s, "www.cdn.example.", RecordType::A, "2001:db8:4::/48");
    assert_eq!(a, vec![GRU]);
    // Other types at a service name come from the zone: NODATA + SOA.
    let m = s.udp_msg(&ecs_query(
        "www.cdn.example.",
        RecordType::MX,
        "192.0.2.0/24",
    ));
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
}

#[test]
fn two_answers_nearest_first() {
    let s = start("", "");
    let (a, _) = ask(&s, "video.cdn.example.", RecordType::A, "192.0.2.0/24");
    assert_eq!(a, vec![FRA, IAD, "198.51.100.2"]);
    let (a, _) = ask(&s, "video.cdn.example.", RecordType::A, "198.18.1.0/24");
    assert_eq!(a, vec![SYD, SIN]);
    let m = s.udp_msg(&ecs_query(
        "video.cdn.example.",
        RecordType::A,
        "192.0.2.0/24",
    ));
    assert!(m.answers.iter().all(|r| r.ttl == 20));
}

#[test]
fn embedded_ipv4_in_ecs_is_normalised() {
    let s = start("", "");
    for subnet in [
        "::ffff:198.51.100.0/120",   // IPv4-mapped
        "64:ff9b::198.51.100.0/120", // NAT64
        "2002:c633:6400::/40",       // 6to4 of 198.51.100.0/24
    ] {
        let (a, _) = ask(&s, "www.cdn.example.", RecordType::A, subnet);
        assert_eq!(a, vec![IAD, "198.51.100.2"], "{subnet}");
    }
}

#[test]
fn unknown_location_ranks_from_the_local_pop() {
    let s = start("local_pop = \"sin\"", "");
    // 100.64.0.0/24 is in no network of the database.
    let (a, _) = ask(&s, "video.cdn.example.", RecordType::A, "100.64.0.0/24");
    assert_eq!(a, vec![SIN, SYD]);
    // registered_country only counts as unknown.
    let (a, _) = ask(&s, "www.cdn.example.", RecordType::A, "198.19.1.0/24");
    assert_eq!(a, vec![SIN]);
    // Without local_pop: configuration order.
    let s = start("", "");
    let (a, _) = ask(&s, "video.cdn.example.", RecordType::A, "100.64.0.0/24");
    assert_eq!(a, vec![FRA, IAD, "198.51.100.2"]);
}

#[test]
fn overrides_in_precedence_order() {
    let tail = r#"
[[overrides]]
continents = ["OC"]
pops = ["gru"]

[[overrides]]
countries = ["AU"]
pops = ["sjc"]

[[overrides]]
networks = ["198.18.0.0/16"]
pops = ["iad", "fra"]

[[overrides]]
networks = ["198.18.1.0/24"]
pops = ["sin"]

[[overrides]]
networks = ["10.0.0.0/8"]
pops = ["gru", "iad"]
"#;
    let s = start("", tail);
    // Network beats country and continent; the most specific network wins.
    let (a, sc) = ask(&s, "www.cdn.example.", RecordType::A, "198.18.2.0/24");
    assert_eq!(a, vec![IAD, "198.51.100.2"]);
    assert_eq!(sc, Some(16));
    let (a, sc) = ask(&s, "www.cdn.example.", RecordType::A, "198.18.1.0/24");
    assert_eq!(a, vec![SIN]);
    assert_eq!(sc, Some(24));
    // A geo answer next to an override network is not scoped over it.
    let (a, sc) = ask(&s, "www.cdn.example.", RecordType::A, "192.0.2.0/24");
    assert_eq!(a, vec![FRA]);
    assert_eq!(sc, Some(24));
    // Ordered preference with answers = 2.
    let (a, _) = ask(&s, "video.cdn.example.", RecordType::A, "10.1.0.0/16");
    assert_eq!(a, vec![GRU, IAD, "198.51.100.2"]);
    // Country before continent (127/8 is AU/OC in the test database).
    let m = s.query("www.cdn.example.", RecordType::A);
    assert_eq!(addrs(&m), vec![SJC]);
    // Override PoP without IPv6 is skipped for AAAA: next in its list.
    let (a, _) = ask(&s, "www.cdn.example.", RecordType::AAAA, "10.0.0.0/8");
    assert_eq!(a, vec!["2001:db8:2::1"]);
}

#[test]
fn override_outside_a_service_subset_is_ignored() {
    let tail = r#"
[[services]]
name = "eu.cdn.example"
ttl = 30
pops = ["fra", "iad"]

[[overrides]]
networks = ["192.0.2.0/24"]
pops = ["syd", "iad"]
"#;
    let s = start("", tail);
    let (a, _) = ask(&s, "eu.cdn.example.", RecordType::A, "192.0.2.0/24");
    assert_eq!(a, vec![IAD, "198.51.100.2"]);
    let (a, _) = ask(&s, "www.cdn.example.", RecordType::A, "192.0.2.0/24");
    assert_eq!(a, vec![SYD]);
}

#[test]
fn malformed_ecs_gets_formerr_with_opt() {
    let s = start("", "");
    let base = query_msg("www.cdn.example.", RecordType::A, false)
        .to_vec()
        .unwrap();
    for (what, opt) in [
        ("too few octets", vec![0u8, 8, 0, 6, 0, 1, 24, 0, 192, 0]),
        (
            "too many octets",
            vec![0, 8, 0, 9, 0, 1, 24, 0, 192, 0, 2, 0, 0],
        ),
        (
            "bits past the prefix",
            vec![0, 8, 0, 7, 0, 1, 22, 0, 192, 0, 3],
        ),
        (
            "v4 prefix over 32",
            vec![0, 8, 0, 9, 0, 1, 33, 0, 192, 0, 2, 0, 0],
        ),
        ("v6 prefix over 128", vec![0, 8, 0, 4, 0, 2, 129, 0]),
        ("unknown family", vec![0, 8, 0, 7, 0, 9, 24, 0, 192, 0, 2]),
        (
            "two ECS options",
            [[0u8, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2]; 2].concat(),
        ),
    ] {
        let mut p = base.clone();
        p[11] = 1; // ARCOUNT
        p.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0]);
        p.extend_from_slice(&(opt.len() as u16).to_be_bytes());
        p.extend_from_slice(&opt);
        let r = s.udp_raw(&p).unwrap_or_else(|| panic!("{what}: no answer"));
        let m = Message::from_vec(&r).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr, "{what}");
        assert!(m.edns.is_some(), "{what}: FORMERR must carry an OPT");
    }
}

#[test]
fn route_command_explains_the_decision() {
    let s = start("local_pop = \"fra\"", "");
    let cfg = s.dir.path().join("popdns.toml");
    let (code, out, err) = run_popdns(&[
        "route",
        "-c",
        cfg.to_str().unwrap(),
        "127.0.0.1",
        "--ecs",
        "198.18.9.0/24",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("country US"), "{out}");
    assert!(out.contains("iad") && out.contains("answer #1"), "{out}");
    assert!(
        out.contains("www.cdn.example. 30 IN A 198.51.100.1"),
        "{out}"
    );
    assert!(out.contains("ecs scope: /22"), "{out}");
    let (code, out, _) = run_popdns(&[
        "route",
        "-c",
        cfg.to_str().unwrap(),
        "100.64.0.1",
        "--name",
        "video.cdn.example",
        "--type",
        "AAAA",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("unknown"), "{out}");
    assert!(out.contains("2001:db8:1::1"), "{out}");
}

#[test]
fn check_reports_routing_config_errors() {
    for (tail, needle) in [
        (
            "[[services]]\nname = \"www.nowhere.test\"\nttl = 5\n",
            "not inside any served zone",
        ),
        (
            "[[services]]\nname = \"img.cdn.example\"\nttl = 5\n",
            "has a CNAME",
        ),
        (
            "[[overrides]]\ncountries = [\"BR\"]\npops = [\"xyz\"]\n",
            "unknown PoP",
        ),
        (
            "[[pops]]\nname = \"bad\"\nlatitude = 91.0\nlongitude = 0.0\nipv4 = [\"192.0.2.9\"]\n",
            "latitude",
        ),
    ] {
        let dir = TempDir::new("chk");
        dir.write("zones/cdn.example.zone", TEST_ZONE);
        write_db(&dir);
        let cfg = basic_config("") + "[geoip]\ndatabase = \"test.mmdb\"\n" + POPS + tail;
        let p = dir.write("popdns.toml", &cfg);
        let (code, out, _) = run_popdns(&["check", "-c", p.to_str().unwrap()]);
        assert_eq!(code, 1, "{tail}: {out}");
        assert!(out.contains(needle), "{tail}: {out}");
        assert!(out.contains("popdns.toml"), "{out}");
    }
    // Missing and unreadable databases.
    for content in [None, Some(&b"not a database"[..])] {
        let dir = TempDir::new("chkdb");
        dir.write("zones/cdn.example.zone", TEST_ZONE);
        if let Some(c) = content {
            std::fs::write(dir.path().join("test.mmdb"), c).unwrap();
        }
        let cfg = basic_config("") + "[geoip]\ndatabase = \"test.mmdb\"\n" + POPS;
        let p = dir.write("popdns.toml", &cfg);
        let (code, out, _) = run_popdns(&["check", "-c", p.to_str().unwrap()]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("test.mmdb"), "{out}");
    }
}
