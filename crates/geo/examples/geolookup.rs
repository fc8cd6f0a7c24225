//! `cargo run --release -p popdns-geo --example geolookup -- DB.mmdb [DB2.mmdb ...] -- IP...`
//!
//! Prints `GeoDb::describe()`, the hit for each IP, and the mean lookup time over the IPs
//! (1 M iterations in total).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Instant;

use popdns_geo::GeoDb;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let split = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let paths: Vec<PathBuf> = args[..split].iter().map(PathBuf::from).collect();
    let ips = args
        .get(split + 1..)
        .unwrap_or_default()
        .iter()
        .map(|s| s.parse::<IpAddr>())
        .collect::<Result<Vec<_>, _>>()?;
    let t = Instant::now();
    let db = GeoDb::open(&paths, None)?;
    println!("opened in {:?}: {}", t.elapsed(), db.describe());
    for &ip in &ips {
        println!("{ip}: {:?}", db.lookup(ip));
    }
    if !ips.is_empty() {
        let rounds = 1_000_000 / ips.len();
        let t = Instant::now();
        let mut found = 0usize;
        for _ in 0..rounds {
            for &ip in &ips {
                found += usize::from(
                    std::hint::black_box(db.lookup(std::hint::black_box(ip)))
                        .location
                        .is_some(),
                );
            }
        }
        let n = rounds * ips.len();
        println!(
            "{n} lookups, {found} located, {:?} per lookup",
            t.elapsed() / u32::try_from(n)?
        );
    }
    Ok(())
}
