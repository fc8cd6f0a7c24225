//! `GeoDb::lookup` must not allocate: count allocations made by this thread around lookups.
#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use popdns_geo::GeoDb;
use popdns_mmdbgen::{Options, Schema, parse_csv, write_mmdb_with};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only adds a thread-local counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn lookup_does_not_allocate() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(repo.join("geoip/test-city.csv")).unwrap();
    let entries = parse_csv(&text).unwrap();
    let mut paths: Vec<PathBuf> = Vec::new();
    for (name, schema) in [("city", Schema::GeoIP2City), ("flat", Schema::FlatCity)] {
        let p =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("popdns-geo-noalloc-{name}.mmdb"));
        write_mmdb_with(&entries, &Options::new(schema), &p).unwrap();
        paths.push(p);
    }
    paths.push(repo.join("geoip/dbip-country.mmdb"));
    let addrs: Vec<IpAddr> = [
        "192.0.2.1",
        "198.18.0.1",
        "198.19.0.1",
        "198.19.1.1",
        "10.0.0.1",
        "81.2.69.142",
        "2001:db8:1::1",
        "2001:db8:9::1",
        "2a02:ec80::1",
        "::1",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    for p in &paths {
        let db = GeoDb::open(std::slice::from_ref(p), None).unwrap();
        let before = ALLOCS.with(Cell::get);
        let mut found = 0;
        for _ in 0..100 {
            for &a in &addrs {
                found += usize::from(db.lookup(a).location.is_some());
            }
        }
        let after = ALLOCS.with(Cell::get);
        assert_eq!(
            after - before,
            0,
            "{} allocated during lookups",
            p.display()
        );
        assert!(found > 0);
    }
}
