//! The admin HTTP API of popdns (loopback by default):
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/metrics` | Prometheus / OpenMetrics text |
//! | GET | `/status` | JSON: version, identity, snapshot, zones, PoPs |
//! | GET | `/healthz` | 200 when this node should be announced (anycast), 503 + reason otherwise |
//! | GET | `/pops` | JSON: per-PoP health, probe and admin state |
//! | PUT | `/pops/{name}/admin` | `{"state": "down" \| "up" \| "auto"}` (token) |
//! | POST | `/reload` | rebuild and swap the snapshot (token) |
//!
//! The daemon implements [`Backend`]; this crate only speaks HTTP and renders
//! metrics with `prometheus-client`. Mutating endpoints require
//! `Authorization: Bearer <token>` when a token is configured.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Label set of a sample.
pub type Labels = Vec<(String, String)>;

/// Shorthand for one label.
pub fn label(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_string(), v.into())
}

/// What the admin API needs from the daemon.
pub trait Backend: Send + Sync + 'static {
    /// Fill the metrics of one scrape.
    fn metrics(&self, m: &mut MetricsBuilder);
    /// `/status` document.
    fn status(&self) -> serde_json::Value;
    /// `/pops` document.
    fn pops(&self) -> serde_json::Value;
    /// `Ok(reason)`: announce this node; `Err(reason)`: withdraw it.
    fn healthz(&self) -> Result<String, String>;
    /// Set a PoP's admin state; `Err((status, message))` on failure.
    fn set_admin(&self, pop: &str, state: &str) -> Result<serde_json::Value, (u16, String)>;
    /// Reload; `Err(messages)` when the new configuration was rejected.
    fn reload(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<serde_json::Value, Vec<String>>> + Send + '_>>;
}

/// Probe latency histograms, kept across scrapes (observed by the daemon).
#[derive(Clone)]
pub struct ProbeLatency(Family<Labels, Histogram>);

impl Default for ProbeLatency {
    fn default() -> Self {
        ProbeLatency(Family::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        }))
    }
}

impl ProbeLatency {
    /// Record one probe of `pop` that took `seconds`.
    pub fn observe(&self, pop: &str, seconds: f64) {
        self.0
            .get_or_create(&vec![label("pop", pop)])
            .observe(seconds);
    }
}

/// Collects the metrics of one scrape into a `prometheus-client` registry.
pub struct MetricsBuilder {
    reg: Registry,
}

impl MetricsBuilder {
    fn new(latency: &ProbeLatency) -> Self {
        let mut reg = Registry::default();
        reg.register(
            "popdns_probe_duration_seconds",
            "Health probe latency per PoP",
            latency.0.clone(),
        );
        MetricsBuilder { reg }
    }

    /// A counter family (`_total` is appended to `name`).
    pub fn counter(&mut self, name: &str, help: &str, samples: Vec<(Labels, u64)>) {
        let fam: Family<Labels, Counter> = Family::default();
        for (l, v) in samples {
            fam.get_or_create(&l).inc_by(v);
        }
        self.reg.register(name, help, fam);
    }

    /// A gauge family.
    pub fn gauge(&mut self, name: &str, help: &str, samples: Vec<(Labels, f64)>) {
        let fam: Family<Labels, Gauge<f64, AtomicU64>> = Family::default();
        for (l, v) in samples {
            fam.get_or_create(&l).set(v);
        }
        self.reg.register(name, help, fam);
    }

    fn render(&self) -> String {
        let mut s = String::new();
        if encode(&mut s, &self.reg).is_err() {
            s.clear();
        }
        s
    }
}

/// Admin server settings.
pub struct Settings {
    /// Bearer token for mutating endpoints.
    pub token: Option<String>,
    pub latency: ProbeLatency,
}

type Body = Full<Bytes>;

fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.into())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response<Body> {
    let body = serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".into()) + "\n";
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn authorized(req: &Request<Incoming>, token: Option<&str>) -> bool {
    let Some(token) = token else { return true };
    let Some(h) = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(given) = h.strip_prefix("Bearer ") else {
        return false;
    };
    // Compare without an early exit.
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn route(
    req: Request<Incoming>,
    backend: Arc<dyn Backend>,
    settings: Arc<Settings>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.clone(), segs.as_slice()) {
        (Method::GET, ["metrics"]) => {
            let mut m = MetricsBuilder::new(&settings.latency);
            backend.metrics(&mut m);
            let mut r = text(StatusCode::OK, m.render());
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            r
        }
        (Method::GET, ["status"]) => json(StatusCode::OK, &backend.status()),
        (Method::GET, ["pops"]) => json(StatusCode::OK, &backend.pops()),
        (Method::GET, ["healthz"]) => match backend.healthz() {
            Ok(reason) => text(StatusCode::OK, format!("ok: {reason}\n")),
            Err(reason) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("unavailable: {reason}\n"),
            ),
        },
        (Method::PUT, ["pops", name, "admin"]) => {
            if !authorized(&req, settings.token.as_deref()) {
                return text(StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n");
            }
            let name = name.to_string();
            let body = match Limited::new(req.into_body(), 64 * 1024).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n"),
            };
            let state = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("state").and_then(|s| s.as_str()).map(str::to_string));
            let Some(state) = state else {
                return text(
                    StatusCode::BAD_REQUEST,
                    "expected a JSON body {\"state\": \"down\" | \"up\" | \"auto\"}\n",
                );
            };
            match backend.set_admin(&name, &state) {
                Ok(v) => json(StatusCode::OK, &v),
                Err((code, msg)) => text(
                    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
                    msg + "\n",
                ),
            }
        }
        (Method::POST, ["reload"]) => {
            if !authorized(&req, settings.token.as_deref()) {
                return text(StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n");
            }
            match backend.reload().await {
                Ok(v) => json(StatusCode::OK, &v),
                Err(errors) => json(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &serde_json::json!({ "ok": false, "errors": errors }),
                ),
            }
        }
        (_, ["metrics" | "status" | "pops" | "healthz" | "reload"]) | (_, ["pops", _, "admin"]) => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Serve the admin API on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    backend: Arc<dyn Backend>,
    settings: Settings,
) {
    let settings = Arc::new(settings);
    loop {
        let (stream, peer): (_, SocketAddr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "admin accept error");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let backend = Arc::clone(&backend);
        let settings = Arc::clone(&settings);
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let backend = Arc::clone(&backend);
                let settings = Arc::clone(&settings);
                async move { Ok::<_, Infallible>(route(req, backend, settings).await) }
            });
            let conn = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "admin connection error");
            }
        });
    }
}
