//! End-to-end test support: start the real `popdns` binary on a free
//! loopback port with a config and zone files written to a temporary folder,
//! wait for its ready line, and query it over UDP and TCP with hickory's
//! message types.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
pub use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
pub use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

/// Path of the popdns binary built by cargo for this test run.
pub fn popdns_bin() -> PathBuf {
    if let Ok(p) = std::env::var("POPDNS_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test-exe> -> target/<profile>/popdns
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("popdns");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "popdns"])
            .status()
            .unwrap();
        assert!(status.success(), "building popdns failed");
    }
    bin
}

/// A fresh temporary folder, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!(
            "popdns-test-{tag}-{}-{n}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.0.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(&p, content).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The standard test zone used by most tests.
pub const TEST_ZONE: &str = r#"$ORIGIN cdn.example.
$TTL 3600
@           IN SOA  ns1.cdn.example. hostmaster.cdn.example. 2026112201 7200 900 1209600 300
            IN NS   ns1
            IN NS   ns2
            IN MX   10 mail
ns1         IN A    192.0.2.53
            IN AAAA 2001:db8::53
ns2         IN A    198.51.100.53
mail        IN A    192.0.2.25
www         IN A    192.0.2.10
static      IN A    192.0.2.80
            IN AAAA 2001:db8::80
img         IN CNAME static
chain1      IN CNAME chain2
chain2      IN CNAME static
dangling    IN CNAME nowhere
alias       IN CNAME www.elsewhere.test.
*.wild      IN TXT  "wildcard"
*.wild      IN A    192.0.2.99
host.wild   IN A    192.0.2.98
deep.a.b    IN A    192.0.2.77
sub         IN NS   ns.sub
ns.sub      IN A    192.0.2.54
big         IN TXT  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
big         IN TXT  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
big         IN TXT  "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
"#;

pub const SECOND_ZONE: &str = "$TTL 300\n@ IN SOA ns1.cdn.example. hostmaster.cdn.example. 7 3600 600 604800 60\n  IN NS ns1.cdn.example.\nwww IN A 203.0.113.2\n";

/// A running popdns process.
pub struct Popdns {
    child: Child,
    pub addr: SocketAddr,
    /// The admin listener, when configured.
    pub admin: Option<SocketAddr>,
    pub dir: TempDir,
    pub log: Arc<Mutex<Vec<String>>>,
}

/// Minimal config text listening on a free port.
pub fn basic_config(extra: &str) -> String {
    format!(
        "version = 1\n[server]\nlisten = [\"127.0.0.1:0\"]\nidentity = \"test-node-1\"\nworkers = 1\ntcp_idle_timeout = \"2s\"\n{extra}\n[zones]\ndirectory = \"zones\"\n"
    )
}

impl Popdns {
    /// Start with the standard zones and `config`.
    pub fn start(config: &str) -> Popdns {
        Self::start_with(
            config,
            &[
                ("cdn.example.zone", TEST_ZONE),
                ("elsewhere.test.zone", SECOND_ZONE),
            ],
        )
    }

    /// Start with the given zone files (written under `zones/`).
    pub fn start_with(config: &str, zones: &[(&str, &str)]) -> Popdns {
        let dir = TempDir::new("srv");
        for (name, text) in zones {
            dir.write(&format!("zones/{name}"), text);
        }
        dir.write("popdns.toml", config);
        Self::spawn(dir).unwrap_or_else(|log| panic!("popdns did not start:\n{log}"))
    }

    /// Start popdns on an existing folder; `Err(log)` when it exits first.
    pub fn spawn(dir: TempDir) -> Result<Popdns, String> {
        let mut child = Command::new(popdns_bin())
            .args(["serve", "-c"])
            .arg(dir.path().join("popdns.toml"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let ready = line.contains("popdns ready");
                log2.lock().unwrap().push(line.clone());
                if ready && let Some(t) = tx.take() {
                    let _ = t.send(Some(line));
                }
            }
            if let Some(t) = tx.take() {
                let _ = t.send(None);
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(line)) => {
                let addr = line
                    .split("dns=")
                    .nth(1)
                    .and_then(|s| s.split([' ', ',']).next())
                    .and_then(|s| SocketAddr::from_str(s).ok())
                    .unwrap_or_else(|| panic!("no address in ready line: {line}"));
                let admin = line
                    .split("admin=")
                    .nth(1)
                    .and_then(|s| s.split([' ', ',']).next())
                    .and_then(|s| SocketAddr::from_str(s).ok());
                Ok(Popdns {
                    child,
                    addr,
                    admin,
                    dir,
                    log,
                })
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(50));
                Err(log.lock().unwrap().join("\n"))
            }
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send a signal with `kill`.
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Wait for exit, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Wait until a log line contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if self.log.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Query over UDP with EDNS and parse the answer.
    pub fn query(&self, name: &str, t: RecordType) -> Message {
        self.udp_msg(&query_msg(name, t, true))
    }

    /// Send `msg` over UDP.
    pub fn udp_msg(&self, msg: &Message) -> Message {
        let raw = self.udp_raw(&msg.to_vec().unwrap()).expect("no UDP answer");
        Message::from_vec(&raw).unwrap()
    }

    /// Send raw bytes over UDP; `None` when nothing came back in 2 s.
    pub fn udp_raw(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        udp_exchange(self.addr, bytes, Duration::from_secs(2))
    }

    /// Open a TCP connection.
    pub fn tcp(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    /// Query over a new TCP connection.
    pub fn tcp_msg(&self, msg: &Message) -> Message {
        let mut s = self.tcp();
        tcp_send(&mut s, &msg.to_vec().unwrap());
        Message::from_vec(&tcp_recv(&mut s).expect("no TCP answer")).unwrap()
    }
}

impl Drop for Popdns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Exchange one datagram.
pub fn udp_exchange(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let bind = if addr.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    };
    let s = UdpSocket::bind(bind).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    s.send_to(bytes, addr).unwrap();
    let mut buf = vec![0u8; 65535];
    match s.recv_from(&mut buf) {
        Ok((n, _)) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(_) => None,
    }
}

/// Write one length-prefixed message.
pub fn tcp_send(s: &mut TcpStream, bytes: &[u8]) {
    let mut v = (bytes.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(bytes);
    s.write_all(&v).unwrap();
}

/// Read one length-prefixed message; `None` on close or timeout.
pub fn tcp_recv(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut l = [0u8; 2];
    s.read_exact(&mut l).ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(l) as usize];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// A real NSD (Debian's `nsd`) in the foreground, for comparisons; killed
/// when dropped.
pub struct Nsd(Child);

impl Nsd {
    /// Start `nsd -d -c conf` (a config file already written).
    pub fn start(conf: &Path) -> Nsd {
        let child = Command::new("nsd")
            .args(["-d", "-c"])
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nsd must be installed (apt-get install nsd; .ci/run does it)");
        Nsd(child)
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free on 127.0.0.1 for both UDP and TCP (for a server that cannot
/// bind port 0 and report it, like NSD).
pub fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// One question over UDP with EDNS; the parsed answer, `None` on timeout.
pub fn ask_udp(addr: SocketAddr, name: &str, t: RecordType, timeout: Duration) -> Option<Message> {
    let raw = udp_exchange(addr, &query_msg(name, t, true).to_vec().unwrap(), timeout)?;
    Message::from_vec(&raw).ok()
}

/// Build a query message (EDNS with a 1232-byte payload when `edns`).
pub fn query_msg(name: &str, t: RecordType, edns: bool) -> Message {
    let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m
}

/// A query carrying EDNS Client Subnet `subnet` ("192.0.2.0/24").
pub fn ecs_query(name: &str, t: RecordType, subnet: &str) -> Message {
    let mut m = query_msg(name, t, true);
    let (a, l) = subnet.split_once('/').unwrap();
    let addr: std::net::IpAddr = a.parse().unwrap();
    if let Some(e) = m.edns.as_mut() {
        e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
            addr,
            l.parse().unwrap(),
            0,
        )));
    }
    m
}

/// Run `popdns` with arguments; returns (status code, stdout, stderr).
pub fn run_popdns(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(popdns_bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The A/AAAA addresses of an answer section, in order.
pub fn addrs(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

impl Popdns {
    /// Stop (SIGKILL) and start again on the same folder.
    pub fn restart(mut self) -> Popdns {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.dir, TempDir(PathBuf::new()));
        drop(self);
        Self::spawn(dir).unwrap_or_else(|log| panic!("popdns did not restart:\n{log}"))
    }

    /// HTTP request to the admin API: (status, body).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (u16, String) {
        http_request(
            self.admin.expect("no admin listener"),
            method,
            path,
            body,
            token,
        )
    }

    /// Wait for the process to exit on its own.
    pub fn exit_status(&mut self, timeout: Duration) -> Option<i32> {
        self.wait_exit(timeout).and_then(|s| s.code())
    }
}

/// A minimal blocking HTTP/1.1 client: (status, body).
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.unwrap_or("");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: popdns\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// Parse Prometheus/OpenMetrics text: `name{labels}` → value.
pub fn parse_metrics(text: &str) -> std::collections::BTreeMap<String, f64> {
    let mut m = std::collections::BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let key = key.trim().replace("{}", "");
        if let Ok(v) = value.trim().parse::<f64>() {
            m.insert(key, v);
        }
    }
    m
}

/// A real HTTP health endpoint on loopback, answering every request with a
/// settable status after a settable delay. `kill` closes the listener
/// (connections are then refused); `revive` listens again on the same port.
pub struct HttpBackend {
    pub port: u16,
    pub status: Arc<std::sync::atomic::AtomicU16>,
    pub delay_ms: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpBackend {
    pub fn start() -> HttpBackend {
        Self::on_port(0)
    }

    fn on_port(port: u16) -> HttpBackend {
        use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64};
        let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let status = Arc::new(AtomicU16::new(200));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, dl, sp) = (
            Arc::clone(&status),
            Arc::clone(&delay_ms),
            Arc::clone(&stop),
        );
        let thread = std::thread::spawn(move || {
            use std::sync::atomic::Ordering::Relaxed;
            while !sp.load(Relaxed) {
                match l.accept() {
                    Ok((mut c, _)) => {
                        let (st, dl) = (Arc::clone(&st), Arc::clone(&dl));
                        std::thread::spawn(move || {
                            let _ = c.set_nonblocking(false);
                            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                            let mut buf = [0u8; 2048];
                            let _ = c.read(&mut buf);
                            std::thread::sleep(Duration::from_millis(dl.load(Relaxed)));
                            let code = st.load(Relaxed);
                            let _ = write!(
                                c,
                                "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                            );
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HttpBackend {
            port,
            status,
            delay_ms,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/healthz", self.port)
    }

    /// Stop listening: probes get "connection refused".
    pub fn kill(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Listen again on the same port.
    pub fn revive(&mut self) {
        self.kill();
        let b = Self::on_port(self.port);
        *self = b;
    }

    pub fn set_status(&self, code: u16) {
        self.status
            .store(code, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn set_delay(&self, ms: u64) {
        self.delay_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Poll `f` every 10 ms until it returns true or `timeout` passes; returns
/// the time it took.
pub fn poll_until(timeout: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if f() {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// A TCP connection to `to` from a chosen loopback source address
/// (e.g. "127.0.0.2"), to test per-client limits and ACLs.
pub fn tcp_from(src: &str, to: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let src: SocketAddr = format!("{src}:0").parse().unwrap();
    s.bind(&src.into()).unwrap();
    s.connect(&to.into()).unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}
