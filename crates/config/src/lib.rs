//! popdns configuration: the versioned TOML schema (`version = 1`) and its
//! validation into domain types.
//!
//! Unknown keys are errors. Relative paths resolve against the folder of the
//! config file. Every error names the file, the line and the key.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// A configuration problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)
        }
    }
}

// ---------------------------------------------------------------- raw schema

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    version: Spanned<u32>,
    server: Spanned<RawServer>,
    zones: Spanned<RawZones>,
    geoip: Option<Spanned<RawGeoip>>,
    #[serde(default)]
    pops: Vec<Spanned<RawPop>>,
    #[serde(default)]
    services: Vec<Spanned<RawService>>,
    #[serde(default)]
    overrides: Vec<Spanned<RawOverride>>,
    health: Option<Spanned<RawHealth>>,
    admin: Option<Spanned<RawAdmin>>,
    logging: Option<Spanned<RawLogging>>,
    rrl: Option<Spanned<RawRrl>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    interval: Option<String>,
    timeout: Option<String>,
    rise: Option<u32>,
    fall: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    #[serde(rename = "type")]
    kind: String,
    url: Option<String>,
    address: Option<String>,
    expect: Option<Vec<u16>>,
    host: Option<String>,
    #[serde(default)]
    insecure: bool,
    interval: Option<String>,
    timeout: Option<String>,
    rise: Option<u32>,
    fall: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    listen: Option<Spanned<String>>,
    token_file: Option<String>,
    state_file: Option<String>,
    #[serde(default = "yes")]
    healthz_requires_local_pop: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLogging {
    #[serde(default)]
    query_log: bool,
    query_log_sample: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Vec<Spanned<String>>,
    identity: Option<String>,
    local_pop: Option<Spanned<String>>,
    workers: Option<usize>,
    #[serde(default = "yes")]
    version_queries: bool,
    tcp_idle_timeout: Option<Spanned<String>>,
    tcp_max_connections: Option<usize>,
    tcp_max_connections_per_client: Option<usize>,
    tcp_max_queries_per_connection: Option<u64>,
    tcp_query_timeout: Option<Spanned<String>>,
    shutdown_drain: Option<Spanned<String>>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZones {
    directory: String,
    #[serde(default)]
    allow_transfer: Vec<String>,
    #[serde(default)]
    notify: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRrl {
    #[serde(default)]
    enabled: bool,
    responses_per_second: Option<u32>,
    slip: Option<u32>,
    ipv4_prefix: Option<u8>,
    ipv6_prefix: Option<u8>,
    table_size: Option<usize>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGeoip {
    database: OneOrMany,
    country_coords: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPop {
    name: String,
    latitude: f64,
    longitude: f64,
    #[serde(default)]
    ipv4: Vec<String>,
    #[serde(default)]
    ipv6: Vec<String>,
    check: Option<RawCheck>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: String,
    ttl: u32,
    #[serde(default = "one")]
    answers: usize,
    pops: Option<Vec<String>>,
}

fn one() -> usize {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    #[serde(default)]
    networks: Vec<String>,
    #[serde(default)]
    countries: Vec<String>,
    #[serde(default)]
    continents: Vec<String>,
    pops: Vec<String>,
}

// ------------------------------------------------------------- domain types

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from.
    pub file: PathBuf,
    pub server: Server,
    pub zones_dir: PathBuf,
    pub geoip: Option<GeoIp>,
    pub pops: Vec<Pop>,
    pub services: Vec<Service>,
    pub overrides: Vec<Override>,
    pub admin: Admin,
    pub logging: Logging,
    /// Who may transfer zones (AXFR/IXFR over TCP).
    pub allow_transfer: Vec<(IpAddr, u8)>,
    /// Secondaries sent a NOTIFY when a zone's serial changes on reload.
    pub notify: Vec<SocketAddr>,
    pub rrl: Rrl,
}

/// `[rrl]`: response rate limiting (UDP only).
#[derive(Debug, Clone, PartialEq)]
pub struct Rrl {
    pub enabled: bool,
    /// Identical responses per second allowed to one client prefix.
    pub responses_per_second: u32,
    /// Every `slip`-th limited response is sent truncated (TC=1) instead of
    /// dropped, so real clients retry over TCP; 0 drops all.
    pub slip: u32,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    /// Buckets per UDP worker (memory is bounded by this).
    pub table_size: usize,
}

/// `[admin]`: the HTTP admin listener.
#[derive(Debug, Clone, PartialEq)]
pub struct Admin {
    /// `None`: no admin listener.
    pub listen: Option<SocketAddr>,
    /// Bearer token required by mutating endpoints, read from this file.
    pub token_file: Option<PathBuf>,
    /// Where admin PoP states (drain) are persisted.
    pub state_file: Option<PathBuf>,
    /// `/healthz` also requires the local PoP to be up.
    pub healthz_requires_local_pop: bool,
}

/// `[logging]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Logging {
    pub query_log: bool,
    /// Fraction of queries logged when `query_log` is on (0..=1).
    pub query_log_sample: f64,
}

/// A PoP's health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    None,
    Tcp {
        address: String,
    },
    Http {
        url: String,
        expect: Vec<u16>,
        host: Option<String>,
        insecure: bool,
    },
}

/// Check with its timings (the `[health]` defaults applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub kind: CheckKind,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub listen: Vec<SocketAddr>,
    pub identity: String,
    pub local_pop: Option<String>,
    /// UDP workers (sockets with SO_REUSEPORT); 0 = one per core.
    pub workers: usize,
    pub version_queries: bool,
    pub tcp_idle_timeout: Duration,
    pub tcp_max_connections: usize,
    /// After SIGTERM, keep answering this long (with /healthz at 503).
    pub shutdown_drain: Duration,
    /// Open TCP connections allowed per client /24 (IPv4) or /56 (IPv6).
    pub tcp_max_connections_per_client: usize,
    /// Queries answered on one TCP connection before it is closed.
    pub tcp_max_queries_per_connection: u64,
    /// A started TCP query must arrive whole within this (slow-loris).
    pub tcp_query_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GeoIp {
    pub databases: Vec<PathBuf>,
    pub country_coords: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pop {
    pub name: String,
    pub latitude: f64,
    pub longitude: f64,
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
    pub check: Check,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    pub ttl: u32,
    pub answers: usize,
    pub pops: Option<Vec<String>>,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub networks: Vec<(IpAddr, u8)>,
    pub countries: Vec<[u8; 2]>,
    pub continents: Vec<[u8; 2]>,
    pub pops: Vec<String>,
    pub line: usize,
}

/// Parse a duration such as `500ms`, `2s`, `1m`, `1h`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

/// Parse `addr/len` (or a bare address, taken as a host route).
pub fn parse_network(s: &str) -> Option<(IpAddr, u8)> {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = a.trim().parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match l {
        Some(l) => l.trim().parse::<u8>().ok().filter(|&l| l <= max)?,
        None => max,
    };
    Some((addr, len))
}

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Ctx<'_> {
    fn line_of(&self, pos: usize) -> usize {
        let pos = pos.min(self.text.len());
        self.text.as_bytes()[..pos]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }
    fn err(&mut self, pos: usize, msg: impl Into<String>) {
        let line = self.line_of(pos);
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            message: msg.into(),
        });
    }
}

fn is_code(s: &str) -> Option<[u8; 2]> {
    let b = s.as_bytes();
    (b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic))
        .then(|| [b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()])
}

/// Read and validate the configuration at `path`. Returns every problem.
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            message: format!("cannot read config: {e}"),
        }]
    })?;
    parse(path, &text)
}

/// Validate configuration text as if read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Config, Vec<ConfigError>> {
    let mut cx = Ctx {
        file: path,
        text,
        errors: Vec::new(),
    };
    let raw: RawConfig = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let pos = e.span().map_or(0, |s| s.start);
            let line_text = text
                .get(pos.min(text.len())..)
                .and_then(|rest| {
                    let start = text[..pos.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
                    let end = pos + rest.find('\n').unwrap_or(rest.len());
                    text.get(start..end)
                })
                .unwrap_or("")
                .trim();
            let msg = e.message().trim().to_string();
            if line_text.is_empty() {
                cx.err(pos, msg);
            } else {
                cx.err(pos, format!("{msg} (at `{line_text}`)"));
            }
            return Err(cx.errors);
        }
    };
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let resolve = |p: &str| -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    if *raw.version.get_ref() != 1 {
        cx.err(
            raw.version.span().start,
            format!(
                "version: unsupported config version {} (expected 1)",
                raw.version.get_ref()
            ),
        );
    }
    // [server]
    let srv_span = raw.server.span();
    let srv = raw.server.into_inner();
    let mut listen = Vec::new();
    for l in &srv.listen {
        match l.get_ref().parse::<SocketAddr>() {
            Ok(a) => listen.push(a),
            Err(_) => cx.err(
                l.span().start,
                format!("server.listen: {:?} is not an address:port", l.get_ref()),
            ),
        }
    }
    if srv.listen.is_empty() {
        cx.err(
            srv_span.start,
            "server.listen: at least one address is needed",
        );
    }
    let tcp_idle_timeout = match &srv.tcp_idle_timeout {
        None => Duration::from_secs(10),
        Some(s) => parse_duration(s.get_ref()).unwrap_or_else(|| {
            cx.err(
                s.span().start,
                format!("server.tcp_idle_timeout: bad duration {:?}", s.get_ref()),
            );
            Duration::from_secs(10)
        }),
    };
    let identity = srv.identity.clone().unwrap_or_else(|| "popdns".to_string());
    if identity.is_empty() || identity.len() > 255 {
        cx.err(
            srv_span.start,
            "server.identity: must be 1 to 255 characters",
        );
    }
    // [geoip]
    let geoip = raw.geoip.map(|g| {
        let g = g.into_inner();
        let dbs = match g.database {
            OneOrMany::One(s) => vec![resolve(&s)],
            OneOrMany::Many(v) => v.iter().map(|s| resolve(s)).collect(),
        };
        GeoIp {
            databases: dbs,
            country_coords: g.country_coords.as_deref().map(resolve),
        }
    });
    // [health] defaults
    let (hd, hpos) = match &raw.health {
        Some(h) => (h.get_ref(), h.span().start),
        None => (&RawHealth::default(), 0),
    };
    let dur =
        |cx: &mut Ctx<'_>, pos: usize, key: &str, v: &Option<String>, d: Duration| -> Duration {
            match v {
                None => d,
                Some(t) => match parse_duration(t).filter(|d| !d.is_zero()) {
                    Some(x) => x,
                    None => {
                        cx.err(
                            pos,
                            format!(
                                "{key}: bad duration {t:?} (use e.g. \"500ms\", \"2s\", \"1m\")"
                            ),
                        );
                        d
                    }
                },
            }
        };
    let d_interval = dur(
        &mut cx,
        hpos,
        "health.interval",
        &hd.interval,
        Duration::from_secs(2),
    );
    let d_timeout = dur(
        &mut cx,
        hpos,
        "health.timeout",
        &hd.timeout,
        Duration::from_secs(1),
    );
    let d_rise = hd.rise.unwrap_or(2);
    let d_fall = hd.fall.unwrap_or(3);
    if d_rise == 0 || d_fall == 0 {
        cx.err(hpos, "health: rise and fall must be at least 1");
    }
    // [[pops]]
    let mut pops: Vec<Pop> = Vec::new();
    for (i, p) in raw.pops.iter().enumerate() {
        let pos = p.span().start;
        let line = cx.line_of(pos);
        let r = p.get_ref();
        let key = format!("pops[{i}] ({:?})", r.name);
        if r.name.is_empty() {
            cx.err(pos, format!("{key}.name: must not be empty"));
        }
        if pops.iter().any(|q| q.name == r.name) {
            cx.err(pos, format!("{key}.name: duplicate PoP name"));
        }
        if !(r.latitude.is_finite() && (-90.0..=90.0).contains(&r.latitude)) {
            cx.err(
                pos,
                format!("{key}.latitude: {} is outside [-90, 90]", r.latitude),
            );
        }
        if !(r.longitude.is_finite() && (-180.0..=180.0).contains(&r.longitude)) {
            cx.err(
                pos,
                format!("{key}.longitude: {} is outside [-180, 180]", r.longitude),
            );
        }
        let mut ipv4 = Vec::new();
        for a in &r.ipv4 {
            match a.parse::<Ipv4Addr>() {
                Ok(x) => ipv4.push(x),
                Err(_) => cx.err(pos, format!("{key}.ipv4: {a:?} is not an IPv4 address")),
            }
        }
        let mut ipv6 = Vec::new();
        for a in &r.ipv6 {
            match a.parse::<Ipv6Addr>() {
                Ok(x) => ipv6.push(x),
                Err(_) => cx.err(pos, format!("{key}.ipv6: {a:?} is not an IPv6 address")),
            }
        }
        if ipv4.is_empty() && ipv6.is_empty() {
            cx.err(
                pos,
                format!("{key}: needs at least one address in ipv4 or ipv6"),
            );
        }
        let check = match &r.check {
            None => Check {
                kind: CheckKind::None,
                interval: d_interval,
                timeout: d_timeout,
                rise: d_rise,
                fall: d_fall,
            },
            Some(c) => {
                let kind = match c.kind.as_str() {
                    "none" => CheckKind::None,
                    "tcp" => match &c.address {
                        Some(a) => CheckKind::Tcp { address: a.clone() },
                        None => {
                            cx.err(
                                pos,
                                format!("{key}.check: type \"tcp\" needs address = \"host:port\""),
                            );
                            CheckKind::None
                        }
                    },
                    "http" => match &c.url {
                        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                            CheckKind::Http {
                                url: u.clone(),
                                expect: c.expect.clone().unwrap_or_else(|| vec![200]),
                                host: c.host.clone(),
                                insecure: c.insecure,
                            }
                        }
                        _ => {
                            cx.err(
                                pos,
                                format!("{key}.check: type \"http\" needs url = \"http(s)://...\""),
                            );
                            CheckKind::None
                        }
                    },
                    other => {
                        cx.err(
                            pos,
                            format!("{key}.check.type: {other:?} is not one of http, tcp, none"),
                        );
                        CheckKind::None
                    }
                };
                let interval = dur(
                    &mut cx,
                    pos,
                    &format!("{key}.check.interval"),
                    &c.interval,
                    d_interval,
                );
                let timeout = dur(
                    &mut cx,
                    pos,
                    &format!("{key}.check.timeout"),
                    &c.timeout,
                    d_timeout,
                );
                let rise = c.rise.unwrap_or(d_rise);
                let fall = c.fall.unwrap_or(d_fall);
                if rise == 0 || fall == 0 {
                    cx.err(
                        pos,
                        format!("{key}.check: rise and fall must be at least 1"),
                    );
                }
                Check {
                    kind,
                    interval,
                    timeout,
                    rise,
                    fall,
                }
            }
        };
        pops.push(Pop {
            name: r.name.clone(),
            latitude: r.latitude,
            longitude: r.longitude,
            ipv4,
            ipv6,
            check,
            line,
        });
    }
    let known = |n: &str| pops.iter().any(|p| p.name == n);
    if let Some(lp) = &srv.local_pop
        && !pops.is_empty()
        && !known(lp.get_ref())
    {
        cx.err(
            lp.span().start,
            format!("server.local_pop: unknown PoP {:?}", lp.get_ref()),
        );
    }
    // [[services]]
    let mut services: Vec<Service> = Vec::new();
    for (i, s) in raw.services.iter().enumerate() {
        let pos = s.span().start;
        let line = cx.line_of(pos);
        let r = s.get_ref();
        let key = format!("services[{i}] ({:?})", r.name);
        if services
            .iter()
            .any(|q| q.name.eq_ignore_ascii_case(&r.name))
        {
            cx.err(pos, format!("{key}.name: duplicate service"));
        }
        if r.answers == 0 || r.answers > 16 {
            cx.err(pos, format!("{key}.answers: must be between 1 and 16"));
        }
        if pops.is_empty() {
            cx.err(
                pos,
                format!("{key}: services need at least one [[pops]] entry"),
            );
        }
        if let Some(list) = &r.pops {
            if list.is_empty() {
                cx.err(pos, format!("{key}.pops: must not be empty"));
            }
            for p in list {
                if !known(p) {
                    cx.err(pos, format!("{key}.pops: unknown PoP {p:?}"));
                }
            }
        }
        services.push(Service {
            name: r.name.trim_end_matches('.').to_ascii_lowercase(),
            ttl: r.ttl,
            answers: r.answers,
            pops: r.pops.clone(),
            line,
        });
    }
    // [[overrides]]
    let mut overrides = Vec::new();
    for (i, o) in raw.overrides.iter().enumerate() {
        let pos = o.span().start;
        let line = cx.line_of(pos);
        let r = o.get_ref();
        let key = format!("overrides[{i}]");
        let mut networks = Vec::new();
        for n in &r.networks {
            match parse_network(n) {
                Some(x) => networks.push(x),
                None => cx.err(pos, format!("{key}.networks: {n:?} is not a network")),
            }
        }
        let mut countries = Vec::new();
        for c in &r.countries {
            match is_code(c) {
                Some(x) => countries.push(x),
                None => cx.err(
                    pos,
                    format!("{key}.countries: {c:?} is not a 2-letter code"),
                ),
            }
        }
        let mut continents = Vec::new();
        for c in &r.continents {
            match is_code(c)
                .filter(|c| [*b"AF", *b"AN", *b"AS", *b"EU", *b"NA", *b"OC", *b"SA"].contains(c))
            {
                Some(x) => continents.push(x),
                None => cx.err(
                    pos,
                    format!("{key}.continents: {c:?} is not one of AF AN AS EU NA OC SA"),
                ),
            }
        }
        if networks.is_empty() && countries.is_empty() && continents.is_empty() {
            cx.err(
                pos,
                format!("{key}: needs networks, countries or continents"),
            );
        }
        if r.pops.is_empty() {
            cx.err(pos, format!("{key}.pops: must not be empty"));
        }
        for p in &r.pops {
            if !known(p) {
                cx.err(pos, format!("{key}.pops: unknown PoP {p:?}"));
            }
        }
        overrides.push(Override {
            networks,
            countries,
            continents,
            pops: r.pops.clone(),
            line,
        });
    }
    // [admin]
    let admin = match &raw.admin {
        None => Admin {
            listen: None,
            token_file: None,
            state_file: None,
            healthz_requires_local_pop: true,
        },
        Some(a) => {
            let pos = a.span().start;
            let a = a.get_ref();
            let listen = match &a.listen {
                None => Some(SocketAddr::from(([127, 0, 0, 1], 9153))),
                Some(l) => match l.get_ref().parse::<SocketAddr>() {
                    Ok(x) => Some(x),
                    Err(_) => {
                        cx.err(
                            l.span().start,
                            format!("admin.listen: {:?} is not an address:port", l.get_ref()),
                        );
                        None
                    }
                },
            };
            let token_file = a.token_file.as_deref().map(resolve);
            if let Some(l) = listen
                && !l.ip().is_loopback()
                && token_file.is_none()
            {
                cx.err(pos, format!("admin.listen: {l} is not a loopback address; set admin.token_file to protect it"));
            }
            Admin {
                listen,
                token_file,
                state_file: a.state_file.as_deref().map(resolve),
                healthz_requires_local_pop: a.healthz_requires_local_pop,
            }
        }
    };
    // [logging]
    let logging = match &raw.logging {
        None => Logging {
            query_log: false,
            query_log_sample: 1.0,
        },
        Some(l) => {
            let pos = l.span().start;
            let l = l.get_ref();
            let sample = l.query_log_sample.unwrap_or(1.0);
            if !(0.0..=1.0).contains(&sample) {
                cx.err(pos, "logging.query_log_sample: must be between 0 and 1");
            }
            Logging {
                query_log: l.query_log,
                query_log_sample: sample,
            }
        }
    };
    let shutdown_drain = match &srv.shutdown_drain {
        None => Duration::ZERO,
        Some(s) => parse_duration(s.get_ref()).unwrap_or_else(|| {
            cx.err(
                s.span().start,
                format!("server.shutdown_drain: bad duration {:?}", s.get_ref()),
            );
            Duration::ZERO
        }),
    };
    let zr = raw.zones.get_ref();
    let zpos = raw.zones.span().start;
    let mut allow_transfer = Vec::new();
    for n in &zr.allow_transfer {
        match parse_network(n) {
            Some(x) => allow_transfer.push(x),
            None => cx.err(
                zpos,
                format!("zones.allow_transfer: {n:?} is not a network"),
            ),
        }
    }
    let mut notify = Vec::new();
    for n in &zr.notify {
        match n
            .parse::<SocketAddr>()
            .or_else(|_| n.parse::<IpAddr>().map(|a| SocketAddr::new(a, 53)))
        {
            Ok(a) => notify.push(a),
            Err(_) => cx.err(
                zpos,
                format!("zones.notify: {n:?} is not an address[:port]"),
            ),
        }
    }
    let rrl = match &raw.rrl {
        None => Rrl {
            enabled: false,
            responses_per_second: 20,
            slip: 2,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            table_size: 65_536,
        },
        Some(r) => {
            let pos = r.span().start;
            let r = r.get_ref();
            let v = Rrl {
                enabled: r.enabled,
                responses_per_second: r.responses_per_second.unwrap_or(20),
                slip: r.slip.unwrap_or(2),
                ipv4_prefix: r.ipv4_prefix.unwrap_or(24),
                ipv6_prefix: r.ipv6_prefix.unwrap_or(56),
                table_size: r.table_size.unwrap_or(65_536),
            };
            if v.responses_per_second == 0 {
                cx.err(pos, "rrl.responses_per_second: must be at least 1");
            }
            if v.ipv4_prefix > 32 || v.ipv6_prefix > 128 {
                cx.err(pos, "rrl.ipv4_prefix / ipv6_prefix: at most 32 / 128");
            }
            if !(1024..=16_777_216).contains(&v.table_size) {
                cx.err(pos, "rrl.table_size: between 1024 and 16777216");
            }
            v
        }
    };
    let tcp_query_timeout = match &srv.tcp_query_timeout {
        None => Duration::from_secs(5),
        Some(s) => parse_duration(s.get_ref())
            .filter(|d| !d.is_zero())
            .unwrap_or_else(|| {
                cx.err(
                    s.span().start,
                    format!("server.tcp_query_timeout: bad duration {:?}", s.get_ref()),
                );
                Duration::from_secs(5)
            }),
    };
    if !cx.errors.is_empty() {
        return Err(cx.errors);
    }
    Ok(Config {
        allow_transfer,
        notify,
        rrl,
        admin,
        logging,
        file: path.to_path_buf(),
        server: Server {
            listen,
            identity,
            local_pop: srv.local_pop.map(Spanned::into_inner),
            workers: srv.workers.unwrap_or(0),
            version_queries: srv.version_queries,
            tcp_idle_timeout,
            tcp_max_connections: srv.tcp_max_connections.unwrap_or(1024),
            shutdown_drain,
            tcp_max_connections_per_client: srv.tcp_max_connections_per_client.unwrap_or(64),
            tcp_max_queries_per_connection: srv.tcp_max_queries_per_connection.unwrap_or(1_000_000),
            tcp_query_timeout,
        },
        zones_dir: resolve(&raw.zones.get_ref().directory),
        geoip,
        pops,
        services,
        overrides,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str =
        "version = 1\n[server]\nlisten = [\"127.0.0.1:5353\"]\n[zones]\ndirectory = \"zones\"\n";

    #[test]
    fn minimal() {
        let c = parse(Path::new("/etc/popdns/popdns.toml"), MIN).unwrap();
        assert_eq!(c.zones_dir, Path::new("/etc/popdns/zones"));
        assert_eq!(c.server.listen.len(), 1);
    }

    #[test]
    fn unknown_key_has_line() {
        let t = format!("{MIN}bogus = 1\n");
        let e = parse(Path::new("p.toml"), &t).unwrap_err();
        assert!(e[0].to_string().starts_with("p.toml:"), "{}", e[0]);
        let t = MIN.replace("directory", "dirx");
        let e = parse(Path::new("p.toml"), &t).unwrap_err();
        assert!(e[0].to_string().contains("dirx"), "{}", e[0]);
        assert_eq!(e[0].line, 5);
    }

    #[test]
    fn bad_pop() {
        let t = format!(
            "{MIN}[[pops]]\nname = \"x\"\nlatitude = 95.0\nlongitude = 0.0\nipv4 = [\"192.0.2.1\"]\n"
        );
        let e = parse(Path::new("p.toml"), &t).unwrap_err();
        assert_eq!(e[0].line, 6);
        assert!(e[0].message.contains("latitude"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("2"), None);
    }
}
