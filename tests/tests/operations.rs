//! Operating popdns without downtime: reload by SIGHUP, admin API and file
//! change; broken input keeps the old data; metrics; /healthz; admin token;
//! graceful stop.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use popdns_tests::*;

fn zone(serial: u32, www: &str) -> String {
    format!(
        "$ORIGIN cdn.example.\n$TTL 300\n@ IN SOA ns1 hostmaster {serial} 7200 900 1209600 300\n  IN NS ns1\nns1 IN A 192.0.2.53\nwww IN A {www}\n"
    )
}

const POPS: &str = "[[pops]]\nname = \"fra\"\nlatitude = 50.11\nlongitude = 8.68\nipv4 = [\"192.0.2.1\"]\n\
[[pops]]\nname = \"iad\"\nlatitude = 39.04\nlongitude = -77.49\nipv4 = [\"198.51.100.1\"]\n";

fn config(extra_server: &str, admin: &str, tail: &str) -> String {
    basic_config(extra_server) + "[admin]\nlisten = \"127.0.0.1:0\"\n" + admin + "\n" + tail
}

fn www(s: &Popdns) -> Vec<String> {
    addrs(&s.query("www.cdn.example.", RecordType::A))
}

fn start(cfg: &str) -> Popdns {
    Popdns::start_with(cfg, &[("cdn.example.zone", &zone(1, "192.0.2.10"))])
}

#[test]
fn sighup_admin_reload_and_file_edit_each_pick_up_a_zone_change() {
    let s = start(&config("", "", ""));
    assert_eq!(www(&s), vec!["192.0.2.10"]);
    // SIGHUP.
    s.dir
        .write("zones/cdn.example.zone", &zone(2, "192.0.2.20"));
    s.signal("HUP");
    poll_until(Duration::from_secs(5), || www(&s) == vec!["192.0.2.20"]).expect("SIGHUP reload");
    // POST /reload, with the change report.
    s.dir
        .write("zones/cdn.example.zone", &zone(3, "192.0.2.30"));
    let (code, body) = s.http("POST", "/reload", None, None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("serial 2 -> 3"), "{body}");
    assert_eq!(www(&s), vec!["192.0.2.30"]);
    // Editing the file is enough (watcher, debounced).
    std::thread::sleep(Duration::from_millis(400));
    s.dir
        .write("zones/cdn.example.zone", &zone(4, "192.0.2.40"));
    poll_until(Duration::from_secs(10), || www(&s) == vec!["192.0.2.40"])
        .expect("file watch reload");
    // Same serial, new content: served, with a warning.
    s.dir
        .write("zones/cdn.example.zone", &zone(4, "192.0.2.41"));
    let (code, body) = s.http("POST", "/reload", None, None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("did not"), "{body}");
    assert_eq!(www(&s), vec!["192.0.2.41"]);
}

#[test]
fn broken_input_on_reload_keeps_the_old_answers() {
    let s = start(&config("", "", ""));
    let cfg = s.dir.path().join("popdns.toml");
    let good_cfg = std::fs::read_to_string(&cfg).unwrap();
    // Broken zone: 422 naming file and line, old data still served.
    s.dir.write(
        "zones/cdn.example.zone",
        &(zone(9, "192.0.2.99") + "bad IN A 999.1.1.1\n"),
    );
    let (code, body) = s.http("POST", "/reload", None, None);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("cdn.example.zone:7:"), "{body}");
    assert_eq!(www(&s), vec!["192.0.2.10"]);
    // Broken config via SIGHUP: logged with file and line, old data served.
    s.dir
        .write("zones/cdn.example.zone", &zone(9, "192.0.2.99"));
    s.dir
        .write("popdns.toml", &(good_cfg.clone() + "bogus_key = 1\n"));
    s.signal("HUP");
    assert!(
        s.wait_log("popdns.toml:", Duration::from_secs(5)),
        "{}",
        s.log_text()
    );
    assert_eq!(www(&s), vec!["192.0.2.10"]);
    // Broken GeoIP database.
    std::fs::write(s.dir.path().join("bad.mmdb"), b"not a database").unwrap();
    s.dir.write(
        "popdns.toml",
        &(good_cfg.clone() + "[geoip]\ndatabase = \"bad.mmdb\"\n" + POPS),
    );
    let (code, body) = s.http("POST", "/reload", None, None);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("bad.mmdb"), "{body}");
    assert_eq!(www(&s), vec!["192.0.2.10"]);
    let m = parse_metrics(&s.http("GET", "/metrics", None, None).1);
    assert!(m["popdns_reload_failures_total"] >= 2.0, "{m:?}");
    // Fixed: the next reload goes through.
    s.dir.write("popdns.toml", &good_cfg);
    let (code, body) = s.http("POST", "/reload", None, None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(www(&s), vec!["192.0.2.99"]);
}

#[test]
fn reload_adding_a_pop_changes_answers() {
    let tail = "[[pops]]\nname = \"fra\"\nlatitude = 50.11\nlongitude = 8.68\nipv4 = [\"192.0.2.1\"]\n\
                [[services]]\nname = \"www.cdn.example\"\nttl = 30\n";
    let s = start(&config("local_pop = \"fra\"", "", tail));
    assert_eq!(www(&s), vec!["192.0.2.1"]);
    // A new PoP listed in an override for everyone (0.0.0.0/0).
    let cfg2 = config(
        "local_pop = \"fra\"",
        "",
        &(tail.to_string()
            + "[[pops]]\nname = \"iad\"\nlatitude = 39.04\nlongitude = -77.49\nipv4 = [\"198.51.100.1\"]\n\
               [[overrides]]\nnetworks = [\"0.0.0.0/0\"]\npops = [\"iad\"]\n"),
    );
    s.dir.write("popdns.toml", &cfg2);
    let (code, body) = s.http("POST", "/reload", None, None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("PoP iad added"), "{body}");
    assert_eq!(www(&s), vec!["198.51.100.1"]);
}

#[test]
fn listen_change_is_reported_as_needing_a_restart() {
    let s = start(&config("", "", ""));
    let cfg = std::fs::read_to_string(s.dir.path().join("popdns.toml")).unwrap();
    s.dir.write(
        "popdns.toml",
        &cfg.replace(
            "listen = [\"127.0.0.1:0\"]",
            "listen = [\"127.0.0.1:0\", \"[::1]:0\"]",
        ),
    );
    let (code, body) = s.http("POST", "/reload", None, None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("needs restart"), "{body}");
}

#[test]
fn metrics_count_queries() {
    let tail = POPS.to_string() + "[[services]]\nname = \"www.cdn.example\"\nttl = 30\n";
    let s = start(&config("local_pop = \"fra\"", "", &tail));
    let before = parse_metrics(&s.http("GET", "/metrics", None, None).1);
    for _ in 0..5 {
        s.query("www.cdn.example.", RecordType::A);
    }
    for _ in 0..3 {
        s.query("nope.cdn.example.", RecordType::A);
    }
    let mut q = query_msg("www.cdn.example.", RecordType::A, true);
    q.edns
        .as_mut()
        .unwrap()
        .options_mut()
        .insert(EdnsOption::Subnet(ClientSubnet::new(
            "192.0.2.0".parse().unwrap(),
            24,
            0,
        )));
    s.udp_msg(&q);
    s.tcp_msg(&query_msg("ns1.cdn.example.", RecordType::A, false));
    let (code, text) = s.http("GET", "/metrics", None, None);
    assert_eq!(code, 200);
    let m = parse_metrics(&text);
    let get = |k: &str| m.get(k).copied().unwrap_or(0.0) - before.get(k).copied().unwrap_or(0.0);
    assert_eq!(
        get("popdns_queries_total{transport=\"udp\",qtype=\"A\",rcode=\"NOERROR\"}"),
        6.0,
        "{text}"
    );
    assert_eq!(
        get("popdns_queries_total{transport=\"udp\",qtype=\"A\",rcode=\"NXDOMAIN\"}"),
        3.0
    );
    assert_eq!(
        get("popdns_queries_total{transport=\"tcp\",qtype=\"A\",rcode=\"NOERROR\"}"),
        1.0
    );
    assert_eq!(
        get("popdns_geo_answers_total{service=\"www.cdn.example\",pop=\"fra\"}"),
        6.0
    );
    // No GeoIP database: every location is unknown, ranked from local_pop.
    assert_eq!(get("popdns_geo_decisions_total{kind=\"local-pop\"}"), 6.0);
    assert_eq!(get("popdns_ecs_queries_total"), 1.0);
    // Repeated questions are answered from the UDP worker's memo (one
    // worker): the 2nd to 5th `www` query replay the decision, the 2nd and
    // 3rd `nope` query the stored NXDOMAIN.
    assert!(
        get("popdns_worker_memo_hits_total{kind=\"route\"}") >= 4.0,
        "{text}"
    );
    assert!(get("popdns_worker_memo_hits_total{kind=\"zone\"}") >= 2.0);
    assert_eq!(m["popdns_zone_serial{zone=\"cdn.example.\"}"], 1.0);
    assert_eq!(m["popdns_snapshot_generation"], 1.0);
    assert_eq!(m["popdns_pop_up{pop=\"fra\"}"], 1.0);
    // /status
    let (code, status) = s.http("GET", "/status", None, None);
    assert_eq!(code, 200);
    for k in [
        "\"identity\": \"test-node-1\"",
        "\"local_pop\": \"fra\"",
        "\"generation\": 1",
        "\"serial\": 1",
        "\"uptime_seconds\"",
    ] {
        assert!(status.contains(k), "{k} in {status}");
    }
}

#[test]
fn healthz_follows_the_local_pop_and_sigterm() {
    let tail = POPS.to_string() + "[[services]]\nname = \"www.cdn.example\"\nttl = 30\n";
    let mut s = start(&config(
        "local_pop = \"fra\"\nshutdown_drain = \"1s\"",
        "",
        &tail,
    ));
    let (code, body) = s.http("GET", "/healthz", None, None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        s.http("PUT", "/pops/fra/admin", Some(r#"{"state":"down"}"#), None)
            .0,
        200
    );
    let (code, body) = s.http("GET", "/healthz", None, None);
    assert_eq!(code, 503);
    assert!(body.contains("local PoP fra is down"), "{body}");
    assert_eq!(
        s.http("PUT", "/pops/fra/admin", Some(r#"{"state":"auto"}"#), None)
            .0,
        200
    );
    assert_eq!(s.http("GET", "/healthz", None, None).0, 200);
    // SIGTERM: 503 at once, DNS still answered during the drain, exit 0.
    s.signal("TERM");
    poll_until(Duration::from_secs(2), || {
        s.http("GET", "/healthz", None, None).0 == 503
    })
    .expect("healthz did not turn 503");
    assert!(
        s.http("GET", "/healthz", None, None)
            .1
            .contains("shutting down")
    );
    assert_eq!(www(&s), vec!["192.0.2.1"]);
    assert_eq!(s.exit_status(Duration::from_secs(10)), Some(0));
}

#[test]
fn graceful_stop_loses_no_in_flight_tcp_answer() {
    let mut s = start(&config("", "", ""));
    let mut c = s.tcp();
    let mut batch = Vec::new();
    for i in 0..50u16 {
        let mut q = query_msg("www.cdn.example.", RecordType::A, false);
        q.metadata.id = i;
        let b = q.to_vec().unwrap();
        batch.extend_from_slice(&(b.len() as u16).to_be_bytes());
        batch.extend_from_slice(&b);
    }
    std::io::Write::write_all(&mut c, &batch).unwrap();
    s.signal("TERM");
    for i in 0..50u16 {
        let m = Message::from_vec(&tcp_recv(&mut c).unwrap_or_else(|| panic!("answer {i} lost")))
            .unwrap();
        assert_eq!(m.metadata.id, i);
    }
    assert_eq!(s.exit_status(Duration::from_secs(10)), Some(0));
}

#[test]
fn admin_token_is_enforced() {
    let token = "s3cret-token-0123456789";
    let dir = TempDir::new("token");
    dir.write("token", token);
    dir.write("zones/cdn.example.zone", &zone(1, "192.0.2.10"));
    dir.write("popdns.toml", &config("", "token_file = \"token\"", POPS));
    let s = Popdns::spawn(dir).unwrap();
    assert_eq!(s.http("POST", "/reload", None, None).0, 401);
    assert_eq!(
        s.http("POST", "/reload", None, Some("wrong-token-0123456789"))
            .0,
        401
    );
    assert_eq!(
        s.http("PUT", "/pops/fra/admin", Some(r#"{"state":"down"}"#), None)
            .0,
        401
    );
    assert_eq!(s.http("POST", "/reload", None, Some(token)).0, 200);
    assert_eq!(
        s.http(
            "PUT",
            "/pops/fra/admin",
            Some(r#"{"state":"down"}"#),
            Some(token)
        )
        .0,
        200
    );
    // Reading needs no token.
    assert_eq!(s.http("GET", "/metrics", None, None).0, 200);
    // A non-loopback admin address without a token is refused.
    let dir = TempDir::new("token2");
    dir.write("zones/cdn.example.zone", &zone(1, "192.0.2.10"));
    let p = dir.write(
        "popdns.toml",
        &(basic_config("") + "[admin]\nlisten = \"0.0.0.0:9153\"\n"),
    );
    let (code, out, _) = run_popdns(&["check", "-c", p.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        out.contains("admin.listen") && out.contains("token_file"),
        "{out}"
    );
}

#[test]
fn query_log_and_json_logs() {
    let dir = TempDir::new("qlog");
    dir.write("zones/cdn.example.zone", &zone(1, "192.0.2.10"));
    dir.write(
        "popdns.toml",
        &(basic_config("") + "[logging]\nquery_log = true\nquery_log_sample = 1.0\n"),
    );
    let s = Popdns::spawn(dir).unwrap();
    s.query("www.cdn.example.", RecordType::A);
    assert!(
        s.wait_log("qname=\"www.cdn.example.\"", Duration::from_secs(3)),
        "{}",
        s.log_text()
    );
    let (code, _, err) = run_popdns(&[
        "--log-format",
        "json",
        "check",
        "-c",
        "/nonexistent/popdns.toml",
    ]);
    assert_eq!(code, 1);
    let _ = err;
}
