//! Check specifications and the probes that run them.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use reqwest::header::{HOST, HeaderValue};

use crate::HealthError;

/// Default time between two probes of one PoP.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// Default time a probe may take before it counts as a failure.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default number of consecutive successes that bring a down PoP up.
pub const DEFAULT_RISE: u32 = 2;
/// Default number of consecutive failures that bring an up PoP down.
pub const DEFAULT_FALL: u32 = 3;

/// Upper bound accepted for `interval` and `timeout`.
const MAX_DURATION: Duration = Duration::from_secs(86_400);

/// What a check does to decide whether a PoP is alive.
///
/// The check target is independent of the addresses the PoP is answered with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// No probing: the PoP is always up (unless an operator forces it down).
    None,
    /// TCP connect to `address` (`host:port`, `[v6]:port`); success when the
    /// connection is established.
    Tcp {
        /// `host:port` to connect to; host names are resolved on every probe.
        address: String,
    },
    /// HTTP(S) `GET url`; success when the response status is in `expect`.
    ///
    /// Redirects are never followed: a 3xx is a failure unless listed in
    /// `expect`. HTTPS verifies the certificate chain and host name unless
    /// `insecure` is set. No proxy from the environment is used.
    Http {
        /// `http://` or `https://` URL.
        url: String,
        /// Accepted status codes; an empty list means `[200]`.
        expect: Vec<u16>,
        /// Overrides the `Host` header (TLS SNI still uses the URL's host).
        host: Option<String>,
        /// Skip certificate verification for HTTPS.
        insecure: bool,
    },
}

impl fmt::Display for CheckKind {
    /// `"none"`, `"tcp HOST:PORT"` or `"http URL"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckKind::None => f.write_str("none"),
            CheckKind::Tcp { address } => write!(f, "tcp {address}"),
            CheckKind::Http { url, .. } => write!(f, "http {url}"),
        }
    }
}

/// A check plus its timing and hysteresis parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckSpec {
    /// What to probe.
    pub kind: CheckKind,
    /// Time between the starts of two probes (a small jitter is added).
    pub interval: Duration,
    /// Maximum duration of one probe; exceeding it is a failure.
    pub timeout: Duration,
    /// Consecutive successes needed to go from down to up.
    pub rise: u32,
    /// Consecutive failures needed to go from up to down.
    pub fall: u32,
}

impl CheckSpec {
    /// A check of `kind` with the default interval, timeout, rise and fall.
    pub fn new(kind: CheckKind) -> CheckSpec {
        CheckSpec {
            kind,
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            rise: DEFAULT_RISE,
            fall: DEFAULT_FALL,
        }
    }

    /// Checks the parameters; `pop` is used in the error message.
    pub fn validate(&self, pop: &str) -> Result<(), HealthError> {
        let bad = |reason: String| HealthError::InvalidCheck {
            pop: pop.to_owned(),
            reason,
        };
        if self.kind == CheckKind::None {
            return Ok(());
        }
        if self.interval.is_zero() {
            return Err(bad("interval must be greater than zero".into()));
        }
        if self.timeout.is_zero() {
            return Err(bad("timeout must be greater than zero".into()));
        }
        if self.interval > MAX_DURATION || self.timeout > MAX_DURATION {
            return Err(bad("interval and timeout must be at most one day".into()));
        }
        if self.rise == 0 || self.fall == 0 {
            return Err(bad("rise and fall must be at least 1".into()));
        }
        match &self.kind {
            CheckKind::None => Ok(()),
            CheckKind::Tcp { address } => match address.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
                _ => Err(bad(format!("tcp address {address:?} is not host:port"))),
            },
            CheckKind::Http {
                url, host, expect, ..
            } => {
                parse_url(url).map_err(bad)?;
                if let Some(h) = host {
                    HeaderValue::from_str(h)
                        .map_err(|_| bad(format!("invalid host header {h:?}")))?;
                }
                if let Some(code) = expect.iter().find(|c| !(100..=999).contains(*c)) {
                    return Err(bad(format!("invalid expected HTTP status {code}")));
                }
                Ok(())
            }
        }
    }
}

impl Default for CheckSpec {
    /// A `none` check with the default timings.
    fn default() -> Self {
        CheckSpec::new(CheckKind::None)
    }
}

fn parse_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid url {url:?}: {e}"))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => return Err(format!("unsupported url scheme {other:?} in {url:?}")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("url {url:?} has no host"));
    }
    Ok(parsed)
}

/// The two HTTP clients shared by all HTTP probes (verifying / not verifying
/// certificates). Connection pooling is off so that every probe opens a fresh
/// connection, as a client would.
#[derive(Clone)]
pub(crate) struct HttpClients {
    /// Built on first use: a client with its TLS roots costs memory that a
    /// deployment without HTTP checks should not pay.
    secure: Arc<OnceLock<Result<reqwest::Client, String>>>,
    insecure: Arc<OnceLock<Result<reqwest::Client, String>>>,
}

impl HttpClients {
    pub(crate) fn new() -> HttpClients {
        HttpClients {
            secure: Arc::new(OnceLock::new()),
            insecure: Arc::new(OnceLock::new()),
        }
    }

    fn get(&self, insecure: bool) -> Result<reqwest::Client, String> {
        let cell = if insecure {
            &self.insecure
        } else {
            &self.secure
        };
        cell.get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .pool_max_idle_per_host(0)
                .user_agent(concat!("popdns-health/", env!("CARGO_PKG_VERSION")))
                .danger_accept_invalid_certs(insecure)
                .build()
                .map_err(|e| HealthError::HttpClient(e.to_string()).to_string())
        })
        .clone()
    }
}

/// A check prepared for repeated probing (URL parsed, client chosen).
pub(crate) enum Probe {
    None,
    Tcp(String),
    Http {
        client: reqwest::Client,
        url: reqwest::Url,
        expect: Vec<u16>,
        host: Option<HeaderValue>,
    },
    /// The spec could not be prepared; every probe fails with this text.
    Invalid(String),
}

impl Probe {
    pub(crate) fn prepare(kind: &CheckKind, clients: &HttpClients) -> Probe {
        match kind {
            CheckKind::None => Probe::None,
            CheckKind::Tcp { address } => Probe::Tcp(address.clone()),
            CheckKind::Http {
                url,
                expect,
                host,
                insecure,
            } => {
                let url = match parse_url(url) {
                    Ok(u) => u,
                    Err(e) => return Probe::Invalid(e),
                };
                let host = match host.as_deref().map(HeaderValue::from_str).transpose() {
                    Ok(h) => h,
                    Err(_) => return Probe::Invalid("invalid host header".into()),
                };
                let client = match clients.get(*insecure) {
                    Ok(c) => c,
                    Err(e) => return Probe::Invalid(e),
                };
                Probe::Http {
                    client,
                    url,
                    expect: if expect.is_empty() {
                        vec![200]
                    } else {
                        expect.clone()
                    },
                    host,
                }
            }
        }
    }

    /// Runs one probe, bounded by `timeout`.
    pub(crate) async fn run(&self, timeout: Duration) -> ProbeResult {
        let start = Instant::now();
        let outcome = tokio::time::timeout(timeout, self.attempt()).await;
        let latency = start.elapsed();
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(format!("timeout after {timeout:?}")),
        };
        ProbeResult { latency, error }
    }

    async fn attempt(&self) -> Result<(), String> {
        match self {
            Probe::None => Ok(()),
            Probe::Invalid(e) => Err(e.clone()),
            Probe::Tcp(address) => tokio::net::TcpStream::connect(address.as_str())
                .await
                .map(drop)
                .map_err(|e| format!("connect: {}", short_error_text(&e))),
            Probe::Http {
                client,
                url,
                expect,
                host,
            } => {
                let mut req = client.get(url.clone());
                if let Some(h) = host {
                    req = req.header(HOST, h.clone());
                }
                let resp = req.send().await.map_err(describe_reqwest_error)?;
                let status = resp.status().as_u16();
                if expect.contains(&status) {
                    Ok(())
                } else {
                    Err(format!("HTTP {status}"))
                }
            }
        }
    }
}

/// Turns a reqwest error into a short text such as `connect: connection refused`.
fn describe_reqwest_error(e: reqwest::Error) -> String {
    let prefix = if e.is_connect() {
        "connect"
    } else if e.is_timeout() {
        "timeout"
    } else {
        "http"
    };
    // The innermost cause carries the useful text (io error, TLS alert, ...).
    let mut inner: &dyn std::error::Error = &e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    format!("{prefix}: {}", short_error_text(inner))
}

/// The error's text, lower-cased, without io::Error's ` (os error N)` suffix.
fn short_error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    if let Some(pos) = text.find(" (os error") {
        text.truncate(pos);
    }
    text.to_lowercase()
}

/// Outcome of one probe.
#[derive(Clone, Debug)]
pub(crate) struct ProbeResult {
    pub(crate) latency: Duration,
    /// `None` on success, else a short description of the failure.
    pub(crate) error: Option<String>,
}
