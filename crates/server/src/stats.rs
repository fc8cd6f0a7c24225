//! Query counters. Each UDP worker owns one [`WorkerStats`] block (its own
//! cache lines), TCP tasks share one; increments are relaxed atomic adds, so
//! the query path takes no lock. The admin layer sums the blocks at scrape
//! time ([`Stats::totals`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use popdns_route::DecisionKind;
use popdns_wire::{rcode, rtype};

use crate::handler::Handled;

/// Query types counted by name; everything else is "other".
pub const QTYPES: [(u16, &str); 14] = [
    (rtype::A, "A"),
    (rtype::AAAA, "AAAA"),
    (rtype::CNAME, "CNAME"),
    (rtype::MX, "MX"),
    (rtype::NS, "NS"),
    (rtype::SOA, "SOA"),
    (rtype::TXT, "TXT"),
    (rtype::SRV, "SRV"),
    (rtype::PTR, "PTR"),
    (rtype::DS, "DS"),
    (257, "CAA"),
    (65, "HTTPS"),
    (rtype::ANY, "ANY"),
    (0, "other"),
];

/// Response codes counted by name; everything else is "other".
pub const RCODES: [(u16, &str); 9] = [
    (rcode::NOERROR, "NOERROR"),
    (rcode::FORMERR, "FORMERR"),
    (rcode::SERVFAIL, "SERVFAIL"),
    (rcode::NXDOMAIN, "NXDOMAIN"),
    (rcode::NOTIMP, "NOTIMP"),
    (rcode::REFUSED, "REFUSED"),
    (rcode::YXDOMAIN, "YXDOMAIN"),
    (rcode::BADVERS, "BADVERS"),
    (u16::MAX, "other"),
];

/// Geo decision kinds as metric labels.
pub const DECISIONS: [&str; 6] = [
    "ecs",
    "source-ip",
    "override",
    "local-pop",
    "config-order",
    "fail-open",
];

const NQ: usize = QTYPES.len();
const NR: usize = RCODES.len();

fn qtype_index(t: u16) -> usize {
    QTYPES.iter().position(|&(q, _)| q == t).unwrap_or(NQ - 1)
}

fn rcode_index(r: u16) -> usize {
    RCODES.iter().position(|&(c, _)| c == r).unwrap_or(NR - 1)
}

/// Counters of one worker.
#[repr(align(128))]
pub struct WorkerStats {
    queries: [[AtomicU64; NR]; NQ],
    decisions: [AtomicU64; DECISIONS.len()],
    ecs_queries: AtomicU64,
    ecs_formerr: AtomicU64,
    dropped: AtomicU64,
    pub(crate) rrl_dropped: AtomicU64,
    pub(crate) rrl_slipped: AtomicU64,
    /// The worker memo's hits so far: zone answers, routing decisions,
    /// GeoIP records (published by the worker after each batch).
    memo_hits: [AtomicU64; 3],
    /// Only one thread writes this block (a UDP worker's): counting is a
    /// plain load and store, no locked read-modify-write on the query path.
    exclusive: bool,
}

impl Default for WorkerStats {
    fn default() -> Self {
        WorkerStats {
            queries: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            decisions: std::array::from_fn(|_| AtomicU64::new(0)),
            ecs_queries: AtomicU64::new(0),
            ecs_formerr: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            rrl_dropped: AtomicU64::new(0),
            rrl_slipped: AtomicU64::new(0),
            memo_hits: std::array::from_fn(|_| AtomicU64::new(0)),
            exclusive: false,
        }
    }
}

/// Add one to a counter; `exclusive`: this thread is its only writer
/// (readers still see whole values: the store is atomic).
#[inline]
fn bump(c: &AtomicU64, exclusive: bool) {
    if exclusive {
        c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    } else {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

impl WorkerStats {
    /// Publish a worker memo's hit totals (only into a block this worker
    /// owns alone; a shared block keeps none).
    pub(crate) fn set_memo_hits(&self, h: crate::cache::CacheHits) {
        if self.exclusive {
            for (c, v) in self.memo_hits.iter().zip([h.zone, h.route, h.geo]) {
                c.store(v, Ordering::Relaxed);
            }
        }
    }

    /// Count one handled query (`None`: dropped without an answer).
    #[inline]
    pub fn record(&self, h: Option<&Handled>) {
        let Some(h) = h else {
            bump(&self.dropped, self.exclusive);
            return;
        };
        bump(
            &self.queries[qtype_index(h.qtype)][rcode_index(h.rcode)],
            self.exclusive,
        );
        if h.ecs {
            bump(&self.ecs_queries, self.exclusive);
        }
        if h.bad_option {
            bump(&self.ecs_formerr, self.exclusive);
        }
        if let Some(g) = &h.geo {
            let d = match g.decision {
                DecisionKind::Geo if g.via_ecs => 0,
                DecisionKind::Geo => 1,
                DecisionKind::Override => 2,
                DecisionKind::LocalPopFallback => 3,
                DecisionKind::ConfigOrder => 4,
                DecisionKind::FailOpen => 5,
            };
            bump(&self.decisions[d], self.exclusive);
        }
    }
}

/// Plain totals for rendering.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    /// (transport, qtype, rcode, count), nonzero only.
    pub queries: Vec<(&'static str, &'static str, &'static str, u64)>,
    pub decisions: Vec<(&'static str, u64)>,
    pub ecs_queries: u64,
    pub ecs_formerr: u64,
    pub dropped: u64,
    pub rrl_dropped: u64,
    pub rrl_slipped: u64,
    /// Worker memo hits: zone answers, routing decisions, GeoIP records.
    pub memo_hits: [u64; 3],
}

/// Every counter block.
pub struct Stats {
    udp: Vec<Arc<WorkerStats>>,
    tcp: Arc<WorkerStats>,
}

impl Stats {
    /// Blocks for `udp_workers` UDP threads (one each, written by that
    /// thread only) and one for TCP (shared by every connection task).
    pub fn new(udp_workers: usize) -> Stats {
        Stats {
            udp: (0..udp_workers.max(1))
                .map(|_| {
                    Arc::new(WorkerStats {
                        exclusive: true,
                        ..WorkerStats::default()
                    })
                })
                .collect(),
            tcp: Arc::new(WorkerStats::default()),
        }
    }

    /// The block of UDP worker `i` (each worker its own; a worker beyond
    /// the count given to [`Stats::new`] shares the TCP block).
    pub fn udp(&self, i: usize) -> Arc<WorkerStats> {
        Arc::clone(self.udp.get(i).unwrap_or(&self.tcp))
    }

    /// The TCP block.
    pub fn tcp(&self) -> Arc<WorkerStats> {
        Arc::clone(&self.tcp)
    }

    /// Sum every block.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        let sum = |blocks: &[&WorkerStats], f: &dyn Fn(&WorkerStats) -> u64| -> u64 {
            blocks.iter().map(|b| f(b)).sum()
        };
        let udp: Vec<&WorkerStats> = self.udp.iter().map(|a| &**a).collect();
        let tcp: Vec<&WorkerStats> = vec![&*self.tcp];
        for (name, blocks) in [("udp", &udp), ("tcp", &tcp)] {
            for (qi, (_, qn)) in QTYPES.iter().enumerate() {
                for (ri, (_, rn)) in RCODES.iter().enumerate() {
                    let n = sum(blocks, &|b| b.queries[qi][ri].load(Ordering::Relaxed));
                    if n > 0 {
                        t.queries.push((name, qn, rn, n));
                    }
                }
            }
        }
        let all: Vec<&WorkerStats> = udp.iter().chain(tcp.iter()).copied().collect();
        for (i, d) in DECISIONS.iter().enumerate() {
            t.decisions
                .push((d, sum(&all, &|b| b.decisions[i].load(Ordering::Relaxed))));
        }
        t.ecs_queries = sum(&all, &|b| b.ecs_queries.load(Ordering::Relaxed));
        t.ecs_formerr = sum(&all, &|b| b.ecs_formerr.load(Ordering::Relaxed));
        t.dropped = sum(&all, &|b| b.dropped.load(Ordering::Relaxed));
        t.rrl_dropped = sum(&all, &|b| b.rrl_dropped.load(Ordering::Relaxed));
        t.rrl_slipped = sum(&all, &|b| b.rrl_slipped.load(Ordering::Relaxed));
        for (i, v) in t.memo_hits.iter_mut().enumerate() {
            *v = sum(&all, &|b| b.memo_hits[i].load(Ordering::Relaxed));
        }
        t
    }
}
