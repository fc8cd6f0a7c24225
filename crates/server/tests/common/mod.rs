//! Shared by the `fast_path` test and the `alloc` bench (which includes this
//! file with `#[path]`): a real snapshot built from zone text, PoPs and
//! config lines over the City-schema test mmdb, and ECS option bytes.

#![allow(dead_code)]

use std::net::IpAddr;
use std::path::Path;

use popdns_server::Snapshot;

/// (name, latitude, longitude, IPv4, IPv6 or "" for none; several addresses
/// separated by commas).
pub type Pop = (&'static str, f64, f64, &'static str, &'static str);

/// Six PoPs on five continents (`syd` has no IPv6 address).
pub const POPS: &[Pop] = &[
    ("fra", 50.1109, 8.6821, "192.0.2.1", "2001:db8:1::1"),
    ("iad", 39.0438, -77.4874, "198.51.100.1", "2001:db8:2::1"),
    ("sjc", 37.3382, -121.8863, "203.0.113.1", "2001:db8:3::1"),
    ("sin", 1.3521, 103.8198, "192.0.2.129", "2001:db8:4::1"),
    ("gru", -23.4356, -46.4731, "198.51.100.129", "2001:db8:5::1"),
    ("syd", -33.8688, 151.2093, "198.51.100.200", ""),
];

/// Write `zones` (file name, text) into `dir/zones`, the test mmdb and a
/// config with one worker, `local_pop = "fra"`, the PoPs and `extra`
/// (services, overrides) into `dir`; load and build it like `popdns serve`.
pub fn snapshot(
    dir: &Path,
    identity: &str,
    zones: &[(&str, String)],
    pops: &[Pop],
    extra: &str,
) -> Snapshot {
    let zdir = dir.join("zones");
    std::fs::create_dir_all(&zdir).expect("mkdir");
    for (file, text) in zones {
        std::fs::write(zdir.join(file), text).expect("zone");
    }
    let entries = popdns_mmdbgen::parse_csv(popdns_mmdbgen::TEST_CITY_CSV).expect("csv");
    let mmdb = dir.join("test-city.mmdb");
    popdns_mmdbgen::write_mmdb(&entries, popdns_mmdbgen::Schema::GeoIP2City, &mmdb).expect("mmdb");
    let mut cfg = format!(
        "version = 1\n[server]\nlisten = [\"127.0.0.1:0\"]\nidentity = \"{identity}\"\n\
         local_pop = \"fra\"\nworkers = 1\n[zones]\ndirectory = \"zones\"\n\
         [geoip]\ndatabase = \"test-city.mmdb\"\n"
    );
    // Several addresses of a family: separated by commas.
    let list = |s: &str| format!("[\"{}\"]", s.replace(',', "\", \""));
    for (name, lat, lon, a, aaaa) in pops {
        cfg.push_str(&format!(
            "[[pops]]\nname = \"{name}\"\nlatitude = {lat}\nlongitude = {lon}\nipv4 = {}\n",
            list(a)
        ));
        if !aaaa.is_empty() {
            cfg.push_str(&format!("ipv6 = {}\n", list(aaaa)));
        }
    }
    cfg.push_str(extra);
    let path = dir.join("popdns.toml");
    std::fs::write(&path, cfg).expect("config");
    let config = match popdns_config::load(&path) {
        Ok(c) => c,
        Err(es) => panic!("config: {es:?}"),
    };
    match popdns_server::build(&config, 1) {
        Ok(s) => s,
        Err(es) => panic!("build: {es:?}"),
    }
}

/// The EDNS Client Subnet option (code 8, RFC 7871) for `addr`/`prefix`.
pub fn ecs_option(addr: IpAddr, prefix: u8) -> Vec<u8> {
    let (family, bytes): (u16, Vec<u8>) = match addr {
        IpAddr::V4(a) => (1, a.octets().to_vec()),
        IpAddr::V6(a) => (2, a.octets().to_vec()),
    };
    let n = usize::from(prefix).div_ceil(8);
    let mut o = Vec::new();
    o.extend_from_slice(&8u16.to_be_bytes());
    o.extend_from_slice(&((4 + n) as u16).to_be_bytes());
    o.extend_from_slice(&family.to_be_bytes());
    o.push(prefix);
    o.push(0);
    o.extend_from_slice(&bytes[..n]);
    o
}
