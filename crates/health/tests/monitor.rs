//! End-to-end tests of the probe engine against real local backends.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use popdns_health::{
    AdminState, CheckKind, EventCause, HealthError, HealthEvent, Monitor, PopCheck, PopStatus,
    layout_of, validate,
};

const INTERVAL: Duration = Duration::from_millis(100);
const TIMEOUT: Duration = Duration::from_millis(100);
const FALL: u32 = 3;
const RISE: u32 = 2;
/// Slack for scheduling on a loaded 2-core machine.
const MARGIN: Duration = Duration::from_millis(700);

async fn started(pops: Vec<PopCheck>) -> Monitor {
    let m = Monitor::new(pops, None).unwrap();
    m.start();
    first_round(&m).await;
    m
}

async fn first_round(m: &Monitor) {
    tokio::time::timeout(Duration::from_secs(5), m.first_round())
        .await
        .expect("first_round did not resolve");
}

fn pop_status(m: &Monitor, name: &str) -> PopStatus {
    m.status().1.into_iter().find(|p| p.name == name).unwrap()
}

fn up(m: &Monitor) -> Vec<bool> {
    m.table().load().up.to_vec()
}

#[tokio::test]
async fn first_round_gives_initial_state() {
    let ok = Backend::http();
    let bad = Backend::http();
    bad.ctl.status.store(503, Ordering::SeqCst);
    let slow = Backend::http();
    slow.ctl.delay_ms.store(300, Ordering::SeqCst);
    let tcp = Backend::tcp();
    let dead = dead_addr();
    let mut slow_pop = http_pop("slow", slow.url("/"));
    slow_pop.check.timeout = Duration::from_secs(2);
    let pops = vec![
        http_pop("ok", ok.url("/")),
        http_pop("bad", bad.url("/")),
        slow_pop,
        tcp_pop("tcp", tcp.addr),
        tcp_pop("dead", dead),
        none_pop("none"),
    ];
    let m = Monitor::new(pops, None).unwrap();
    let table = m.table();
    // Before any probe: only the `none` PoP is up.
    assert_eq!(table.load().epoch, 1);
    assert_eq!(up(&m), [false, false, false, false, false, true]);

    let t0 = Instant::now();
    m.start();
    first_round(&m).await;
    let took = t0.elapsed();
    // first_round waited for the slow backend's first answer.
    assert!(
        took >= Duration::from_millis(250),
        "first_round took {took:?}"
    );
    assert_eq!(up(&m), [true, false, true, true, false, true]);

    let (epoch, st) = m.status();
    assert_eq!(epoch, table.load().epoch);
    assert_eq!(st[0].last_ok, Some(true));
    assert!(st[0].last_latency.is_some());
    assert_eq!(st[0].check, format!("http {}", ok.url("/")));
    assert_eq!(st[1].last_error.as_deref(), Some("HTTP 503"));
    assert!(!st[1].probe_up);
    assert!(st[2].last_latency.unwrap() >= Duration::from_millis(300));
    assert_eq!(st[3].check, format!("tcp {}", tcp.addr));
    assert_eq!(
        st[4].last_error.as_deref(),
        Some("connect: connection refused")
    );
    assert_eq!(st[5].check, "none");
    assert_eq!(st[5].probes, 0);
    // The initial state is not a transition.
    assert!(st.iter().all(|p| p.transitions == 0));
    m.shutdown();
}

#[tokio::test]
async fn kill_and_revive_http() {
    let b = Backend::http();
    let m = started(vec![http_pop("a", b.url("/"))]).await;
    let table = m.table();
    assert!(table.load().up[0]);

    b.kill().await;
    let down = wait_until(Duration::from_secs(5), "PoP down after kill", || {
        !table.load().up[0]
    })
    .await;
    let bound = INTERVAL * FALL + TIMEOUT + MARGIN;
    assert!(down <= bound, "down after {down:?} > {bound:?}");
    // One failure is not enough: fall=3 needs at least two more intervals.
    assert!(
        down >= Duration::from_millis(150),
        "down too early: {down:?}"
    );
    let s = pop_status(&m, "a");
    assert_eq!(s.last_error.as_deref(), Some("connect: connection refused"));
    assert!(!s.probe_up);

    b.revive();
    let rise = wait_until(Duration::from_secs(5), "PoP up after revive", || {
        table.load().up[0]
    })
    .await;
    let bound = INTERVAL * RISE + TIMEOUT + MARGIN;
    assert!(rise <= bound, "up after {rise:?} > {bound:?}");
    assert!(rise >= Duration::from_millis(50), "up too early: {rise:?}");
    let s = pop_status(&m, "a");
    assert_eq!(s.transitions, 2);
    assert!(s.last_error.is_none());
    m.shutdown();
}

#[tokio::test]
async fn kill_tcp_listener() {
    let b = Backend::tcp();
    let m = started(vec![tcp_pop("t", b.addr)]).await;
    let table = m.table();
    assert!(table.load().up[0]);
    b.kill().await;
    let down = wait_until(Duration::from_secs(5), "tcp PoP down", || {
        !table.load().up[0]
    })
    .await;
    assert!(down <= INTERVAL * FALL + TIMEOUT + MARGIN, "{down:?}");
    b.revive();
    wait_until(Duration::from_secs(5), "tcp PoP up", || table.load().up[0]).await;
    m.shutdown();
}

#[tokio::test]
async fn flapping_backend_never_changes_state() {
    let b = Backend::http();
    b.ctl.alternate.store(true, Ordering::SeqCst);
    let m = started(vec![http_pop("flappy", b.url("/"))]).await;
    let table = m.table();
    // The first request got 200: up.
    assert!(table.load().up[0]);
    let epoch = table.load().epoch;
    wait_until(Duration::from_secs(10), "20 probes", || {
        pop_status(&m, "flappy").probes >= 20
    })
    .await;
    let s = pop_status(&m, "flappy");
    assert!(s.effective_up);
    assert_eq!(s.transitions, 0);
    assert_eq!(table.load().epoch, epoch);
    // It really did see failures.
    assert!(b.hits() >= 20);
    m.shutdown();
}

#[tokio::test]
async fn slow_backend_is_down_then_recovers() {
    let b = Backend::http();
    b.ctl.delay_ms.store(400, Ordering::SeqCst);
    let m = started(vec![http_pop("slow", b.url("/"))]).await;
    assert!(!m.table().load().up[0]);
    let s = pop_status(&m, "slow");
    assert_eq!(s.last_error.as_deref(), Some("timeout after 100ms"));
    b.ctl.delay_ms.store(0, Ordering::SeqCst);
    let table = m.table();
    wait_until(Duration::from_secs(5), "fast again → up", || {
        table.load().up[0]
    })
    .await;
    m.shutdown();
}

#[tokio::test]
async fn http_status_must_be_expected() {
    let b = Backend::http();
    b.ctl.status.store(204, Ordering::SeqCst);
    let mut expect_204 = http_pop("expect204", b.url("/"));
    if let CheckKind::Http { expect, .. } = &mut expect_204.check.kind {
        *expect = vec![200, 204];
    }
    let m = started(vec![http_pop("default", b.url("/")), expect_204]).await;
    assert_eq!(up(&m), [false, true]);
    assert_eq!(
        pop_status(&m, "default").last_error.as_deref(),
        Some("HTTP 204")
    );
    m.shutdown();
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let b = Backend::http();
    let mut expect_302 = http_pop("expect302", b.url("/redirect"));
    if let CheckKind::Http { expect, .. } = &mut expect_302.check.kind {
        *expect = vec![302];
    }
    let m = started(vec![http_pop("default", b.url("/redirect")), expect_302]).await;
    assert_eq!(up(&m), [false, true]);
    assert_eq!(
        pop_status(&m, "default").last_error.as_deref(),
        Some("HTTP 302")
    );
    // The Location target was never fetched.
    assert_eq!(b.ctl.root_hits.load(Ordering::SeqCst), 0);
    m.shutdown();
}

#[tokio::test]
async fn host_header_override() {
    let b = Backend::http();
    let mut p = http_pop("h", b.url("/"));
    if let CheckKind::Http { host, .. } = &mut p.check.kind {
        *host = Some("www.example.test".into());
    }
    let m = started(vec![p]).await;
    assert!(up(&m)[0]);
    assert_eq!(
        b.ctl.last_host.lock().unwrap().as_deref(),
        Some("www.example.test")
    );
    m.shutdown();
}

#[tokio::test]
async fn https_verifies_certificates_unless_insecure() {
    let b = Backend::https_self_signed();
    let mut insecure = http_pop("insecure", b.url("/"));
    if let CheckKind::Http { insecure: i, .. } = &mut insecure.check.kind {
        *i = true;
    }
    let m = started(vec![http_pop("secure", b.url("/")), insecure]).await;
    assert_eq!(up(&m), [false, true]);
    let err = pop_status(&m, "secure").last_error.unwrap();
    assert!(err.contains("certificate"), "{err}");
    m.shutdown();
}

#[tokio::test]
async fn admin_override_and_persistence() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("health-state.json");
    let ok = Backend::http();
    let dead = dead_addr();
    let pops = vec![http_pop("ok", ok.url("/")), tcp_pop("dead", dead)];

    let m = Monitor::new(pops.clone(), Some(file.clone())).unwrap();
    m.start();
    first_round(&m).await;
    let table = m.table();
    assert_eq!(up(&m), [true, false]);

    let events: Arc<Mutex<Vec<HealthEvent>>> = Arc::default();
    let sink = Arc::clone(&events);
    m.set_listener(Box::new(move |e| sink.lock().unwrap().push(e.clone())));

    // Effective at once, no polling.
    let e0 = table.load().epoch;
    m.set_admin("ok", AdminState::Down).unwrap();
    assert_eq!(up(&m), [false, false]);
    assert_eq!(table.load().epoch, e0 + 1);
    m.set_admin("dead", AdminState::Up).unwrap();
    assert_eq!(up(&m), [false, true]);
    assert_eq!(table.load().epoch, e0 + 2);
    // Setting the same state again publishes nothing.
    m.set_admin("dead", AdminState::Up).unwrap();
    assert_eq!(table.load().epoch, e0 + 2);
    let s = pop_status(&m, "ok");
    assert_eq!(s.admin, AdminState::Down);
    assert!(s.probe_up && !s.effective_up);
    {
        let ev = events.lock().unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].pop, "ok");
        assert!(!ev[0].up);
        assert_eq!(ev[0].cause, EventCause::Admin);
    }
    assert!(matches!(
        m.set_admin("nope", AdminState::Down),
        Err(HealthError::UnknownPop(_))
    ));

    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\"ok\": \"down\""), "{text}");
    assert!(text.contains("\"dead\": \"up\""), "{text}");
    m.shutdown();
    drop(m);

    // A new monitor with the same file keeps the override, before any probe.
    let m2 = Monitor::new(pops.clone(), Some(file.clone())).unwrap();
    assert_eq!(up(&m2), [false, true]);
    assert_eq!(pop_status(&m2, "ok").admin, AdminState::Down);
    m2.start();
    first_round(&m2).await;
    assert_eq!(up(&m2), [false, true]);
    // Back to auto: the probe state applies at once.
    m2.set_admin("ok", AdminState::Auto).unwrap();
    m2.set_admin("dead", AdminState::Auto).unwrap();
    assert_eq!(up(&m2), [true, false]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("\"ok\""), "{text}");
    m2.shutdown();

    // Unknown names in the file are ignored; a broken file is an error naming it.
    std::fs::write(
        &file,
        r#"{"version":1,"admin":{"gone":"down","ok":"down"}}"#,
    )
    .unwrap();
    let m3 = Monitor::new(pops.clone(), Some(file.clone())).unwrap();
    assert_eq!(pop_status(&m3, "ok").admin, AdminState::Down);
    std::fs::write(&file, "{not json").unwrap();
    let err = Monitor::new(pops, Some(file.clone())).unwrap_err();
    assert!(matches!(err, HealthError::StateFile { .. }));
    assert!(err.to_string().contains("health-state.json"), "{err}");
}

#[tokio::test]
async fn epoch_changes_only_on_effective_changes() {
    let a = Backend::http();
    let b = Backend::http();
    let m = started(vec![http_pop("a", a.url("/")), http_pop("b", b.url("/"))]).await;
    let table = m.table();
    let e0 = table.load().epoch;
    let before = table.load_full();
    wait_until(Duration::from_secs(10), "10 more probes each", || {
        m.status().1.iter().all(|p| p.probes >= 11)
    })
    .await;
    assert_eq!(table.load().epoch, e0);
    // Nothing was republished: still the very same table.
    assert!(Arc::ptr_eq(&before, &table.load_full()));

    // A single failure (fall=3) does not publish either.
    a.ctl.status.store(503, Ordering::SeqCst);
    wait_until(Duration::from_secs(5), "a failure", || {
        pop_status(&m, "a").last_ok == Some(false)
    })
    .await;
    a.ctl.status.store(200, Ordering::SeqCst);
    wait_until(Duration::from_secs(5), "a success", || {
        pop_status(&m, "a").last_ok == Some(true)
    })
    .await;
    assert_eq!(table.load().epoch, e0);

    a.kill().await;
    wait_until(Duration::from_secs(5), "a down", || !table.load().up[0]).await;
    assert_eq!(table.load().epoch, e0 + 1);
    assert_eq!(m.status().0, e0 + 1);
    m.shutdown();
}

#[tokio::test]
async fn reconfigure_keeps_unchanged_pops_and_probes_new_ones() {
    let a = Backend::http();
    let b = Backend::http();
    let c = Backend::http();
    let m = started(vec![http_pop("a", a.url("/")), http_pop("b", b.url("/"))]).await;
    let table = m.table();
    m.set_admin("b", AdminState::Down).unwrap();
    let t0 = table.load_full();
    assert_eq!(t0.layout, layout_of(&["a", "b"]));
    let a_before = pop_status(&m, "a");

    // Same list again: nothing changes.
    m.reconfigure(vec![http_pop("a", a.url("/")), http_pop("b", b.url("/"))]);
    assert!(Arc::ptr_eq(&t0, &table.load_full()));

    // Drop b, add c, reorder.
    m.reconfigure(vec![http_pop("c", c.url("/")), http_pop("a", a.url("/"))]);
    let t1 = table.load_full();
    assert_eq!(&*t1.names, ["c", "a"]);
    assert_eq!(t1.layout, layout_of(&["c", "a"]));
    assert_ne!(t1.layout, t0.layout);
    assert!(t1.epoch > t0.epoch);
    // a never flapped; c is down until its first probe.
    assert!(t1.up[1]);
    let a_after = pop_status(&m, "a");
    assert_eq!(a_after.since, a_before.since);
    assert!(a_after.probes >= a_before.probes);
    assert_eq!(a_after.transitions, 0);

    first_round(&m).await;
    assert_eq!(up(&m), [true, true]);
    assert_eq!(pop_status(&m, "c").transitions, 0);

    // b is no longer probed.
    let b_hits = b.hits();
    let a_probes = pop_status(&m, "a").probes;
    wait_until(Duration::from_secs(5), "5 more probes of a", || {
        pop_status(&m, "a").probes >= a_probes + 5
    })
    .await;
    assert!(b.hits() <= b_hits + 1, "b still probed");

    // Re-adding b: the admin override was dropped with it.
    m.reconfigure(vec![
        http_pop("c", c.url("/")),
        http_pop("a", a.url("/")),
        http_pop("b", b.url("/")),
    ]);
    assert_eq!(pop_status(&m, "b").admin, AdminState::Auto);
    first_round(&m).await;
    assert_eq!(up(&m), [true, true, true]);

    // Changing only the timings keeps the state (no flap, no new first probe).
    let mut slower = http_pop("a", a.url("/"));
    slower.check.interval = Duration::from_millis(150);
    let e = table.load().epoch;
    m.reconfigure(vec![
        http_pop("c", c.url("/")),
        slower,
        http_pop("b", b.url("/")),
    ]);
    assert_eq!(table.load().epoch, e);
    assert!(table.load().up[1]);

    // Changing the target keeps the current state until the new check's
    // first result, which is then taken directly.
    let dead = dead_addr();
    m.reconfigure(vec![
        http_pop("c", c.url("/")),
        tcp_pop("a", dead),
        http_pop("b", b.url("/")),
    ]);
    assert!(table.load().up[1]);
    first_round(&m).await;
    assert!(!table.load().up[1]);
    let s = pop_status(&m, "a");
    assert_eq!(s.check, format!("tcp {dead}"));
    assert_eq!(s.transitions, 1);

    // An invalid list is refused and the old one kept.
    let layout = table.load().layout;
    m.reconfigure(vec![none_pop("x"), none_pop("x")]);
    assert_eq!(table.load().layout, layout);
    m.shutdown();
}

#[tokio::test]
async fn events_report_probe_transitions() {
    let b = Backend::http();
    let m = started(vec![http_pop("a", b.url("/"))]).await;
    let events: Arc<Mutex<Vec<HealthEvent>>> = Arc::default();
    let sink = Arc::clone(&events);
    m.set_listener(Box::new(move |e| sink.lock().unwrap().push(e.clone())));
    b.ctl.status.store(503, Ordering::SeqCst);
    let table = m.table();
    wait_until(Duration::from_secs(5), "down", || !table.load().up[0]).await;
    let ev = events.lock().unwrap().clone();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].cause, EventCause::Probe);
    assert!(!ev[0].up);
    assert_eq!(ev[0].reason, "HTTP 503 (3 consecutive failures)");
    m.shutdown();
}

#[tokio::test]
async fn dropping_the_monitor_stops_probing() {
    let b = Backend::http();
    let m = started(vec![http_pop("a", b.url("/"))]).await;
    drop(m);
    let hits = b.hits();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(b.hits() <= hits + 1);
}

#[test]
fn validation_errors() {
    let dup = vec![none_pop("a"), none_pop("a")];
    assert!(matches!(
        validate(&dup),
        Err(HealthError::DuplicatePop(n)) if n == "a"
    ));
    let mut zero = http_pop("z", "http://127.0.0.1:1/".into());
    zero.check.interval = Duration::ZERO;
    assert!(matches!(
        Monitor::new(vec![zero], None),
        Err(HealthError::InvalidCheck { .. })
    ));
    let bad_url = http_pop("u", "ftp://x/".into());
    assert!(validate(&[bad_url]).is_err());
    let bad_tcp = PopCheck {
        name: "t".into(),
        check: fast(CheckKind::Tcp {
            address: "nohost".into(),
        }),
    };
    assert!(validate(&[bad_tcp]).is_err());
    assert_ne!(layout_of(&["ab", "c"]), layout_of(&["a", "bc"]));
    assert_eq!(layout_of::<&str>(&[]), layout_of::<String>(&[]));
}
