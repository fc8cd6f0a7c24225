//! The docker compose demo (`docker-compose.yml`) without containers.
//!
//! The same pieces as in compose, on loopback: the backend program
//! `deploy/backend/backend.py` (one python3 process per PoP), the popdns
//! image's `/etc/popdns` rebuilt from the Dockerfile's `COPY` lines, and the
//! compose config `deploy/compose/popdns.toml` with only its container
//! addresses replaced (listen addresses, `http://pop-*:PORT` check URLs, the
//! secret and state paths). Every replacement must match, so a change to those
//! files that the test cannot follow fails here instead of passing unchecked.
//!
//! Then the README's demo: a London client gets fra; stopping pop-fra moves
//! the answer to iad; `/pops` and `/healthz` show it; starting pop-fra brings
//! it back; a drain with the demo token moves it at once.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use popdns_tests::*;

const FRA: &str = "192.0.2.1";
const IAD: &str = "198.51.100.1";
const SIN: &str = "192.0.2.129";
/// GB in the shipped DB-IP country database: fra, then iad, then sin.
const LONDON: &str = "81.2.69.0/24";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// One `python3 deploy/backend/backend.py` process, as in a pop-* service.
struct Backend {
    child: Child,
    port: u16,
}

impl Backend {
    /// Start on `port` (0: a free one) and wait for its `listening on` line.
    fn start(pop: &str, port: u16, down_file: &Path) -> Backend {
        let mut child = Command::new("python3")
            .arg(repo().join("deploy/backend/backend.py"))
            .args(["--pop", pop, "--bind", "127.0.0.1", "--quiet"])
            .args(["--port", &port.to_string()])
            .arg("--down-file")
            .arg(down_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 must be installed");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split_whitespace()
            .nth(2)
            .and_then(|a| a.rsplit_once(':'))
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("backend {pop}: no port in {line:?}"));
        Backend { child, port }
    }

    /// `docker compose stop`: SIGTERM, then wait for the exit.
    fn stop(&mut self) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let t0 = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "backend ignored SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// Rebuild the image's `/etc/popdns` in `dir` from the Dockerfile's `COPY`
/// lines (build context: the repository). Returns the files placed.
fn image_etc(dir: &Path) -> Vec<String> {
    let mut placed = Vec::new();
    for line in read("Dockerfile").lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() != Some(&"COPY") || words.iter().any(|w| w.starts_with("--from")) {
            continue;
        }
        let args: Vec<&str> = words[1..]
            .iter()
            .copied()
            .filter(|w| !w.starts_with("--"))
            .collect();
        let (dest, srcs) = args.split_last().unwrap();
        let Some(rel_dest) = dest.strip_prefix("/etc/popdns/") else {
            continue;
        };
        for src in srcs {
            let from = repo().join(src);
            assert!(from.exists(), "Dockerfile: COPY source {src} is missing");
            if from.is_dir() {
                copy_tree(&from, &dir.join(rel_dest));
            } else if dest.ends_with('/') {
                let to = dir.join(rel_dest).join(from.file_name().unwrap());
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(&from, &to).unwrap();
            } else {
                std::fs::copy(&from, dir.join(rel_dest)).unwrap();
            }
            placed.push(format!("{src} -> {dest}"));
        }
    }
    placed
}

/// Replace `from` by `to`; `from` must occur.
fn subst(text: &mut String, from: &str, to: &str) {
    assert!(
        text.contains(from),
        "deploy/compose/popdns.toml no longer contains {from:?}: update tests/tests/deploy.rs"
    );
    *text = text.replace(from, to);
}

/// The `http://pop-NAME:PORT/` check URLs of the compose config.
fn check_hosts(config: &str) -> Vec<(String, u16)> {
    config
        .split("http://pop-")
        .skip(1)
        .map(|rest| {
            let (name, rest) = rest.split_once(':').unwrap();
            let port = rest.split('/').next().unwrap().parse().unwrap();
            (name.to_string(), port)
        })
        .collect()
}

fn answer(s: &Popdns, name: &str) -> Vec<String> {
    addrs(&s.udp_msg(&ecs_query(name, RecordType::A, LONDON)))
}

/// The JSON object of PoP `name` in a `/pops` document (flat objects).
fn pop_entry(pops: &str, name: &str) -> String {
    pops.split(['{', '}'])
        .find(|o| o.contains(&format!("\"name\": \"{name}\"")))
        .unwrap_or_else(|| panic!("no PoP {name} in {pops}"))
        .to_string()
}

#[test]
fn compose_topology_on_loopback_fails_over_and_back() {
    let compose = read("docker-compose.yml");
    let dir = TempDir::new("deploy");
    let placed = image_etc(dir.path());
    assert!(
        placed
            .iter()
            .any(|p| p.ends_with("/etc/popdns/popdns.toml")),
        "the Dockerfile must install the config as /etc/popdns/popdns.toml: {placed:?}"
    );
    let mut config = std::fs::read_to_string(dir.path().join("popdns.toml")).unwrap();
    assert_eq!(
        config,
        read("deploy/compose/popdns.toml"),
        "the image's config is deploy/compose/popdns.toml"
    );

    // Backends: one per check URL, each a compose service running the program.
    let hosts = check_hosts(&config);
    assert_eq!(
        hosts.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["fra", "iad", "sin"]
    );
    let mut backends = Vec::new();
    for (pop, port) in &hosts {
        let svc = format!("\n  pop-{pop}:\n");
        let cmd = format!(
            "command: [\"python3\", \"/app/backend.py\", \"--pop\", \"{pop}\", \"--port\", \"{port}\"]"
        );
        let at = compose
            .find(&svc)
            .unwrap_or_else(|| panic!("docker-compose.yml has no service pop-{pop}"));
        let body = &compose[at + svc.len()..];
        let body = &body[..body.find("\n  pop-").unwrap_or(body.len())];
        assert!(
            body.contains(&cmd),
            "service pop-{pop} must run: {cmd}\n{body}"
        );
        let b = Backend::start(pop, 0, &dir.path().join(format!("down-{pop}")));
        subst(
            &mut config,
            &format!("http://pop-{pop}:{port}/"),
            // A host name, as in compose: check URLs must resolve names.
            &format!("http://localhost:{}/", b.port),
        );
        backends.push(b);
    }
    assert!(compose.contains("./deploy/backend/backend.py:/app/backend.py"));

    // Listen addresses: the ports compose publishes, here on free loopback ports.
    assert!(compose.contains(":5353/udp\"") && compose.contains(":5353/tcp\""));
    assert!(compose.contains(":9153/tcp\""));
    subst(&mut config, "\"0.0.0.0:5353\"", "\"127.0.0.1:0\"");
    subst(&mut config, "\"0.0.0.0:9153\"", "\"127.0.0.1:0\"");
    // The token: the compose secret's file, mounted where the config says.
    assert!(compose.contains("file: ./deploy/compose/admin.token"));
    assert!(compose.contains("target: /run/secrets/popdns-admin-token"));
    let token = read("deploy/compose/admin.token").trim().to_string();
    let token_path = dir.write("secrets/admin.token", &format!("{token}\n"));
    subst(
        &mut config,
        "\"/run/secrets/popdns-admin-token\"",
        &format!("{:?}", token_path.to_str().unwrap()),
    );
    // The state volume.
    assert!(compose.contains("popdns-state:/var/lib/popdns"));
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    subst(
        &mut config,
        "\"/var/lib/popdns/",
        &format!("\"{}/", state.to_str().unwrap()),
    );
    let code: String = config
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    for left in ["pop-", "\"0.0.0.0:", "/run/", "/var/lib/"] {
        assert!(
            !code.contains(left),
            "container-only {left:?} left in the config:\n{config}"
        );
    }
    dir.write("popdns.toml", &config);

    let (code, out, err) = run_popdns(&[
        "check",
        "--config",
        dir.path().join("popdns.toml").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "popdns check:\n{out}{err}");
    let s = Popdns::spawn(dir).unwrap_or_else(|log| panic!("popdns did not start:\n{log}"));
    let http = |m: &str, p: &str, body: Option<&str>, tok: Option<&str>| s.http(m, p, body, tok);

    // The demo: London gets fra; the video service gets two PoPs.
    assert_eq!(answer(&s, "www.cdn.example."), [FRA]);
    assert_eq!(answer(&s, "video.cdn.example."), [FRA, IAD]);
    let (code, body) = http("GET", "/healthz", None, None);
    assert_eq!(code, 200, "{body}");

    // docker compose stop pop-fra
    let t0 = Instant::now();
    backends[0].stop();
    let took = poll_until(Duration::from_secs(15), || {
        answer(&s, "www.cdn.example.") == [IAD]
    })
    .unwrap_or_else(|| panic!("answer never moved off fra:\n{}", s.log_text()));
    println!("failover after {:?}", t0.elapsed());
    assert!(
        took >= Duration::from_secs(1),
        "moved before fall x interval"
    );
    assert_eq!(answer(&s, "video.cdn.example."), [IAD, SIN]);
    // Degraded answers: TTL capped at interval x fall (1 s x 3), not ttl = 30.
    let m = s.udp_msg(&ecs_query("www.cdn.example.", RecordType::A, LONDON));
    assert!(m.answers[0].ttl <= 3, "ttl {}", m.answers[0].ttl);
    let (code, pops) = http("GET", "/pops", None, None);
    assert_eq!(code, 200);
    let fra = pop_entry(&pops, "fra");
    for want in [
        "\"state\": \"down\"",
        "\"probe_state\": \"down\"",
        "\"admin_state\": \"auto\"",
        "\"last_result\": \"fail\"",
    ] {
        assert!(fra.contains(want), "{want} not in {fra}");
    }
    assert!(
        pop_entry(&pops, "iad").contains("\"state\": \"up\""),
        "{pops}"
    );
    // local_pop is fra: /healthz asks BGP speakers to withdraw this node.
    let (code, body) = http("GET", "/healthz", None, None);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("local PoP fra is down"), "{body}");
    let metrics = parse_metrics(&http("GET", "/metrics", None, None).1);
    assert_eq!(metrics.get("popdns_pop_up{pop=\"fra\"}"), Some(&0.0));
    assert_eq!(metrics.get("popdns_pop_up{pop=\"iad\"}"), Some(&1.0));

    // docker compose start pop-fra: same address, back after `rise` probes.
    let port = backends[0].port;
    backends[0] = Backend::start("fra", port, &s.dir.path().join("down-fra"));
    poll_until(Duration::from_secs(15), || {
        answer(&s, "www.cdn.example.") == [FRA]
    })
    .expect("answer never came back to fra");

    // Unhealthy without stopping: the backend's down file gives 503.
    std::fs::write(s.dir.path().join("down-fra"), "").unwrap();
    poll_until(Duration::from_secs(15), || {
        answer(&s, "www.cdn.example.") == [IAD]
    })
    .expect("a 503 from /healthz did not move the answer");
    assert!(pop_entry(&http("GET", "/pops", None, None).1, "fra").contains("HTTP 503"));
    std::fs::remove_file(s.dir.path().join("down-fra")).unwrap();
    poll_until(Duration::from_secs(15), || {
        answer(&s, "www.cdn.example.") == [FRA]
    })
    .expect("answer never came back to fra");

    // Drain for maintenance: the demo token is required and works.
    let drain = Some(r#"{"state":"down"}"#);
    assert_eq!(http("PUT", "/pops/fra/admin", drain, None).0, 401);
    let (code, body) = http("PUT", "/pops/fra/admin", drain, Some(&token));
    assert_eq!(code, 200, "{body}");
    assert_eq!(answer(&s, "www.cdn.example."), [IAD]);
    let saved = std::fs::read_to_string(s.dir.path().join("state/admin-state.json")).unwrap();
    assert!(saved.contains("fra"), "{saved}");
    let (code, _) = http(
        "PUT",
        "/pops/fra/admin",
        Some(r#"{"state":"auto"}"#),
        Some(&token),
    );
    assert_eq!(code, 200);
    assert_eq!(answer(&s, "www.cdn.example."), [FRA]);
}

#[test]
fn backend_program_answers_healthz_and_stops_on_sigterm() {
    let dir = TempDir::new("backend");
    let down = dir.path().join("down");
    let mut b = Backend::start("sin", 0, &down);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], b.port));
    assert_eq!(
        http_request(addr, "GET", "/healthz", None, None),
        (200, "ok sin\n".to_string())
    );
    std::fs::write(&down, "").unwrap();
    assert_eq!(http_request(addr, "GET", "/healthz", None, None).0, 503);
    assert_eq!(http_request(addr, "GET", "/nope", None, None).0, 404);
    let t0 = Instant::now();
    b.stop();
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert!(std::net::TcpStream::connect(addr).is_err());
}
