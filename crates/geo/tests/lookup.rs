//! Lookups against real `.mmdb` files written by popdns-mmdbgen from geoip/test-city.csv,
//! and against the shipped geoip/dbip-country.mmdb.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use popdns_geo::{GeoDb, GeoError, GeoHit, Location, Precision, normalise};
use popdns_mmdbgen::{Entry, IpVersion, Options, Schema, parse_csv, write_mmdb_with};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn test_entries() -> Vec<Entry> {
    parse_csv(popdns_mmdbgen::TEST_CITY_CSV).unwrap()
}

fn write(name: &str, entries: &[Entry], schema: Schema, ip_version: IpVersion) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("popdns-geo-{name}.mmdb"));
    let opts = Options {
        ip_version,
        ..Options::new(schema)
    };
    write_mmdb_with(entries, &opts, &path).unwrap();
    path
}

fn open(paths: &[PathBuf]) -> GeoDb {
    GeoDb::open(paths, None).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn loc(hit: GeoHit) -> Location {
    hit.location
        .unwrap_or_else(|| panic!("expected a location: {hit:?}"))
}

fn code(s: &str) -> Option<[u8; 2]> {
    let b = s.as_bytes();
    Some([b[0], b[1]])
}

#[track_caller]
fn assert_city(db: &GeoDb, addr: &str, lat: f64, lon: f64, cc: &str, cont: &str, prefix: u8) {
    let hit = db.lookup(ip(addr));
    let l = loc(hit);
    assert!(
        (l.lat - lat).abs() < 1e-4 && (l.lon - lon).abs() < 1e-4,
        "{addr}: {l:?}"
    );
    assert_eq!(l.country, code(cc), "{addr}");
    assert_eq!(l.continent, code(cont), "{addr}");
    assert_eq!(l.precision, Precision::City, "{addr}");
    assert_eq!(hit.prefix_len, prefix, "{addr}");
}

/// Rows of geoip/test-city.csv with coordinates: (address inside, lat, lon, cc, continent, prefix).
const CITY_ROWS: &[(&str, f64, f64, &str, &str, u8)] = &[
    ("192.0.2.1", 50.11, 8.68, "DE", "EU", 26),
    ("192.0.2.100", 39.04, -77.49, "US", "NA", 26),
    ("192.0.2.130", 35.68, 139.69, "JP", "AS", 26),
    ("192.0.2.255", -23.55, -46.63, "BR", "SA", 26),
    ("198.51.100.7", -33.87, 151.21, "AU", "OC", 24),
    ("203.0.113.1", 37.34, -121.89, "US", "NA", 25),
    ("203.0.113.200", 1.29, 103.85, "SG", "AS", 25),
    ("2001:db8:1::1", 50.11, 8.68, "DE", "EU", 48),
    ("2001:db8:2:ffff::1", 39.04, -77.49, "US", "NA", 48),
    ("2001:db8:3::53", 35.68, 139.69, "JP", "AS", 48),
    ("2001:db8:4::", -23.55, -46.63, "BR", "SA", 48),
];

#[test]
fn geoip2_city_schema() {
    let path = write("geoip2", &test_entries(), Schema::GeoIP2City, IpVersion::V6);
    let db = open(&[path]);
    for &(addr, lat, lon, cc, cont, prefix) in CITY_ROWS {
        assert_city(&db, addr, lat, lon, cc, cont, prefix);
    }

    // Country without coordinates: table coordinates (Paris), continent from the table.
    let hit = db.lookup(ip("198.18.200.1"));
    let l = loc(hit);
    assert_eq!(l.country, code("FR"));
    assert_eq!(l.continent, code("EU"));
    assert_eq!(l.precision, Precision::Country);
    assert!(
        (l.lat - 48.85).abs() < 0.1 && (l.lon - 2.35).abs() < 0.1,
        "{l:?}"
    );
    assert_eq!(hit.prefix_len, 16);

    // accuracy_radius 1000 placeholder: the record's coordinates, country precision.
    let hit = db.lookup(ip("198.19.0.9"));
    let l = loc(hit);
    assert_eq!((l.lat, l.lon), (37.751, -97.822));
    assert_eq!(l.country, code("US"));
    assert_eq!(l.precision, Precision::Country);
    assert_eq!(hit.prefix_len, 24);

    // registered_country only: unknown, but the prefix is still known.
    assert_eq!(
        db.lookup(ip("198.19.1.1")),
        GeoHit {
            location: None,
            prefix_len: 24
        }
    );
}

#[test]
fn ipv4_in_ipv6_tree_reports_ipv4_prefix_and_aliases_work() {
    let path = write("alias", &test_entries(), Schema::GeoIP2City, IpVersion::V6);
    let db = open(&[path]);
    // Plain IPv4 and the caller-normalised mapped form give the IPv4 prefix.
    assert_eq!(db.lookup(ip("192.0.2.1")).prefix_len, 26);
    assert_eq!(db.lookup(normalise(ip("::ffff:192.0.2.1"))).prefix_len, 26);
    // Un-normalised IPv4-mapped address still finds the data (alias), with an IPv6 prefix.
    let hit = db.lookup(ip("::ffff:192.0.2.1"));
    assert_eq!(loc(hit).country, code("DE"));
    assert_eq!(hit.prefix_len, 96 + 26);
}

#[test]
fn unknown_addresses() {
    let path = write(
        "unknown",
        &test_entries(),
        Schema::GeoIP2City,
        IpVersion::V6,
    );
    let db = open(&[path]);
    // Every IPv4 network in the file starts with bit 1, so 10/8 ends in the empty 0.0.0.0/1.
    assert_eq!(
        db.lookup(ip("10.1.2.3")),
        GeoHit {
            location: None,
            prefix_len: 1
        }
    );
    // Beside 192.0.2.0/24: the empty network is the sibling at the first differing bit.
    let hit = db.lookup(ip("192.0.3.1"));
    assert_eq!(hit.location, None);
    assert_eq!(hit.prefix_len, 24);
    let hit = db.lookup(ip("2001:db8:5::1"));
    assert_eq!(hit.location, None);
    assert!(hit.prefix_len > 32 && hit.prefix_len <= 48, "{hit:?}");
    let hit = db.lookup(ip("fe80::1"));
    assert_eq!(hit.location, None);
    assert!(hit.prefix_len >= 1 && hit.prefix_len < 16, "{hit:?}");
}

#[test]
fn flat_city_schema_f32() {
    let path = write("flat", &test_entries(), Schema::FlatCity, IpVersion::V6);
    let db = open(&[path]);
    // f32 storage: 1e-4 tolerance; continent comes from the country table.
    for &(addr, lat, lon, cc, cont, prefix) in CITY_ROWS {
        assert_city(&db, addr, lat, lon, cc, cont, prefix);
    }
    let l = loc(db.lookup(ip("198.18.0.1")));
    assert_eq!((l.country, l.precision), (code("FR"), Precision::Country));
}

#[test]
fn country_only_schema_uses_table() {
    let path = write(
        "country",
        &test_entries(),
        Schema::CountryOnly,
        IpVersion::V6,
    );
    let db = open(std::slice::from_ref(&path));
    let hit = db.lookup(ip("192.0.2.5"));
    let l = loc(hit);
    assert_eq!(l.country, code("DE"));
    assert_eq!(l.continent, code("EU"));
    assert_eq!(l.precision, Precision::Country);
    assert!(
        (l.lat - 52.52).abs() < 0.01 && (l.lon - 13.41).abs() < 0.01,
        "{l:?}"
    );
    assert_eq!(hit.prefix_len, 26);
    let l = loc(db.lookup(ip("2001:db8:3::1")));
    assert_eq!((l.country, l.continent), (code("JP"), code("AS")));
    assert!(db.describe().contains("country-level"), "{}", db.describe());

    // A custom table replaces the built-in one.
    let table = Path::new(env!("CARGO_TARGET_TMPDIR")).join("popdns-geo-table.csv");
    std::fs::write(
        &table,
        "# test\ncountry,continent,lat,lon,place\nDE,EU,1.5,2.5,Nowhere\n",
    )
    .unwrap();
    let db = GeoDb::open(&[path], Some(&table)).unwrap();
    let l = loc(db.lookup(ip("192.0.2.5")));
    assert_eq!((l.lat, l.lon), (1.5, 2.5));
    // JP is not in the custom table: country known but no coordinates → unknown.
    assert_eq!(db.lookup(ip("2001:db8:3::1")).location, None);
    assert!(db.describe().contains("popdns-geo-table.csv (1 countries)"));
}

#[test]
fn separate_v4_and_v6_files() {
    let (v4, v6): (Vec<Entry>, Vec<Entry>) = test_entries()
        .into_iter()
        .partition(|e| !e.network.contains(':'));
    let v4 = write("split4", &v4, Schema::FlatCity, IpVersion::V4);
    let v6 = write("split6", &v6, Schema::FlatCity, IpVersion::V6);
    // The IPv4-only file comes first: IPv6 lookups must skip it, not fail.
    let db = open(&[v4, v6]);
    for &(addr, lat, lon, cc, cont, prefix) in CITY_ROWS {
        assert_city(&db, addr, lat, lon, cc, cont, prefix);
    }
    let d = db.describe();
    assert!(
        d.contains("IPv4") && d.contains("IPv6") && d.contains("; "),
        "{d}"
    );
}

#[test]
fn fallback_to_next_database_keeps_a_safe_prefix() {
    let city = write(
        "fallback-city",
        &test_entries(),
        Schema::GeoIP2City,
        IpVersion::V6,
    );
    let country_entries = vec![Entry {
        network: "198.16.0.0/12".into(),
        country: Some("AU".into()),
        ..Entry::default()
    }];
    let country = write(
        "fallback-country",
        &country_entries,
        Schema::CountryOnly,
        IpVersion::V6,
    );
    let db = open(&[city, country]);
    // registered_country-only /24 in the city DB; the country DB answers with its /12,
    // and the reported prefix is the longer /24 (the answer is only uniform there).
    let hit = db.lookup(ip("198.19.1.1"));
    let l = loc(hit);
    assert_eq!((l.country, l.precision), (code("AU"), Precision::Country));
    assert_eq!(hit.prefix_len, 24);
    // The city DB answers directly where it knows the location.
    assert_city(&db, "192.0.2.1", 50.11, 8.68, "DE", "EU", 26);
}

#[test]
fn open_errors_name_the_file() {
    let missing = PathBuf::from("/nonexistent/popdns-missing.mmdb");
    let err = GeoDb::open(std::slice::from_ref(&missing), None).unwrap_err();
    assert!(matches!(err, GeoError::Open { .. }));
    assert!(err.to_string().contains("popdns-missing.mmdb"), "{err}");

    let junk = Path::new(env!("CARGO_TARGET_TMPDIR")).join("popdns-geo-junk.mmdb");
    std::fs::write(&junk, b"this is not a maxmind database").unwrap();
    let err = GeoDb::open(&[junk], None).unwrap_err();
    assert!(err.to_string().contains("popdns-geo-junk.mmdb"), "{err}");

    assert!(matches!(GeoDb::open(&[], None), Err(GeoError::NoDatabase)));

    // Records without coordinates or country (e.g. an ASN database) are rejected.
    let names_only = vec![Entry {
        network: "192.0.2.0/24".into(),
        city: Some("Nowhere".into()),
        ..Entry::default()
    }];
    let path = write("names-only", &names_only, Schema::FlatCity, IpVersion::V6);
    let err = GeoDb::open(&[path], None).unwrap_err();
    assert!(matches!(err, GeoError::Schema { .. }), "{err}");
    assert!(
        err.to_string().contains("popdns-geo-names-only.mmdb"),
        "{err}"
    );

    let path = write("ok", &test_entries(), Schema::CountryOnly, IpVersion::V6);
    let bad_table = Path::new(env!("CARGO_TARGET_TMPDIR")).join("popdns-geo-bad-table.csv");
    std::fs::write(&bad_table, "country,lat,lon\nDE,north,0\n").unwrap();
    let err = GeoDb::open(std::slice::from_ref(&path), Some(&bad_table)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("popdns-geo-bad-table.csv") && msg.contains("line 2"),
        "{msg}"
    );
    let err = GeoDb::open(&[path], Some(Path::new("/nonexistent/coords.csv"))).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/coords.csv"), "{err}");
}

/// Deterministic pseudo-random addresses; no lookup may panic.
#[test]
fn never_panics_on_any_address() {
    let split4 = test_entries()
        .into_iter()
        .filter(|e| !e.network.contains(':'))
        .collect::<Vec<_>>();
    let db = open(&[
        write("fuzz4", &split4, Schema::GeoIP2City, IpVersion::V4),
        write("fuzz6", &test_entries(), Schema::FlatCity, IpVersion::V6),
        repo().join("geoip/dbip-country.mmdb"),
    ]);
    let mut x: u128 = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834;
    for i in 0..20_000u32 {
        x = x
            .wrapping_mul(0x2360_ed05_1fc6_5da4_4385_df64_9fcc_f645)
            .wrapping_add(0x5851_f42d_4c95_7f2d_1405_7b7e_f767_814f);
        let addr = if i % 2 == 0 {
            IpAddr::from(((x >> 96) as u32).to_be_bytes())
        } else {
            IpAddr::from(x.to_be_bytes())
        };
        let hit = db.lookup(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        assert!(hit.prefix_len <= max, "{addr}: {hit:?}");
        if let Some(l) = hit.location {
            assert!(l.lat.abs() <= 90.0 && l.lon.abs() <= 180.0, "{addr}: {l:?}");
        }
    }
    for s in [
        "0.0.0.0",
        "255.255.255.255",
        "::",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ] {
        let _ = db.lookup(ip(s));
    }
}

#[test]
fn shipped_dbip_country_database() {
    let path = repo().join("geoip/dbip-country.mmdb");
    let db = open(&[path]);
    let hit = db.lookup(ip("81.2.69.142"));
    let l = loc(hit);
    assert_eq!(l.country, code("GB"));
    assert_eq!(l.continent, code("EU"));
    assert_eq!(l.precision, Precision::Country);
    assert!(
        (l.lat - 51.51).abs() < 0.1 && (l.lon + 0.13).abs() < 0.1,
        "{l:?}"
    );
    assert!(hit.prefix_len >= 8 && hit.prefix_len <= 32, "{hit:?}");
    let l = loc(db.lookup(ip("2001:4860:4860::8888")));
    assert!(l.country.is_some(), "{l:?}");
    let d = db.describe();
    assert!(
        d.contains("dbip-country.mmdb (country ipvAll, IPv6, built 2026-06-01"),
        "{d}"
    );
}
