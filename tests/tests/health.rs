//! Nearest *healthy* PoP, end to end: real HTTP/TCP backends on loopback,
//! killed and revived; the answer moves within the configured bounds.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use popdns_tests::*;

// Fast settings for tests: interval 200 ms, timeout 200 ms, rise 2, fall 3.
const INTERVAL_MS: u64 = 200;
const TIMEOUT_MS: u64 = 200;
const RISE: u64 = 2;
const FALL: u64 = 3;

const FRA: &str = "192.0.2.1";
const IAD: &str = "198.51.100.1";
const SIN: &str = "192.0.2.129";

/// Three PoPs (fra, iad, sin) with HTTP checks against `backends`, no GeoIP:
/// the location is unknown and ranked from local_pop = fra, so the order is
/// fra, iad, sin.
fn config(backends: &[&HttpBackend; 3], admin_extra: &str, pop_extra: &str) -> String {
    let names = ["fra", "iad", "sin"];
    let coords = [(50.11, 8.68), (39.04, -77.49), (1.35, 103.82)];
    let addrs = [FRA, IAD, SIN];
    let mut c = basic_config("local_pop = \"fra\"");
    c += &format!(
        "[health]\ninterval = \"{INTERVAL_MS}ms\"\ntimeout = \"{TIMEOUT_MS}ms\"\nrise = {RISE}\nfall = {FALL}\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n{admin_extra}\n"
    );
    for i in 0..3 {
        c += &format!(
            "[[pops]]\nname = \"{}\"\nlatitude = {}\nlongitude = {}\nipv4 = [\"{}\"]\ncheck = {{ type = \"http\", url = \"{}\" {pop_extra} }}\n",
            names[i],
            coords[i].0,
            coords[i].1,
            addrs[i],
            backends[i].url()
        );
    }
    c += "[[services]]\nname = \"www.cdn.example\"\nttl = 60\n";
    c
}

fn first(s: &Popdns) -> String {
    let m = s.query("www.cdn.example.", RecordType::A);
    addrs(&m).into_iter().next().unwrap_or_default()
}

fn failover_bound() -> Duration {
    // fall × interval + timeout, plus jitter (5 %) and scheduling margin.
    Duration::from_millis(FALL * INTERVAL_MS + TIMEOUT_MS + 700)
}

fn recovery_bound() -> Duration {
    Duration::from_millis(RISE * INTERVAL_MS + TIMEOUT_MS + 700)
}

#[test]
fn kill_moves_the_answer_and_revive_brings_it_back() {
    let mut fra = HttpBackend::start();
    let iad = HttpBackend::start();
    let sin = HttpBackend::start();
    let s = Popdns::start(&config(&[&fra, &iad, &sin], "", ""));
    assert_eq!(first(&s), FRA);
    let t0 = Instant::now();
    fra.kill();
    let took = poll_until(Duration::from_secs(5), || first(&s) == IAD)
        .expect("answer never moved off the dead PoP");
    assert!(
        took <= failover_bound(),
        "failover took {took:?}, bound {:?}",
        failover_bound()
    );
    assert!(
        t0.elapsed() >= Duration::from_millis((FALL - 1) * INTERVAL_MS),
        "moved too early"
    );
    // An answer that avoids a down PoP has its TTL capped (interval × fall).
    let m = s.query("www.cdn.example.", RecordType::A);
    assert!(m.answers[0].ttl <= 1, "ttl {}", m.answers[0].ttl);
    fra.revive();
    let took =
        poll_until(Duration::from_secs(5), || first(&s) == FRA).expect("answer never came back");
    assert!(took <= recovery_bound(), "recovery took {took:?}");
    let m = s.query("www.cdn.example.", RecordType::A);
    assert_eq!(m.answers[0].ttl, 60);
}

#[test]
fn a_flapping_backend_never_changes_the_answer() {
    let mut fra = HttpBackend::start();
    let iad = HttpBackend::start();
    let sin = HttpBackend::start();
    // rise 3 / fall 3 with a backend alternating each probe interval.
    let s = Popdns::start(&config(&[&fra, &iad, &sin], "", ", rise = 3"));
    let t0 = Instant::now();
    let mut up = true;
    while t0.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(INTERVAL_MS));
        if up {
            fra.set_status(503);
        } else {
            fra.set_status(200);
        }
        up = !up;
        assert_eq!(first(&s), FRA, "flapped after {:?}", t0.elapsed());
    }
    fra.kill();
}

#[test]
fn slow_and_bad_status_backends_count_as_down() {
    let fra = HttpBackend::start();
    let iad = HttpBackend::start();
    let sin = HttpBackend::start();
    let s = Popdns::start(&config(&[&fra, &iad, &sin], "", ""));
    assert_eq!(first(&s), FRA);
    fra.set_delay(TIMEOUT_MS * 3);
    poll_until(Duration::from_secs(5), || first(&s) == IAD).expect("slow backend still served");
    let (_, pops) = s.http("GET", "/pops", None, None);
    assert!(pops.contains("timeout"), "{pops}");
    fra.set_delay(0);
    poll_until(Duration::from_secs(5), || first(&s) == FRA).expect("no recovery");
    fra.set_status(503);
    poll_until(Duration::from_secs(5), || first(&s) == IAD).expect("HTTP 503 still served");
    let (_, pops) = s.http("GET", "/pops", None, None);
    assert!(pops.contains("HTTP 503"), "{pops}");
}

#[test]
fn all_down_fails_open_and_is_counted() {
    let mut fra = HttpBackend::start();
    let mut iad = HttpBackend::start();
    let mut sin = HttpBackend::start();
    let s = Popdns::start(&config(&[&fra, &iad, &sin], "", ""));
    let metrics = || parse_metrics(&s.http("GET", "/metrics", None, None).1);
    poll_until(Duration::from_secs(3), || {
        metrics()
            .get("popdns_probe_duration_seconds_count{pop=\"fra\"}")
            .is_some_and(|&n| n >= 1.0)
    })
    .expect("probe latency histogram");
    fra.kill();
    iad.kill();
    sin.kill();
    poll_until(Duration::from_secs(5), || {
        let m = metrics();
        ["fra", "iad", "sin"]
            .iter()
            .all(|p| m.get(&format!("popdns_pop_up{{pop=\"{p}\"}}")) == Some(&0.0))
    })
    .expect("PoPs never went down");
    // Fail open: answer as if all were up, nearest first.
    assert_eq!(first(&s), FRA);
    let m = metrics();
    assert!(
        m["popdns_geo_decisions_total{kind=\"fail-open\"}"] >= 1.0,
        "{m:?}"
    );
    poll_until(Duration::from_secs(2), || {
        metrics().get("popdns_service_fail_open{service=\"www.cdn.example\"}") == Some(&1.0)
    })
    .expect("fail-open gauge");
    assert!(s.wait_log("failing open", Duration::from_secs(2)));
}

#[test]
fn admin_drain_applies_at_once_and_survives_a_restart() {
    let fra = HttpBackend::start();
    let iad = HttpBackend::start();
    let sin = HttpBackend::start();
    let cfg = config(&[&fra, &iad, &sin], "state_file = \"admin-state.json\"", "");
    let s = Popdns::start(&cfg);
    assert_eq!(first(&s), FRA);
    let (code, body) = s.http("PUT", "/pops/fra/admin", Some(r#"{"state":"down"}"#), None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(first(&s), IAD, "drain must apply to the next query");
    let (code, pops) = s.http("GET", "/pops", None, None);
    assert_eq!(code, 200);
    let v: serde_json_lite::Value = serde_json_lite::parse(&pops);
    let fra_entry = v.pop("fra");
    assert_eq!(fra_entry.get("state"), "down");
    assert_eq!(fra_entry.get("admin_state"), "down");
    assert_eq!(fra_entry.get("probe_state"), "up");
    assert!(pops.contains("\"epoch\""), "{pops}");
    // Unknown PoP and bad state.
    assert_eq!(
        s.http("PUT", "/pops/xyz/admin", Some(r#"{"state":"down"}"#), None)
            .0,
        404
    );
    assert_eq!(
        s.http("PUT", "/pops/fra/admin", Some(r#"{"state":"maybe"}"#), None)
            .0,
        400
    );
    // Restart on the same folder: the drain is kept.
    let s2 = s.restart();
    assert_eq!(first(&s2), IAD);
    assert_eq!(
        s2.http("PUT", "/pops/fra/admin", Some(r#"{"state":"auto"}"#), None)
            .0,
        200
    );
    assert_eq!(first(&s2), FRA);
}

#[test]
fn startup_waits_for_the_first_round() {
    let mut fra = HttpBackend::start();
    let iad = HttpBackend::start();
    let sin = HttpBackend::start();
    fra.kill();
    // fra's first probe fails: the very first answer after the ready line
    // must not be fra.
    let s = Popdns::start(&config(&[&fra, &iad, &sin], "", ""));
    assert_eq!(first(&s), IAD);
}

/// Tiny JSON accessors for the test (no extra dependency).
mod serde_json_lite {
    pub struct Value(String);
    pub fn parse(s: &str) -> Value {
        Value(s.to_string())
    }
    impl Value {
        /// The object of the PoP named `name` in `{"pops": [...]}`.
        pub fn pop(&self, name: &str) -> Value {
            let key = format!("\"name\": \"{name}\"");
            let i = self.0.find(&key).expect("pop not found");
            let start = self.0[..i].rfind('{').unwrap();
            let end = i + self.0[i..].find('}').unwrap();
            Value(self.0[start..=end].to_string())
        }
        pub fn get(&self, key: &str) -> String {
            let k = format!("\"{key}\": \"");
            let i = self
                .0
                .find(&k)
                .unwrap_or_else(|| panic!("{key} not in {}", self.0))
                + k.len();
            self.0[i..i + self.0[i..].find('"').unwrap()].to_string()
        }
    }
}

#[test]
fn tcp_checks_follow_a_real_listener() {
    // fra is checked over TCP against a listener we close and reopen.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let iad = HttpBackend::start();
    let cfg = basic_config("local_pop = \"fra\"")
        + &format!(
            "[health]\ninterval = \"{INTERVAL_MS}ms\"\ntimeout = \"{TIMEOUT_MS}ms\"\nrise = {RISE}\nfall = {FALL}\n\
             [[pops]]\nname = \"fra\"\nlatitude = 50.11\nlongitude = 8.68\nipv4 = [\"{FRA}\"]\n\
             check = {{ type = \"tcp\", address = \"127.0.0.1:{port}\" }}\n\
             [[pops]]\nname = \"iad\"\nlatitude = 39.04\nlongitude = -77.49\nipv4 = [\"{IAD}\"]\n\
             check = {{ type = \"http\", url = \"{}\" }}\n\
             [[services]]\nname = \"www.cdn.example\"\nttl = 60\n",
            iad.url()
        );
    let s = Popdns::start(&cfg);
    assert_eq!(first(&s), FRA);
    let t0 = Instant::now();
    drop(l);
    let took =
        poll_until(Duration::from_secs(5), || first(&s) == IAD).expect("TCP check never failed");
    assert!(took <= failover_bound(), "{took:?}");
    assert!(t0.elapsed() >= Duration::from_millis((FALL - 1) * INTERVAL_MS));
    let _l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    poll_until(Duration::from_secs(5), || first(&s) == FRA).expect("TCP check never recovered");
}
