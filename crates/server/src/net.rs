//! Sockets: UDP workers (one OS thread per SO_REUSEPORT socket, blocking
//! receive loop) and TCP listeners (tokio tasks, one per connection).

use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};

use crate::cache::QueryCache;
use crate::geo::COUNTER_SLOTS;
use crate::handler::{Transport, handle_cached, handle_with_health};
use crate::snapshot::Snapshot;
use crate::stats::Stats;
use popdns_health::HealthTable;

/// State shared by every listener.
pub struct Shared {
    pub snapshot: ArcSwap<Snapshot>,
    /// The health table published by the probe task.
    pub health: Arc<ArcSwap<HealthTable>>,
    pub stopping: AtomicBool,
    pub tcp_open: AtomicUsize,
    pub tcp_refused: AtomicU64,
    /// Connections refused by the per-client cap.
    pub tcp_refused_per_client: AtomicU64,
    /// Connections closed for a slow or incomplete query.
    pub tcp_timed_out: AtomicU64,
    /// Connections closed at the per-connection query cap.
    pub tcp_query_cap: AtomicU64,
    /// Zone transfers served and refused.
    pub xfr_served: AtomicU64,
    pub xfr_refused: AtomicU64,
    /// Open connections per client prefix (touched on connect/close only).
    tcp_per_client: std::sync::Mutex<std::collections::HashMap<u128, usize>>,
    pub stats: Stats,
    /// Set to true to stop accepting TCP and close idle connections.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// Log one query in this many (0: query log off).
    pub query_log_every: AtomicU64,
    /// Response rate limiting for UDP (per worker; fixed at start).
    pub rrl: Option<crate::rrl::RrlConfig>,
}

impl Shared {
    /// Shared state for `udp_workers` UDP worker threads.
    pub fn new(
        snapshot: Snapshot,
        health: Arc<ArcSwap<HealthTable>>,
        udp_workers: usize,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            snapshot: ArcSwap::from_pointee(snapshot),
            health,
            stopping: AtomicBool::new(false),
            tcp_open: AtomicUsize::new(0),
            tcp_refused: AtomicU64::new(0),
            tcp_refused_per_client: AtomicU64::new(0),
            tcp_timed_out: AtomicU64::new(0),
            tcp_query_cap: AtomicU64::new(0),
            xfr_served: AtomicU64::new(0),
            xfr_refused: AtomicU64::new(0),
            tcp_per_client: std::sync::Mutex::new(std::collections::HashMap::new()),
            stats: Stats::new(udp_workers),
            shutdown: tokio::sync::watch::channel(false).0,
            query_log_every: AtomicU64::new(0),
            rrl: None,
        })
    }

    /// Like [`Shared::new`], with response rate limiting.
    pub fn with_rrl(
        snapshot: Snapshot,
        health: Arc<ArcSwap<HealthTable>>,
        udp_workers: usize,
        rrl: Option<crate::rrl::RrlConfig>,
    ) -> Arc<Shared> {
        let mut s = Self::new(snapshot, health, udp_workers);
        if let Some(m) = Arc::get_mut(&mut s) {
            m.rrl = rrl.map(|mut c| {
                c.responses_per_second /= udp_workers.max(1) as f64;
                c
            });
        }
        s
    }
}

/// Bound sockets, ready to serve.
pub struct Listeners {
    pub udp: Vec<UdpSocket>,
    pub tcp: Vec<StdTcpListener>,
    /// The addresses actually bound (port 0 resolved).
    pub addrs: Vec<SocketAddr>,
}

fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_port(true)?;
    // Larger buffers absorb bursts (the kernel caps them at rmem_max).
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    dont_fragment(&s, addr.is_ipv6());
    Ok(s.into())
}

/// RFC 9715 (IP fragmentation avoidance in DNS over UDP): answers leave
/// with the IPv4 DF bit set and are never fragmented by this host.
/// `PMTUDISC_PROBE` ignores path-MTU updates, so spoofed ICMP "fragmentation
/// needed" messages cannot shrink what is sent (UDP answers are at most
/// 1232 bytes, which fits the IPv6 minimum MTU and any Ethernet path). As a
/// side effect the kernel skips the IP identification hash for each answer.
/// Best effort: other systems keep their defaults.
fn dont_fragment(s: &Socket, v6: bool) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (level, name, value) = if v6 {
            (
                libc::IPPROTO_IPV6,
                libc::IPV6_MTU_DISCOVER,
                libc::IPV6_PMTUDISC_PROBE,
            )
        } else {
            (
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                libc::IP_PMTUDISC_PROBE,
            )
        };
        // SAFETY: a valid socket and a c_int option value of the right size.
        let r = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                level,
                name,
                (&raw const value).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            tracing::debug!(error = %io::Error::last_os_error(), "IP_MTU_DISCOVER not set");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (s, v6);
}

fn tcp_listener(addr: SocketAddr) -> io::Result<StdTcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Bind every listen address on TCP and on `workers` UDP sockets. Port 0
/// picks one free port for both transports.
pub fn bind(listen: &[SocketAddr], workers: usize) -> io::Result<Listeners> {
    let workers = workers.max(1);
    let mut out = Listeners {
        udp: Vec::new(),
        tcp: Vec::new(),
        addrs: Vec::new(),
    };
    for &addr in listen {
        let mut attempt = 0;
        loop {
            let tcp = tcp_listener(addr)?;
            let bound = tcp.local_addr()?;
            let mut udp = Vec::new();
            let mut err = None;
            for _ in 0..workers {
                match udp_socket(bound) {
                    Ok(s) => udp.push(s),
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                }
            }
            match err {
                None => {
                    out.tcp.push(tcp);
                    out.udp.extend(udp);
                    out.addrs.push(bound);
                    break;
                }
                // With port 0 the UDP port may be taken: try another.
                Some(_) if addr.port() == 0 && attempt < 20 => attempt += 1,
                Some(e) => return Err(e),
            }
        }
    }
    Ok(out)
}

/// Start one OS thread per UDP socket. Each owns its buffers and answers
/// queries in a blocking loop until `shared.stopping` is set.
pub fn spawn_udp_workers(shared: &Arc<Shared>, sockets: Vec<UdpSocket>) -> Vec<JoinHandle<()>> {
    sockets
        .into_iter()
        .enumerate()
        .map(|(i, sock)| {
            let shared = Arc::clone(shared);
            std::thread::Builder::new()
                .name(format!("udp-{i}"))
                .spawn(move || udp_loop(&shared, &sock, i))
                .expect("spawning a UDP worker thread")
        })
        .collect()
}

/// The health flags to route with: the table's when it describes the
/// snapshot's PoP list, else none (every PoP counts as up).
#[inline]
fn health_up<'t>(snap: &Snapshot, table: &'t HealthTable) -> &'t [bool] {
    if table.layout == snap.health_layout {
        &table.up
    } else {
        &[]
    }
}

/// Per-worker state of the UDP path.
pub(crate) struct UdpWorker<'a> {
    pub shared: &'a Shared,
    pub worker: usize,
    stats: Arc<crate::stats::WorkerStats>,
    rrl: Option<crate::rrl::Rrl>,
    logged: u64,
    cache: QueryCache,
    /// The current snapshot and health table, held by this worker: a
    /// query costs one atomic load of each to see whether they changed
    /// (no reference counting, no locked instruction). A replaced one is
    /// released at the worker's next query or receive timeout.
    snapshot: arc_swap::Cache<&'a ArcSwap<Snapshot>, Arc<Snapshot>>,
    health: arc_swap::Cache<&'a ArcSwap<HealthTable>, Arc<HealthTable>>,
    /// Counts health table swaps seen (the cache's health version). The
    /// table held is compared by address: it cannot be freed and its address
    /// reused while this worker holds it, so every swap is seen.
    health_version: u64,
    health_seen: *const HealthTable,
}

impl<'a> UdpWorker<'a> {
    pub(crate) fn new(shared: &'a Shared, worker: usize) -> Self {
        UdpWorker {
            shared,
            worker,
            stats: shared.stats.udp(worker),
            rrl: shared.rrl.map(crate::rrl::Rrl::new),
            logged: 0,
            cache: QueryCache::new(),
            snapshot: arc_swap::Cache::new(&shared.snapshot),
            health: arc_swap::Cache::new(&*shared.health),
            health_version: 0,
            health_seen: std::ptr::null(),
        }
    }

    /// Publish the memo's hit counts to the metrics (after each batch).
    pub(crate) fn publish(&self) {
        self.stats.set_memo_hits(self.cache.hits());
    }

    /// Drop a replaced snapshot or health table now (called when idle).
    pub(crate) fn refresh(&mut self) {
        self.snapshot.load();
        self.health.load();
    }

    /// Answer one datagram into `out`; returns the length to send, if any.
    #[inline]
    pub(crate) fn process(
        &mut self,
        packet: &[u8],
        src: SocketAddr,
        out: &mut Vec<u8>,
    ) -> Option<usize> {
        let shared = self.shared;
        let snap: &Snapshot = self.snapshot.load();
        let table: &Arc<HealthTable> = self.health.load();
        if !std::ptr::eq(Arc::as_ptr(table), self.health_seen) {
            self.health_seen = Arc::as_ptr(table);
            self.health_version += 1;
        }
        let handled = {
            let h = handle_cached(
                snap,
                health_up(snap, table),
                self.health_version,
                &mut self.cache,
                packet,
                src.ip(),
                Transport::Udp,
                out,
            );
            if let Some(g) = h.as_ref().and_then(|h| h.geo.as_ref())
                && let Some(geo) = snap.geo.as_ref()
            {
                geo.count(self.worker, g);
            }
            h
        };
        self.stats.record(handled.as_ref());
        let every = shared.query_log_every.load(Ordering::Relaxed);
        if every > 0 {
            self.logged = self.logged.wrapping_add(1);
            if self.logged.is_multiple_of(every) {
                log_query(packet, src, Transport::Udp, handled.as_ref(), snap);
            }
        }
        let h = handled?;
        let mut len = h.len;
        if let Some(r) = self.rrl.as_mut() {
            match r.check(src.ip(), &out[..len]) {
                crate::rrl::Verdict::Send => {}
                crate::rrl::Verdict::Drop => {
                    self.stats.rrl_dropped.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                crate::rrl::Verdict::Slip => {
                    self.stats.rrl_slipped.fetch_add(1, Ordering::Relaxed);
                    len = crate::rrl::slip(out, len);
                }
            }
        }
        Some(len)
    }
}

fn udp_loop(shared: &Shared, sock: &UdpSocket, worker: usize) {
    #[cfg(target_os = "linux")]
    {
        crate::mmsg::udp_loop_mmsg(shared, sock, worker);
    }
    #[cfg(not(target_os = "linux"))]
    {
        udp_loop_simple(shared, sock, worker);
    }
}

/// One `recv_from` / `send_to` per query (portable fallback).
#[allow(dead_code)]
pub(crate) fn udp_loop_simple(shared: &Shared, sock: &UdpSocket, worker: usize) {
    let mut w = UdpWorker::new(shared, worker);
    let mut buf = vec![0u8; 65_535];
    let mut out: Vec<u8> = Vec::with_capacity(65_535);
    while !shared.stopping.load(Ordering::Relaxed) {
        let (n, src) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                w.refresh();
                continue;
            }
            Err(e) => {
                tracing::debug!(error = %e, "udp receive error");
                continue;
            }
        };
        if let Some(len) = w.process(&buf[..n], src, &mut out)
            && let Err(e) = sock.send_to(&out[..len], src)
        {
            tracing::debug!(error = %e, %src, "udp send error");
        }
        w.publish();
    }
}

/// TCP limits.
#[derive(Clone, Copy, Debug)]
pub struct TcpLimits {
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// Open connections per client /24 (IPv4) or /56 (IPv6).
    pub max_per_client: usize,
    /// Queries answered on one connection before it is closed.
    pub max_queries: u64,
    /// A query whose first byte arrived must be complete within this.
    pub query_timeout: Duration,
}

/// The /24 (IPv4) or /56 (IPv6) a client belongs to, as a map key.
fn client_prefix(ip: std::net::IpAddr) -> u128 {
    match ip {
        std::net::IpAddr::V4(a) => u128::from(u32::from(a) & 0xFFFF_FF00),
        std::net::IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4) & 0xFFFF_FF00),
            None => (u128::from(a) & (u128::MAX << 72)) | 1,
        },
    }
}

/// Accept TCP connections until `shared.stopping`.
pub async fn serve_tcp(shared: Arc<Shared>, listener: StdTcpListener, limits: TcpLimits) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot register TCP listener");
            return;
        }
    };
    let mut stop = shared.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "tcp accept error");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if shared.stopping.load(Ordering::Relaxed) {
            return;
        }
        let open = shared.tcp_open.fetch_add(1, Ordering::Relaxed);
        if open >= limits.max_connections {
            shared.tcp_open.fetch_sub(1, Ordering::Relaxed);
            shared.tcp_refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "tcp connection refused: too many open");
            drop(stream);
            continue;
        }
        let key = client_prefix(peer.ip());
        let over = match shared.tcp_per_client.lock() {
            Ok(mut m) => {
                let c = m.entry(key).or_insert(0);
                if *c >= limits.max_per_client {
                    true
                } else {
                    *c += 1;
                    false
                }
            }
            Err(_) => false,
        };
        if over {
            shared.tcp_open.fetch_sub(1, Ordering::Relaxed);
            shared
                .tcp_refused_per_client
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "tcp connection refused: too many from this client prefix");
            drop(stream);
            continue;
        }
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            connection(&shared, stream, peer, limits).await;
            shared.tcp_open.fetch_sub(1, Ordering::Relaxed);
            if let Ok(mut m) = shared.tcp_per_client.lock()
                && let Some(c) = m.get_mut(&key)
            {
                *c = c.saturating_sub(1);
                if *c == 0 {
                    m.remove(&key);
                }
            }
        });
    }
}

/// RFC 7766: several queries per connection, answered in order; the
/// connection closes after `idle_timeout` without a complete query.
async fn connection(shared: &Shared, stream: TcpStream, peer: SocketAddr, limits: TcpLimits) {
    let stats = shared.stats.tcp();
    let (r, w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut w = BufWriter::new(w);
    let mut buf = vec![0u8; 65_535];
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let stop = shared.shutdown.subscribe();
    let mut logged = 0u64;
    let mut answered = 0u64;
    loop {
        // While stopping, answer what is already arriving, then close.
        let idle = if *stop.borrow() {
            Duration::from_millis(200).min(limits.idle_timeout)
        } else {
            limits.idle_timeout
        };
        if answered >= limits.max_queries {
            shared.tcp_query_cap.fetch_add(1, Ordering::Relaxed);
            break;
        }
        // Idle until the first byte; then the whole query must arrive within
        // the query timeout (slow-loris).
        let mut len = [0u8; 2];
        match tokio::time::timeout(idle, r.read_exact(&mut len[..1])).await {
            Ok(Ok(_)) => {}
            _ => break,
        }
        let rest = async {
            r.read_exact(&mut len[1..]).await?;
            let n = u16::from_be_bytes(len) as usize;
            r.read_exact(&mut buf[..n]).await?;
            Ok::<usize, std::io::Error>(n)
        };
        let n = match tokio::time::timeout(limits.query_timeout, rest).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => break,
            Err(_) => {
                shared.tcp_timed_out.fetch_add(1, Ordering::Relaxed);
                break;
            }
        };
        answered += 1;
        if let Some(msgs) = transfer(shared, &buf[..n], peer) {
            for m in msgs {
                let l = (m.len() as u16).to_be_bytes();
                if w.write_all(&l).await.is_err() || w.write_all(&m).await.is_err() {
                    return;
                }
            }
            if w.flush().await.is_err() {
                return;
            }
            continue;
        }
        let handled = {
            let snap = shared.snapshot.load();
            let table = shared.health.load();
            let h = handle_with_health(
                &snap,
                health_up(&snap, &table),
                &buf[..n],
                peer.ip(),
                Transport::Tcp,
                &mut out,
            );
            if let Some(g) = h.as_ref().and_then(|h| h.geo.as_ref())
                && let Some(geo) = snap.geo.as_ref()
            {
                geo.count(COUNTER_SLOTS - 1, g);
            }
            h
        };
        stats.record(handled.as_ref());
        let every = shared.query_log_every.load(Ordering::Relaxed);
        if every > 0 {
            logged = logged.wrapping_add(1);
            if logged.is_multiple_of(every) {
                log_query(
                    &buf[..n],
                    peer,
                    Transport::Tcp,
                    handled.as_ref(),
                    &shared.snapshot.load(),
                );
            }
        }
        let Some(h) = handled else {
            // Not a DNS query: the stream is out of sync, close it.
            break;
        };
        let l = (h.len as u16).to_be_bytes();
        if w.write_all(&l).await.is_err() || w.write_all(&out[..h.len]).await.is_err() {
            break;
        }
        // Flush when no further query is already buffered (pipelining).
        if r.buffer().is_empty() && w.flush().await.is_err() {
            break;
        }
    }
    let _ = w.flush().await;
    let _ = w.shutdown().await;
}

/// An allowed AXFR/IXFR (IXFR is answered with a full transfer, RFC 1995
/// §4): the messages to send. `None`: not a transfer, or refused (the
/// normal handler then answers REFUSED).
fn transfer(shared: &Shared, packet: &[u8], peer: SocketAddr) -> Option<Vec<Vec<u8>>> {
    // Cheap look at the question type first: ordinary queries go straight
    // to the handler without a second parse or snapshot load.
    let mut off = 12usize;
    while let Some(&l) = packet.get(off) {
        if l == 0 || l & 0xC0 != 0 {
            break;
        }
        off += 1 + l as usize;
    }
    let qtype = packet.get(off + 1..off + 3)?;
    if !matches!(
        u16::from_be_bytes([qtype[0], qtype[1]]),
        popdns_wire::rtype::AXFR | popdns_wire::rtype::IXFR
    ) {
        return None;
    }
    let q = popdns_wire::parse_query(packet).ok()?;
    if !matches!(q.qtype, popdns_wire::rtype::AXFR | popdns_wire::rtype::IXFR)
        || q.qclass != popdns_wire::class::IN
    {
        return None;
    }
    let snap = shared.snapshot.load();
    let zone = snap.zones.find(q.qname_lc.as_bytes())?;
    if *zone.origin != *q.qname_lc.as_bytes()
        || !crate::xfr::allowed(peer.ip(), &snap.config.allow_transfer)
    {
        shared.xfr_refused.fetch_add(1, Ordering::Relaxed);
        tracing::info!(%peer, zone = %popdns_wire::name_to_text(&zone.origin), "zone transfer refused");
        return None;
    }
    shared.xfr_served.fetch_add(1, Ordering::Relaxed);
    let msgs = crate::xfr::axfr_messages(zone, &q);
    tracing::info!(%peer, zone = %popdns_wire::name_to_text(&zone.origin), serial = zone.serial, messages = msgs.len(), "zone transfer");
    Some(msgs)
}

/// One line of the query log (sampled; allocation is fine here).
fn log_query(
    packet: &[u8],
    client: SocketAddr,
    transport: Transport,
    h: Option<&crate::handler::Handled>,
    snap: &Snapshot,
) {
    let (qname, ecs) = match popdns_wire::parse_query(packet) {
        Ok(q) => (
            popdns_wire::name_to_text(q.qname),
            q.edns
                .and_then(|e| e.ecs)
                .map(|e| format!("{}/{}", e.addr, e.source_prefix)),
        ),
        Err(_) => ("-".to_string(), None),
    };
    let Some(h) = h else {
        tracing::info!(target: "popdns::query", %client, ?transport, qname, "dropped");
        return;
    };
    let (decision, pops) = match (&h.geo, snap.geo.as_ref()) {
        (Some(g), Some(geo)) => (
            format!("{:?}{}", g.decision, if g.via_ecs { "/ecs" } else { "" }),
            g.pops[..g.npops as usize]
                .iter()
                .map(|&p| geo.router.pop(p as usize).name.clone())
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => (format!("{:?}", h.kind), String::new()),
    };
    tracing::info!(
        target: "popdns::query",
        %client,
        ?transport,
        ecs = ecs.as_deref().unwrap_or("-"),
        qname,
        qtype = h.qtype,
        rcode = h.rcode,
        decision,
        pops,
        "query"
    );
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    fn mtu_discover(s: &UdpSocket, level: libc::c_int, name: libc::c_int) -> libc::c_int {
        let mut v: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: a valid socket and an int-sized out value with its length.
        let r = unsafe {
            libc::getsockopt(
                s.as_raw_fd(),
                level,
                name,
                (&raw mut v).cast(),
                &raw mut len,
            )
        };
        assert_eq!(r, 0, "{}", io::Error::last_os_error());
        v
    }

    #[test]
    fn udp_answers_are_never_fragmented_by_this_host() {
        let v4 = udp_socket("127.0.0.1:0".parse().expect("addr")).expect("v4 socket");
        assert_eq!(
            mtu_discover(&v4, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER),
            libc::IP_PMTUDISC_PROBE
        );
        // IPv6 may be absent from a test machine.
        if let Ok(v6) = udp_socket("[::1]:0".parse().expect("addr")) {
            assert_eq!(
                mtu_discover(&v6, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER),
                libc::IPV6_PMTUDISC_PROBE
            );
        }
    }
}
