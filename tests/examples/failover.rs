//! Failover timing with real backends at the default health settings
//! (interval 2s, timeout 1s, rise 2, fall 3): kill the nearest PoP's
//! backend N times and measure, by polling DNS every 5 ms, the time from the
//! kill to the first answer without the PoP, and from the revival to the
//! first answer with it again.
//!
//! `cargo run --release -p popdns-tests --example failover -- [N]`
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use popdns_tests::*;

fn first(s: &Popdns) -> String {
    let m = s.query("www.cdn.example.", RecordType::A);
    addrs(&m).into_iter().next().unwrap_or_default()
}

fn stats(name: &str, v: &mut [Duration]) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: n={} min={:.0} ms median={:.0} ms max={:.0} ms",
        v.len(),
        ms(v[0]),
        ms(v[v.len() / 2]),
        ms(v[v.len() - 1])
    );
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let mut fra = HttpBackend::start();
    let iad = HttpBackend::start();
    let cfg = basic_config("local_pop = \"fra\"")
        + "[health]\ninterval = \"2s\"\ntimeout = \"1s\"\nrise = 2\nfall = 3\n"
        + &format!(
            "[[pops]]\nname = \"fra\"\nlatitude = 50.11\nlongitude = 8.68\nipv4 = [\"192.0.2.1\"]\ncheck = {{ type = \"http\", url = \"{}\" }}\n",
            fra.url()
        )
        + &format!(
            "[[pops]]\nname = \"iad\"\nlatitude = 39.04\nlongitude = -77.49\nipv4 = [\"198.51.100.1\"]\ncheck = {{ type = \"http\", url = \"{}\" }}\n",
            iad.url()
        )
        + "[[services]]\nname = \"www.cdn.example\"\nttl = 30\n";
    let s = Popdns::start(&cfg);
    let mut down = Vec::new();
    let mut up = Vec::new();
    for i in 0..n {
        assert_eq!(first(&s), "192.0.2.1");
        // Kill at a random phase of the probe cycle.
        std::thread::sleep(Duration::from_millis(137 * (i as u64 % 15)));
        let t0 = Instant::now();
        fra.kill();
        while first(&s) == "192.0.2.1" {
            std::thread::sleep(Duration::from_millis(5));
        }
        down.push(t0.elapsed());
        std::thread::sleep(Duration::from_millis(300 * (i as u64 % 7)));
        let t1 = Instant::now();
        fra.revive();
        while first(&s) != "192.0.2.1" {
            std::thread::sleep(Duration::from_millis(5));
        }
        up.push(t1.elapsed());
        eprintln!("kill {i}: down after {:?}, back after {:?}", down[i], up[i]);
    }
    stats("failover (kill -> first answer without the PoP)", &mut down);
    stats("recovery (revive -> first answer with the PoP)", &mut up);
    println!(
        "bound: fall*interval+timeout = 7000 ms; rise*interval = 4000 ms (+ up to one interval of phase)"
    );
}
