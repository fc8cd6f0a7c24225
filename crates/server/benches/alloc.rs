//! Allocations and time per query on the query path.
//!
//! `cargo bench -p popdns-server --bench alloc`
//!
//! A counting global allocator wraps `System`. The bench builds a real
//! `Snapshot` (config + zone + a test mmdb written with `popdns_mmdbgen` into
//! a temp dir, then `popdns_config::load` + `popdns_server::build`) and calls
//! `popdns_server::handle` in a loop for each workload, the way the UDP worker
//! does (one reused `out` buffer). After a warm-up it reports allocations,
//! allocated bytes and nanoseconds per query.
//!
//! Knob: `ALLOC_BENCH_ITERS` (default 300000 queries per workload).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use popdns_server::{QueryCache, Snapshot, Transport, handle, handle_cached};

#[path = "../tests/common/mod.rs"]
mod common;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to `System`, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ZONE: &str = "$ORIGIN cdn.example.
$TTL 300
@ IN SOA ns1.cdn.example. hostmaster.cdn.example. 1 7200 1800 1209600 300
@ IN NS ns1.cdn.example.
ns1 IN A 203.0.113.53
static IN A 203.0.113.200
static IN AAAA 2001:db8:ff::200
www 30 IN A 192.0.2.1
www 30 IN AAAA 2001:db8:1::1
";

/// The first five of the shared PoPs (the bench predates `syd`).
const POPS: &[common::Pop] = &[
    common::POPS[0],
    common::POPS[1],
    common::POPS[2],
    common::POPS[3],
    common::POPS[4],
];

fn setup(dir: &Path) -> Snapshot {
    common::snapshot(
        dir,
        "alloc-bench",
        &[("cdn.example.zone", ZONE.to_string())],
        POPS,
        "[[services]]\nname = \"www.cdn.example\"\nttl = 30\nanswers = 1\n",
    )
}

/// A query message (no TCP length prefix): RD=0, one question, optional
/// EDNS0 OPT (payload 1232) with an optional ECS option.
fn query(id: u16, name: &str, qtype: u16, edns: bool, ecs: Option<(IpAddr, u8)>) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
    for label in name.trim_end_matches('.').split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    if edns {
        let mut opt = Vec::new();
        if let Some((addr, prefix)) = ecs {
            opt = common::ecs_option(addr, prefix);
        }
        m.push(0);
        m.extend_from_slice(&41u16.to_be_bytes());
        m.extend_from_slice(&1232u16.to_be_bytes());
        m.extend_from_slice(&0u32.to_be_bytes());
        m.extend_from_slice(&(opt.len() as u16).to_be_bytes());
        m.extend_from_slice(&opt);
    }
    m
}

struct Workload {
    name: &'static str,
    transport: Transport,
    packets: Vec<Vec<u8>>,
    /// Expected rcode of every answer.
    rcode: u16,
}

struct Row {
    name: &'static str,
    allocs: f64,
    bytes: f64,
    ns: f64,
    len: usize,
}

fn run(snap: &Snapshot, w: &Workload, iters: usize, cached: bool) -> Row {
    let src = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut out: Vec<u8> = Vec::with_capacity(65_535);
    let mut cache = QueryCache::new();
    let mut answer = |p: &[u8], out: &mut Vec<u8>| {
        // TCP connections use the general path.
        if cached && w.transport == Transport::Udp {
            handle_cached(snap, &[], 1, &mut cache, p, src, w.transport, out)
        } else {
            handle(snap, p, src, w.transport, out)
        }
    };
    let n = w.packets.len();
    // Warm-up, and a correctness check of every packet.
    let mut len = 0;
    for p in &w.packets {
        let h = answer(p, &mut out).unwrap_or_else(|| panic!("{}: no answer", w.name));
        assert_eq!(h.rcode, w.rcode, "{}: rcode", w.name);
        len = h.len;
    }
    for i in 0..iters / 10 {
        black_box(answer(&w.packets[i % n], &mut out));
    }
    let a0 = ALLOCS.load(Ordering::Relaxed);
    let b0 = BYTES.load(Ordering::Relaxed);
    let t0 = Instant::now();
    for i in 0..iters {
        black_box(answer(black_box(&w.packets[i % n]), &mut out));
    }
    let el = t0.elapsed();
    let a1 = ALLOCS.load(Ordering::Relaxed);
    let b1 = BYTES.load(Ordering::Relaxed);
    Row {
        name: w.name,
        allocs: (a1 - a0) as f64 / iters as f64,
        bytes: (b1 - b0) as f64 / iters as f64,
        ns: el.as_nanos() as f64 / iters as f64,
        len,
    }
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("popdns-alloc-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let iters: usize = std::env::var("ALLOC_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300_000);
    let dir = tempdir();
    let snap = setup(&dir);

    // Rotating ECS subnets: networks of geoip/test-city.csv (known locations) plus a few
    // the database does not know (local_pop fallback), IPv4 /24 and IPv6 /48.
    let ecs: Vec<(IpAddr, u8)> = [
        ("192.0.2.0", 24),
        ("198.51.100.0", 24),
        ("203.0.113.0", 24),
        ("203.0.113.128", 25),
        ("198.18.7.0", 24),
        ("198.19.0.0", 24),
        ("198.19.1.0", 24),
        ("8.8.8.0", 24),
        ("81.2.69.0", 24),
        ("2001:db8:1::", 48),
        ("2001:db8:2::", 48),
        ("2001:db8:3::", 48),
        ("2001:db8:4::", 48),
        ("2a00:1450:4001::", 48),
    ]
    .iter()
    .map(|(a, p)| (a.parse().expect("addr"), *p))
    .collect();

    const A: u16 = 1;
    let workloads = vec![
        Workload {
            name: "(a) static A, UDP, EDNS",
            transport: Transport::Udp,
            packets: vec![query(1, "static.cdn.example", A, true, None)],
            rcode: 0,
        },
        Workload {
            name: "(b) www A + ECS (14 subnets), UDP",
            transport: Transport::Udp,
            packets: ecs
                .iter()
                .map(|e| query(2, "www.cdn.example", A, true, Some(*e)))
                .collect(),
            rcode: 0,
        },
        Workload {
            name: "(c) www A, no ECS, UDP",
            transport: Transport::Udp,
            packets: vec![query(3, "www.cdn.example", A, true, None)],
            rcode: 0,
        },
        Workload {
            name: "(d) NXDOMAIN (64 names), UDP",
            transport: Transport::Udp,
            packets: (0..64)
                .map(|i| query(4, &format!("nx{i:04}.cdn.example"), A, true, None))
                .collect(),
            rcode: 3,
        },
        Workload {
            name: "(d2) NXDOMAIN (100,000 names: cache misses), UDP",
            transport: Transport::Udp,
            packets: (0..100_000)
                .map(|i| query(4, &format!("nx{i:06}.cdn.example"), A, true, None))
                .collect(),
            rcode: 3,
        },
        Workload {
            name: "(e) static A, TCP, EDNS",
            transport: Transport::Tcp,
            packets: vec![query(5, "static.cdn.example", A, true, None)],
            rcode: 0,
        },
        Workload {
            name: "(f) static A, UDP, no EDNS",
            transport: Transport::Udp,
            packets: vec![query(6, "static.cdn.example", A, false, None)],
            rcode: 0,
        },
    ];

    // The counter itself works: one boxed value is one allocation.
    let a0 = ALLOCS.load(Ordering::Relaxed);
    let b = black_box(Box::new(black_box(7u64)));
    let one = ALLOCS.load(Ordering::Relaxed) - a0;
    drop(b);
    assert_eq!(one, 1, "counting allocator self-check");

    println!("popdns-server alloc bench: {iters} queries per workload after warm-up");
    println!("(counting allocator self-check: Box::new counted {one} allocation)");
    println!();
    println!(
        "General path: `handle` (TCP, fuzzing, tests). UDP worker path: `handle_cached` with one"
    );
    println!(
        "worker's QueryCache (stored zone answers, decoded GeoIP records), as the UDP workers run;"
    );
    println!("TCP rows use the general path in both columns, as the TCP listener does.");
    println!();
    println!(
        "| workload | general allocs/query | general ns/query | UDP worker allocs/query | UDP worker bytes/query | UDP worker ns/query | response bytes |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for w in &workloads {
        let g = run(&snap, w, iters, false);
        let c = run(&snap, w, iters, true);
        assert_eq!(g.len, c.len, "{}: response sizes differ", w.name);
        println!(
            "| {} | {:.3} | {:.0} | {:.3} | {:.1} | {:.0} | {} |",
            g.name, g.allocs, g.ns, c.allocs, c.bytes, c.ns, c.len
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
