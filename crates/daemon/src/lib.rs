//! Process orchestration for `popdns serve`.
//!
//! Startup order: load and validate the config and every zone, start the
//! health monitor and wait for its first round of probes (so no PoP is
//! served before it was seen), bind DNS and admin listeners, start the UDP
//! workers and TCP tasks, start the file watcher, then log the ready line.
//!
//! Reload (SIGHUP, `POST /reload`, a changed config/zone/GeoIP file) builds a
//! complete new snapshot on a blocking thread, validates it exactly as
//! `popdns check` does, reconfigures the health monitor (unchanged checks keep
//! their state), and swaps the snapshot in one store. Any failure keeps the
//! old snapshot, is logged with file:line and counted. Reloads are serialised.
//!
//! Stop (SIGTERM/SIGINT): `/healthz` turns 503 at once so a BGP speaker
//! withdraws the route, DNS keeps being answered for `shutdown_drain`, then
//! listeners stop accepting, in-flight TCP queries are finished (bounded) and
//! the process exits 0.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use popdns_admin::{Backend, Labels, MetricsBuilder, ProbeLatency, Settings, label};
use popdns_config::Config;
use popdns_health::{AdminState, CheckKind, CheckSpec, Monitor, PopCheck};
use popdns_server::{Shared, Snapshot, TcpLimits};

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{} problem(s) in the configuration or zones:\n{}", .0.len(), .0.join("\n"))]
    Config(Vec<String>),
    #[error("binding DNS listeners {addrs}: {source}")]
    Bind {
        addrs: String,
        source: std::io::Error,
    },
    #[error("binding the admin listener {addr}: {source}")]
    AdminBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("admin token file {path}: {message}")]
    Token { path: PathBuf, message: String },
    #[error("health monitor: {0}")]
    Health(#[from] popdns_health::HealthError),
    #[error("async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("signal handler: {0}")]
    Signal(std::io::Error),
}

/// Load config and snapshot, every problem as text (`popdns check` uses it).
pub fn load(path: &Path, generation: u64) -> Result<(Config, Snapshot), Vec<String>> {
    let config = popdns_config::load(path)
        .map_err(|es| es.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let pops = pop_checks(&config);
    if let Err(e) = popdns_health::validate(&pops) {
        return Err(vec![format!("{}: {e}", config.file.display())]);
    }
    let snap = popdns_server::build(&config, generation)?;
    Ok((config, snap))
}

fn pop_checks(config: &Config) -> Vec<PopCheck> {
    config
        .pops
        .iter()
        .map(|p| PopCheck {
            name: p.name.clone(),
            check: CheckSpec {
                kind: match &p.check.kind {
                    popdns_config::CheckKind::None => CheckKind::None,
                    popdns_config::CheckKind::Tcp { address } => CheckKind::Tcp {
                        address: address.clone(),
                    },
                    popdns_config::CheckKind::Http {
                        url,
                        expect,
                        host,
                        insecure,
                    } => CheckKind::Http {
                        url: url.clone(),
                        expect: expect.clone(),
                        host: host.clone(),
                        insecure: *insecure,
                    },
                },
                interval: p.check.interval,
                timeout: p.check.timeout,
                rise: p.check.rise,
                fall: p.check.fall,
            },
        })
        .collect()
}

/// The running daemon; also the admin API backend.
pub struct Daemon {
    config_path: PathBuf,
    shared: Arc<Shared>,
    monitor: Monitor,
    started: Instant,
    stopping: AtomicBool,
    listeners_up: AtomicBool,
    dns_addrs: Vec<SocketAddr>,
    reload_lock: tokio::sync::Mutex<()>,
    reloads_ok: AtomicU64,
    reload_failures: AtomicU64,
    last_reload_error: Mutex<Vec<String>>,
    latency: ProbeLatency,
    probes_seen: Mutex<HashMap<String, u64>>,
    /// When each PoP was last probed (seen by the periodic sampler).
    last_probe: Mutex<HashMap<String, Instant>>,
    last_reload_ok: Mutex<Option<SystemTime>>,
    last_reload_failed: Mutex<Option<SystemTime>>,
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn ago(t: SystemTime) -> f64 {
    SystemTime::now()
        .duration_since(t)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Daemon {
    /// Reload now. Serialised; returns what changed or every problem.
    pub async fn reload(&self) -> Result<serde_json::Value, Vec<String>> {
        let _guard = self.reload_lock.lock().await;
        let old = self.shared.snapshot.load_full();
        let generation = old.generation + 1;
        let path = self.config_path.clone();
        let built = tokio::task::spawn_blocking(move || load(&path, generation))
            .await
            .unwrap_or_else(|e| Err(vec![format!("reload task failed: {e}")]));
        let (config, snap) = match built {
            Ok(x) => x,
            Err(errors) => {
                self.reload_failures.fetch_add(1, Ordering::Relaxed);
                for e in &errors {
                    tracing::error!("reload failed: {e}");
                }
                tracing::error!(
                    "reload rejected; still serving generation {}",
                    old.generation
                );
                if let Ok(mut l) = self.last_reload_error.lock() {
                    l.clone_from(&errors);
                }
                if let Ok(mut t) = self.last_reload_failed.lock() {
                    *t = Some(SystemTime::now());
                }
                return Err(errors);
            }
        };
        let mut notes: Vec<String> = Vec::new();
        // Settings that need a restart.
        let (o, n) = (&old.config, &config);
        if o.server.listen != n.server.listen {
            notes.push(
                "server.listen changed: needs restart (still listening on the old addresses)"
                    .into(),
            );
        }
        if o.server.workers != n.server.workers {
            notes.push("server.workers changed: needs restart".into());
        }
        if o.admin.listen != n.admin.listen || o.admin.token_file != n.admin.token_file {
            notes.push("admin.listen / admin.token_file changed: needs restart".into());
        }
        if o.rrl != n.rrl {
            notes.push("rrl changed: needs restart".into());
        }
        if o.admin.state_file != n.admin.state_file {
            notes.push("admin.state_file changed: needs restart".into());
        }
        if o.server.tcp_idle_timeout != n.server.tcp_idle_timeout
            || o.server.tcp_max_connections != n.server.tcp_max_connections
            || o.server.tcp_max_connections_per_client != n.server.tcp_max_connections_per_client
            || o.server.tcp_max_queries_per_connection != n.server.tcp_max_queries_per_connection
            || o.server.tcp_query_timeout != n.server.tcp_query_timeout
        {
            notes.push("server.tcp_* changed: needs restart".into());
        }
        for note in &notes {
            tracing::warn!("{note}");
        }
        // Zones: added, removed, serial changes, content without serial change.
        let old_zones: BTreeMap<String, (u32, u64)> = old
            .zones
            .zones()
            .iter()
            .map(|z| (popdns_wire::name_to_text(&z.origin), (z.serial, z.digest)))
            .collect();
        let mut changes: Vec<String> = Vec::new();
        let mut to_notify: Vec<Vec<u8>> = Vec::new();
        for z in snap.zones.zones() {
            let name = popdns_wire::name_to_text(&z.origin);
            match old_zones.get(&name) {
                None => {
                    changes.push(format!("zone {name} added (serial {})", z.serial));
                    to_notify.push(z.origin.to_vec());
                }
                Some(&(serial, _)) if serial != z.serial => {
                    changes.push(format!("zone {name} serial {serial} -> {}", z.serial));
                    to_notify.push(z.origin.to_vec());
                }
                Some(&(_, digest)) if digest != z.digest => {
                    let msg = format!(
                        "zone {name} content changed but its SOA serial {} did not: serving the new content, but secondaries will not pick it up",
                        z.serial
                    );
                    tracing::warn!("{msg}");
                    notes.push(msg);
                    changes.push(format!("zone {name} content changed (same serial)"));
                }
                Some(_) => {}
            }
        }
        let new_names: BTreeSet<String> = snap
            .zones
            .zones()
            .iter()
            .map(|z| popdns_wire::name_to_text(&z.origin))
            .collect();
        for name in old_zones.keys() {
            if !new_names.contains(name) {
                changes.push(format!("zone {name} removed"));
            }
        }
        let old_pops: BTreeSet<&str> = o.pops.iter().map(|p| p.name.as_str()).collect();
        let new_pops: BTreeSet<&str> = n.pops.iter().map(|p| p.name.as_str()).collect();
        for p in new_pops.difference(&old_pops) {
            changes.push(format!("PoP {p} added"));
        }
        for p in old_pops.difference(&new_pops) {
            changes.push(format!("PoP {p} removed"));
        }
        // Health: keep unchanged checks, probe new ones before serving them.
        let new_checks = pop_checks(&config);
        let old_checks = pop_checks(o);
        if new_checks != old_checks {
            self.monitor.reconfigure(new_checks);
            let bound = config
                .pops
                .iter()
                .map(|p| p.check.timeout)
                .max()
                .unwrap_or_default()
                + Duration::from_millis(500);
            let _ = tokio::time::timeout(bound, self.monitor.first_round()).await;
        }
        // Carry the geo answer counters over.
        if let (Some(old_geo), Some(new_geo)) = (old.geo.as_ref(), snap.geo.as_ref()) {
            new_geo.carry_counts(&old_geo.answer_counts());
        }
        let every = query_log_every(&config);
        self.shared.query_log_every.store(every, Ordering::Relaxed);
        let notify_to = config.notify.clone();
        self.shared.snapshot.store(Arc::new(snap));
        drop(old);
        popdns_server::release_memory();
        self.reloads_ok.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut t) = self.last_reload_ok.lock() {
            *t = Some(SystemTime::now());
        }
        if !notify_to.is_empty() && !to_notify.is_empty() {
            let shared = Arc::clone(&self.shared);
            tokio::spawn(send_notifies(shared, to_notify, notify_to));
        }
        if changes.is_empty() {
            tracing::info!(generation, "reloaded: no zone or PoP changes");
        }
        for c in &changes {
            tracing::info!(generation, "reloaded: {c}");
        }
        Ok(serde_json::json!({
            "ok": true,
            "generation": generation,
            "changes": changes,
            "warnings": notes,
        }))
    }

    /// Begin stopping: `/healthz` answers 503 from now on.
    pub fn begin_stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Sample probe latencies into the histogram (called periodically).
    fn sample_probes(&self) {
        let (_, status) = self.monitor.status();
        let Ok(mut seen) = self.probes_seen.lock() else {
            return;
        };
        let Ok(mut last) = self.last_probe.lock() else {
            return;
        };
        for s in status {
            let prev = seen.insert(s.name.clone(), s.probes).unwrap_or(0);
            if s.probes > prev {
                last.insert(s.name.clone(), Instant::now());
                if let Some(l) = s.last_latency {
                    self.latency.observe(&s.name, l.as_secs_f64());
                }
            }
        }
    }
}

/// RFC 1996: tell secondaries a zone changed; retry up to 5 times, 1 s
/// apart, until each answers.
async fn send_notifies(shared: Arc<Shared>, zones: Vec<Vec<u8>>, to: Vec<SocketAddr>) {
    for origin in zones {
        for &target in &to {
            let msg = {
                let snap = shared.snapshot.load();
                let Some(zone) = snap.zones.zones().iter().find(|z| *z.origin == *origin) else {
                    continue;
                };
                let id = (SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos())
                    & 0xFFFF) as u16;
                popdns_server::notify_message(zone, id)
            };
            let bind: SocketAddr = if target.is_ipv4() {
                SocketAddr::from(([0, 0, 0, 0], 0))
            } else {
                SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
            };
            let Ok(sock) = tokio::net::UdpSocket::bind(bind).await else {
                continue;
            };
            let name = popdns_wire::name_to_text(&origin);
            let mut ok = false;
            for _ in 0..5 {
                if sock.send_to(&msg, target).await.is_err() {
                    break;
                }
                let mut buf = [0u8; 512];
                if let Ok(Ok((n, _))) =
                    tokio::time::timeout(Duration::from_secs(1), sock.recv_from(&mut buf)).await
                    && n >= 12
                    && buf[..2] == msg[..2]
                {
                    ok = true;
                    break;
                }
            }
            if ok {
                tracing::info!(zone = %name, %target, "NOTIFY acknowledged");
            } else {
                tracing::warn!(zone = %name, %target, "NOTIFY not acknowledged after 5 tries");
            }
        }
    }
}

fn query_log_every(config: &Config) -> u64 {
    if !config.logging.query_log || config.logging.query_log_sample <= 0.0 {
        0
    } else {
        (1.0 / config.logging.query_log_sample).round().max(1.0) as u64
    }
}

impl Backend for Daemon {
    fn metrics(&self, m: &mut MetricsBuilder) {
        let snap = self.shared.snapshot.load();
        let t = self.shared.stats.totals();
        m.counter(
            "popdns_queries",
            "DNS queries answered, by transport, query type and response code",
            t.queries
                .iter()
                .map(|&(tr, q, r, n)| {
                    (
                        vec![label("transport", tr), label("qtype", q), label("rcode", r)],
                        n,
                    )
                })
                .collect(),
        );
        m.counter(
            "popdns_queries_dropped",
            "Packets dropped without an answer (not a query, shorter than a header)",
            vec![(vec![], t.dropped)],
        );
        m.counter(
            "popdns_geo_decisions",
            "Geo answers by decision kind (ecs, source-ip, override, local-pop, config-order, fail-open)",
            t.decisions
                .iter()
                .map(|&(d, n)| (vec![label("kind", d)], n))
                .collect(),
        );
        if let Some(geo) = snap.geo.as_ref() {
            m.counter(
                "popdns_geo_answers",
                "Geo answers per service and PoP (each PoP in the answer counts)",
                geo.answer_counts()
                    .into_iter()
                    .map(|(s, p, n)| (vec![label("service", s), label("pop", p)], n))
                    .collect(),
            );
            m.gauge(
                "popdns_service_fail_open",
                "1 while every PoP of the service is down and answers fail open",
                geo.router
                    .services()
                    .map(|(_, i)| {
                        let on = geo.failing_open().contains(&i.name);
                        (
                            vec![label("service", i.name.clone())],
                            f64::from(u8::from(on)),
                        )
                    })
                    .collect(),
            );
        }
        m.counter(
            "popdns_rrl_responses",
            "Responses limited by response rate limiting, by action (dropped, slipped as TC=1)",
            vec![
                (vec![label("action", "dropped")], t.rrl_dropped),
                (vec![label("action", "slipped")], t.rrl_slipped),
            ],
        );
        m.counter(
            "popdns_worker_memo_hits",
            "UDP answers helped by a worker's memo, by kind (zone: a stored zone answer replayed; route: a routing decision replayed; geoip: a GeoIP record not decoded again)",
            vec![
                (vec![label("kind", "zone")], t.memo_hits[0]),
                (vec![label("kind", "route")], t.memo_hits[1]),
                (vec![label("kind", "geoip")], t.memo_hits[2]),
            ],
        );
        m.counter(
            "popdns_ecs_queries",
            "Queries that carried a valid EDNS Client Subnet option",
            vec![(vec![], t.ecs_queries)],
        );
        m.counter(
            "popdns_ecs_formerr",
            "FORMERR answers to malformed EDNS options (ECS per RFC 7871 section 6)",
            vec![(vec![], t.ecs_formerr)],
        );
        m.gauge(
            "popdns_tcp_connections_open",
            "Open TCP connections",
            vec![(vec![], self.shared.tcp_open.load(Ordering::Relaxed) as f64)],
        );
        m.counter(
            "popdns_tcp_connections_refused",
            "TCP connections refused, by limit (total cap, per-client cap)",
            vec![
                (
                    vec![label("limit", "total")],
                    self.shared.tcp_refused.load(Ordering::Relaxed),
                ),
                (
                    vec![label("limit", "per-client")],
                    self.shared.tcp_refused_per_client.load(Ordering::Relaxed),
                ),
            ],
        );
        m.counter(
            "popdns_tcp_connections_closed",
            "TCP connections closed by a limit (slow query, query cap)",
            vec![
                (
                    vec![label("reason", "query-timeout")],
                    self.shared.tcp_timed_out.load(Ordering::Relaxed),
                ),
                (
                    vec![label("reason", "query-cap")],
                    self.shared.tcp_query_cap.load(Ordering::Relaxed),
                ),
            ],
        );
        m.counter(
            "popdns_zone_transfers",
            "AXFR/IXFR requests, by result",
            vec![
                (
                    vec![label("result", "served")],
                    self.shared.xfr_served.load(Ordering::Relaxed),
                ),
                (
                    vec![label("result", "refused")],
                    self.shared.xfr_refused.load(Ordering::Relaxed),
                ),
            ],
        );
        // Health.
        let table = self.shared.health.load();
        let (_, status) = self.monitor.status();
        m.gauge(
            "popdns_pop_up",
            "Effective PoP state (1 up, 0 down) used for answers",
            status
                .iter()
                .map(|s| {
                    (
                        vec![label("pop", s.name.clone())],
                        f64::from(u8::from(s.effective_up)),
                    )
                })
                .collect(),
        );
        m.gauge(
            "popdns_pop_probe_up",
            "Probe state (1 up, 0 down) before admin overrides",
            status
                .iter()
                .map(|s| {
                    (
                        vec![label("pop", s.name.clone())],
                        f64::from(u8::from(s.probe_up)),
                    )
                })
                .collect(),
        );
        m.gauge(
            "popdns_pop_admin_state",
            "Admin override of each PoP: 1 for the state in force (auto, up or down)",
            status
                .iter()
                .flat_map(|s| {
                    ["auto", "up", "down"].into_iter().map(move |st| {
                        let on = matches!(
                            (st, s.admin),
                            ("auto", AdminState::Auto)
                                | ("up", AdminState::Up)
                                | ("down", AdminState::Down)
                        );
                        (
                            vec![label("pop", s.name.clone()), label("state", st)],
                            f64::from(u8::from(on)),
                        )
                    })
                })
                .collect(),
        );
        if let Ok(last) = self.last_probe.lock() {
            m.gauge(
                "popdns_probe_age_seconds",
                "Seconds since each PoP was last probed (PoPs with checks only)",
                status
                    .iter()
                    .filter(|s| s.check != "none")
                    .filter_map(|s| {
                        last.get(&s.name).map(|t| {
                            (
                                vec![label("pop", s.name.clone())],
                                t.elapsed().as_secs_f64(),
                            )
                        })
                    })
                    .collect(),
            );
        }
        m.counter(
            "popdns_pop_transitions",
            "Effective PoP state changes",
            status
                .iter()
                .map(|s| (vec![label("pop", s.name.clone())], s.transitions))
                .collect(),
        );
        m.counter(
            "popdns_probes",
            "Health probes run",
            status
                .iter()
                .map(|s| (vec![label("pop", s.name.clone())], s.probes))
                .collect(),
        );
        m.gauge(
            "popdns_health_table_epoch",
            "Epoch of the health table in use",
            vec![(vec![], table.epoch as f64)],
        );
        m.gauge(
            "popdns_health_table_age_seconds",
            "Seconds since the health table was last published",
            vec![(vec![], ago(table.published_at))],
        );
        // Snapshot and reloads.
        m.counter(
            "popdns_reloads",
            "Successful reloads",
            vec![(vec![], self.reloads_ok.load(Ordering::Relaxed))],
        );
        m.counter(
            "popdns_reload_failures",
            "Rejected reloads (the previous snapshot kept serving)",
            vec![(vec![], self.reload_failures.load(Ordering::Relaxed))],
        );
        let ts = |t: &Mutex<Option<SystemTime>>| t.lock().ok().and_then(|t| *t).map_or(0.0, unix);
        m.gauge(
            "popdns_last_reload_success_timestamp_seconds",
            "Unix time of the last successful reload (0: none since start)",
            vec![(vec![], ts(&self.last_reload_ok))],
        );
        m.gauge(
            "popdns_last_reload_failure_timestamp_seconds",
            "Unix time of the last rejected reload (0: none since start)",
            vec![(vec![], ts(&self.last_reload_failed))],
        );
        m.gauge(
            "popdns_snapshot_generation",
            "Generation of the snapshot in use",
            vec![(vec![], snap.generation as f64)],
        );
        m.gauge(
            "popdns_snapshot_age_seconds",
            "Seconds since the snapshot in use was loaded",
            vec![(vec![], ago(snap.loaded_at))],
        );
        m.gauge(
            "popdns_zone_serial",
            "SOA serial of each zone served",
            snap.zones
                .zones()
                .iter()
                .map(|z| {
                    let l: Labels = vec![label("zone", popdns_wire::name_to_text(&z.origin))];
                    (l, f64::from(z.serial))
                })
                .collect(),
        );
        m.gauge(
            "popdns_uptime_seconds",
            "Seconds since start",
            vec![(vec![], self.started.elapsed().as_secs_f64())],
        );
    }

    fn status(&self) -> serde_json::Value {
        let snap = self.shared.snapshot.load();
        let (epoch, status) = self.monitor.status();
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "identity": snap.config.server.identity,
            "local_pop": snap.config.server.local_pop,
            "uptime_seconds": self.started.elapsed().as_secs(),
            "dns": self.dns_addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "snapshot": {
                "generation": snap.generation,
                "loaded_at_unix": unix(snap.loaded_at),
            },
            "reloads": {
                "ok": self.reloads_ok.load(Ordering::Relaxed),
                "failed": self.reload_failures.load(Ordering::Relaxed),
                "last_errors": self.last_reload_error.lock().map(|l| l.clone()).unwrap_or_default(),
            },
            "zones": snap.zones.zones().iter().map(|z| serde_json::json!({
                "zone": popdns_wire::name_to_text(&z.origin),
                "serial": z.serial,
                "names": z.names(),
                "file": z.file.display().to_string(),
            })).collect::<Vec<_>>(),
            "health_epoch": epoch,
            "pops": status.iter().map(|s| serde_json::json!({
                "name": s.name, "up": s.effective_up,
            })).collect::<Vec<_>>(),
        })
    }

    fn pops(&self) -> serde_json::Value {
        let (epoch, status) = self.monitor.status();
        let admin = |a: AdminState| match a {
            AdminState::Auto => "auto",
            AdminState::Up => "up",
            AdminState::Down => "down",
        };
        serde_json::json!({
            "epoch": epoch,
            "pops": status.iter().map(|s| serde_json::json!({
                "name": s.name,
                "state": if s.effective_up { "up" } else { "down" },
                "probe_state": if s.probe_up { "up" } else { "down" },
                "admin_state": admin(s.admin),
                "since_unix": unix(s.since),
                "check": s.check,
                "last_result": s.last_ok.map(|ok| if ok { "ok" } else { "fail" }),
                "last_latency_ms": s.last_latency.map(|l| l.as_secs_f64() * 1000.0),
                "last_error": s.last_error,
                "transitions": s.transitions,
                "probes": s.probes,
            })).collect::<Vec<_>>(),
        })
    }

    fn healthz(&self) -> Result<String, String> {
        if self.stopping.load(Ordering::Relaxed) {
            return Err("shutting down".into());
        }
        if !self.listeners_up.load(Ordering::Relaxed) {
            return Err("DNS listeners are not up".into());
        }
        let snap = self.shared.snapshot.load();
        if snap.config.admin.healthz_requires_local_pop
            && let Some(lp) = &snap.config.server.local_pop
        {
            let table = self.shared.health.load();
            if let Some(i) = table.index_of(lp)
                && !table.is_up(i)
            {
                return Err(format!("local PoP {lp} is down"));
            }
        }
        Ok(format!(
            "serving {} zone(s), snapshot generation {}",
            snap.zones.zones().len(),
            snap.generation
        ))
    }

    fn set_admin(&self, pop: &str, state: &str) -> Result<serde_json::Value, (u16, String)> {
        let st = match state {
            "up" => AdminState::Up,
            "down" => AdminState::Down,
            "auto" => AdminState::Auto,
            other => {
                return Err((
                    400,
                    format!("state must be up, down or auto, not {other:?}"),
                ));
            }
        };
        match self.monitor.set_admin(pop, st) {
            Ok(()) => {
                tracing::info!(pop, state, "admin state set");
                Ok(serde_json::json!({ "ok": true, "pop": pop, "admin_state": state }))
            }
            Err(popdns_health::HealthError::UnknownPop { .. }) => {
                Err((404, format!("unknown PoP {pop:?}")))
            }
            Err(e) => Err((500, e.to_string())),
        }
    }

    fn reload(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<serde_json::Value, Vec<String>>> + Send + '_>> {
        Box::pin(Daemon::reload(self))
    }
}

/// Paths whose changes trigger a reload.
fn watched(config: &Config) -> (Vec<PathBuf>, Vec<PathBuf>) {
    // (directories to watch, files/dirs that matter)
    let mut dirs = BTreeSet::new();
    let mut files = Vec::new();
    if let Some(d) = config.file.parent() {
        dirs.insert(if d.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            d.to_path_buf()
        });
    }
    files.push(config.file.clone());
    dirs.insert(config.zones_dir.clone());
    files.push(config.zones_dir.clone());
    if let Some(g) = &config.geoip {
        for db in g.databases.iter().chain(g.country_coords.iter()) {
            if let Some(d) = db.parent() {
                dirs.insert(d.to_path_buf());
            }
            files.push(db.clone());
        }
    }
    (dirs.into_iter().collect(), files)
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| {
        // A file being replaced may not exist for a moment: canonicalise its folder.
        match (p.parent(), p.file_name()) {
            (Some(d), Some(f)) => std::fs::canonicalize(if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            })
            .map(|d| d.join(f))
            .unwrap_or_else(|_| p.to_path_buf()),
            _ => p.to_path_buf(),
        }
    })
}

/// Start watching; each relevant change sends on `tx`.
fn start_watcher(
    config: &Config,
    tx: tokio::sync::mpsc::UnboundedSender<PathBuf>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let (dirs, files) = watched(config);
    let zones_dir = canonical(&config.zones_dir);
    let exact: Vec<PathBuf> = files.iter().map(|p| canonical(p)).collect();
    let handler = move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if matches!(ev.kind, notify::EventKind::Access(_)) {
            return;
        }
        for p in ev.paths {
            let c = canonical(&p);
            let relevant = exact.contains(&c)
                || (c.starts_with(&zones_dir)
                    && !c.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        n.starts_with('.') || n.ends_with('~') || n.ends_with(".swp")
                    }));
            if relevant {
                let _ = tx.send(c);
                return;
            }
        }
    };
    let mut w = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "file watching unavailable; reload with SIGHUP or POST /reload");
            return None;
        }
    };
    for d in dirs {
        let mode = if canonical(&d) == canonical(&config.zones_dir) {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        if let Err(e) = w.watch(&d, mode) {
            tracing::warn!(dir = %d.display(), error = %e, "cannot watch folder");
        }
    }
    Some(w)
}

fn read_token(path: &Path) -> Result<String, DaemonError> {
    let t = std::fs::read_to_string(path).map_err(|e| DaemonError::Token {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let t = t.trim().to_string();
    if t.len() < 16 {
        return Err(DaemonError::Token {
            path: path.to_path_buf(),
            message: "the token must be at least 16 characters".into(),
        });
    }
    Ok(t)
}

/// Run `popdns serve` with the configuration at `path` until stopped.
pub fn run(path: &Path) -> Result<(), DaemonError> {
    let (config, snap) = load(path, 1).map_err(DaemonError::Config)?;
    let token = match &config.admin.token_file {
        Some(p) => Some(read_token(p)?),
        None => None,
    };
    let workers = match config.server.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("popdns-rt")
        .build()
        .map_err(DaemonError::Runtime)?;
    rt.block_on(serve(path, config, snap, token, workers))
}

async fn serve(
    path: &Path,
    config: Config,
    snap: Snapshot,
    token: Option<String>,
    workers: usize,
) -> Result<(), DaemonError> {
    // Health first: never serve a PoP that was never probed.
    let monitor = Monitor::new(pop_checks(&config), config.admin.state_file.clone())?;
    monitor.start();
    let bound = config
        .pops
        .iter()
        .map(|p| p.check.timeout)
        .max()
        .unwrap_or_default()
        + Duration::from_millis(500);
    if tokio::time::timeout(bound, monitor.first_round())
        .await
        .is_err()
    {
        tracing::warn!(
            "first round of health probes did not finish in {bound:?}; PoPs without a result count as down"
        );
    }
    let listeners =
        popdns_server::bind(&config.server.listen, workers).map_err(|e| DaemonError::Bind {
            addrs: format!("{:?}", config.server.listen),
            source: e,
        })?;
    let admin_listener = match config.admin.listen {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .map_err(|e| DaemonError::AdminBind { addr: a, source: e })?,
        ),
        None => None,
    };
    let admin_addr = admin_listener.as_ref().and_then(|l| l.local_addr().ok());
    let zones = snap.zones.zones().len();
    let udp_sockets = listeners.udp.len();
    let rrl = config.rrl.enabled.then_some(popdns_server::RrlConfig {
        responses_per_second: f64::from(config.rrl.responses_per_second),
        slip: config.rrl.slip,
        ipv4_prefix: config.rrl.ipv4_prefix,
        ipv6_prefix: config.rrl.ipv6_prefix,
        table_size: config.rrl.table_size,
    });
    let shared = Shared::with_rrl(snap, monitor.table(), udp_sockets, rrl);
    popdns_server::release_memory();
    shared
        .query_log_every
        .store(query_log_every(&config), Ordering::Relaxed);
    let limits = TcpLimits {
        idle_timeout: config.server.tcp_idle_timeout,
        max_connections: config.server.tcp_max_connections,
        max_per_client: config.server.tcp_max_connections_per_client,
        max_queries: config.server.tcp_max_queries_per_connection,
        query_timeout: config.server.tcp_query_timeout,
    };
    let dns_addrs = listeners.addrs.clone();
    let udp_threads = popdns_server::spawn_udp_workers(&shared, listeners.udp);
    let mut tcp_tasks = Vec::new();
    for l in listeners.tcp {
        tcp_tasks.push(tokio::spawn(popdns_server::serve_tcp(
            Arc::clone(&shared),
            l,
            limits,
        )));
    }
    let daemon = Arc::new(Daemon {
        config_path: path.to_path_buf(),
        shared: Arc::clone(&shared),
        monitor: monitor.clone(),
        started: Instant::now(),
        stopping: AtomicBool::new(false),
        listeners_up: AtomicBool::new(true),
        dns_addrs: dns_addrs.clone(),
        reload_lock: tokio::sync::Mutex::new(()),
        reloads_ok: AtomicU64::new(0),
        reload_failures: AtomicU64::new(0),
        last_reload_error: Mutex::new(Vec::new()),
        latency: ProbeLatency::default(),
        probes_seen: Mutex::new(HashMap::new()),
        last_probe: Mutex::new(HashMap::new()),
        last_reload_ok: Mutex::new(None),
        last_reload_failed: Mutex::new(None),
    });
    if let Some(l) = admin_listener {
        let backend: Arc<dyn Backend> = daemon.clone();
        tokio::spawn(popdns_admin::serve(
            l,
            backend,
            Settings {
                token,
                latency: daemon.latency.clone(),
            },
        ));
    }
    // Periodic: probe latency histogram, fail-open state.
    {
        let d = Arc::clone(&daemon);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                d.sample_probes();
            }
        });
    }
    // File watching, debounced.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    let _watcher = start_watcher(&config, tx);
    {
        let d = Arc::clone(&daemon);
        tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                // Debounce: wait until 300 ms pass without another change.
                loop {
                    match tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
                        Ok(Some(_)) => continue,
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
                tracing::info!(file = %p.display(), "change detected: reloading");
                let _ = d.reload().await;
            }
        });
    }
    // Signal handlers before the ready line: a SIGHUP right after it must
    // reload, not kill the process.
    let signals = Signals::install()?;
    let dns: Vec<String> = dns_addrs.iter().map(ToString::to_string).collect();
    tracing::info!(
        dns = %dns.join(","),
        admin = %admin_addr.map_or("off".to_string(), |a| a.to_string()),
        workers,
        zones,
        pops = config.pops.len(),
        identity = %config.server.identity,
        "popdns ready"
    );
    signals.wait_for_stop(&daemon).await;
    // Graceful stop.
    daemon.begin_stop();
    let drain = daemon.shared.snapshot.load().config.server.shutdown_drain;
    tracing::info!(?drain, "stopping: /healthz now answers 503; draining");
    tokio::time::sleep(drain).await;
    shared.shutdown.send_replace(true);
    shared.stopping.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    while shared.tcp_open.load(Ordering::Relaxed) > 0 && t0.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in tcp_tasks {
        t.abort();
    }
    monitor.shutdown();
    tokio::task::spawn_blocking(move || {
        for t in udp_threads {
            let _ = t.join();
        }
    })
    .await
    .ok();
    tracing::info!("popdns stopped");
    Ok(())
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, DaemonError> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(DaemonError::Signal)?,
            int: signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?,
            hup: signal(SignalKind::hangup()).map_err(DaemonError::Signal)?,
        })
    }

    /// Reload on SIGHUP; return on SIGTERM or SIGINT.
    async fn wait_for_stop(mut self, daemon: &Arc<Daemon>) {
        loop {
            tokio::select! {
                _ = self.term.recv() => { tracing::info!("SIGTERM received"); return; }
                _ = self.int.recv() => { tracing::info!("SIGINT received"); return; }
                _ = self.hup.recv() => {
                    tracing::info!("SIGHUP received: reloading");
                    let d = Arc::clone(daemon);
                    tokio::spawn(async move { let _ = d.reload().await; });
                }
            }
        }
    }
}
