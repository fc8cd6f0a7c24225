//! Real backends for the probe tests: a tiny HTTP/1.1 responder and a TCP
//! listener on 127.0.0.1, which can be killed (listener closed, connections
//! refused) and revived on the same port.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use popdns_health::{CheckKind, CheckSpec, PopCheck};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;

/// How the HTTP backend answers; changeable while it runs.
#[derive(Default)]
pub struct Ctl {
    /// Status for `/` and other paths (0 = 200).
    pub status: AtomicU16,
    /// Delay before answering, in milliseconds.
    pub delay_ms: AtomicU64,
    /// Alternate 200 / 503 on every request.
    pub alternate: AtomicBool,
    /// Requests answered (all paths).
    pub hits: AtomicU64,
    /// Requests for `/` only.
    pub root_hits: AtomicU64,
    /// Host header of the last request.
    pub last_host: Mutex<Option<String>>,
}

pub struct Backend {
    pub addr: SocketAddr,
    pub ctl: Arc<Ctl>,
    http: bool,
    tls: Option<tokio_rustls::TlsAcceptor>,
    task: Mutex<Option<JoinHandle<()>>>,
}

fn bind(addr: SocketAddr) -> TcpListener {
    let s = TcpSocket::new_v4().unwrap();
    s.set_reuseaddr(true).unwrap();
    s.bind(addr).unwrap();
    s.listen(128).unwrap()
}

impl Backend {
    /// An HTTP backend answering 200.
    pub fn http() -> Backend {
        Backend::start(true, None)
    }

    /// An HTTPS backend answering 200 with a self-signed certificate for
    /// `localhost` and `127.0.0.1`.
    pub fn https_self_signed() -> Backend {
        use tokio_rustls::rustls;
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![ck.cert.der().clone()], key)
            .unwrap();
        Backend::start(
            true,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
    }

    /// A TCP listener that accepts and closes connections.
    pub fn tcp() -> Backend {
        Backend::start(false, None)
    }

    fn start(http: bool, tls: Option<tokio_rustls::TlsAcceptor>) -> Backend {
        let listener = bind("127.0.0.1:0".parse().unwrap());
        let addr = listener.local_addr().unwrap();
        let b = Backend {
            addr,
            ctl: Arc::new(Ctl::default()),
            http,
            tls,
            task: Mutex::new(None),
        };
        b.serve(listener);
        b
    }

    fn serve(&self, listener: TcpListener) {
        let ctl = Arc::clone(&self.ctl);
        let http = self.http;
        let tls = self.tls.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                if let Some(acceptor) = &tls {
                    let acceptor = acceptor.clone();
                    let ctl = Arc::clone(&ctl);
                    tokio::spawn(async move {
                        if let Ok(s) = acceptor.accept(sock).await {
                            handle(s, ctl).await;
                        }
                    });
                } else if http {
                    tokio::spawn(handle(sock, Arc::clone(&ctl)));
                } else {
                    ctl.hits.fetch_add(1, Ordering::SeqCst);
                    drop(sock);
                }
            }
        });
        *self.task.lock().unwrap() = Some(task);
    }

    /// Closes the listener: new connections are refused.
    pub async fn kill(&self) {
        let task = self.task.lock().unwrap().take();
        if let Some(t) = task {
            t.abort();
            let _ = t.await; // the listener is dropped once this returns
        }
    }

    /// Listens again on the same port.
    pub fn revive(&self) {
        self.serve(bind(self.addr));
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{}", self.addr, path)
    }

    pub fn hits(&self) -> u64 {
        self.ctl.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(t) = self.task.lock().unwrap().take() {
            t.abort();
        }
    }
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(mut sock: S, ctl: Arc<Ctl>) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > 16384 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let path = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_owned();
    let host = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("host").then(|| v.trim().to_owned())
    });
    *ctl.last_host.lock().unwrap() = host;
    let n = ctl.hits.fetch_add(1, Ordering::SeqCst);
    let delay = ctl.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let (status, extra) = if path == "/redirect" {
        (302, "Location: /\r\n")
    } else {
        if path == "/" {
            ctl.root_hits.fetch_add(1, Ordering::SeqCst);
        }
        let s = if ctl.alternate.load(Ordering::SeqCst) {
            if n.is_multiple_of(2) { 200 } else { 503 }
        } else {
            match ctl.status.load(Ordering::SeqCst) {
                0 => 200,
                s => s,
            }
        };
        (s, "")
    };
    let resp =
        format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n{extra}\r\nok");
    let _ = sock.write_all(resp.as_bytes()).await;
    let _ = sock.shutdown().await;
}

/// A port on 127.0.0.1 with nothing listening.
pub fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Fast timings for tests: interval 100ms, timeout 100ms, rise 2, fall 3.
pub fn fast(kind: CheckKind) -> CheckSpec {
    CheckSpec {
        kind,
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(100),
        rise: 2,
        fall: 3,
    }
}

pub fn http_kind(url: String) -> CheckKind {
    CheckKind::Http {
        url,
        expect: vec![],
        host: None,
        insecure: false,
    }
}

pub fn http_pop(name: &str, url: String) -> PopCheck {
    PopCheck {
        name: name.into(),
        check: fast(http_kind(url)),
    }
}

pub fn tcp_pop(name: &str, addr: SocketAddr) -> PopCheck {
    PopCheck {
        name: name.into(),
        check: fast(CheckKind::Tcp {
            address: addr.to_string(),
        }),
    }
}

pub fn none_pop(name: &str) -> PopCheck {
    PopCheck {
        name: name.into(),
        check: fast(CheckKind::None),
    }
}

/// Polls `cond` every 5ms until it holds; returns the time it took. Panics
/// after `limit` with `what`.
pub async fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
