//! Per-worker memo of finished work, so that a repeated question costs a
//! hash lookup and a copy instead of a walk of the zone and a fresh encoding.
//!
//! All three parts are owned by one UDP worker (no sharing, no locks) and
//! never change an answer:
//!
//! - **Zone answers**: the sections after the question of a complete zone
//!   answer (nothing truncated or left out), keyed by the lowercased name and
//!   type and by the snapshot that made it. A hit is appended with
//!   [`Writer::push_body`] only when it fits the client's size limit whole,
//!   so the message is byte for byte what the full path writes (the
//!   `fast_path` tests check this over a corpus). A new snapshot has a new
//!   key, so a reload never serves an old answer.
//! - **Routing decisions**: the answer's PoPs, decision and ECS scope per
//!   (snapshot, health version, service, family, normalised client address
//!   and prefix): everything the decision is a function of, and so is the
//!   answer section, whose bytes are kept too when it was written whole
//!   (replayed under the same fits-whole rule). A new health table gets a
//!   new version from the worker, so a PoP going down is seen by the next
//!   query.
//! - **GeoIP records**: decoded locations by database record
//!   ([`popdns_geo::LocationCache`]), for decisions not memoised.
//!
//! All are tables of fixed size (zone answers four-way set-associative,
//! routing decisions two-way, GeoIP records direct-mapped): a colliding entry is replaced, memory does not
//! grow with the query mix, and a slot's buffer is reused, so steady-state
//! hits and misses do not allocate.

use popdns_wire::Writer;

/// Zone-answer slots per worker (a power of two), in buckets of [`WAYS`].
const ANSWER_SLOTS: usize = 16384;
/// Slots per bucket: a name competes with few others for its bucket, so a
/// working set up to about the table's size stays in it (with two ways, a
/// quarter of 4,096 names cycled through 8,192 slots kept evicting each
/// other).
const WAYS: usize = 4;
/// Largest body kept (UDP answers are at most 1232 bytes).
const MAX_BODY: usize = 1232;

/// One worker's memo. Create it once per worker and pass it to
/// [`crate::handle_cached`] for every query.
pub struct QueryCache {
    answers: Box<[Slot]>,
    pub(crate) geo: popdns_geo::LocationCache,
    pub(crate) routes: Box<[crate::geo::RouteSlot]>,
    /// Set per query by `handle_cached`: the snapshot and health version
    /// the answer is made from (route memo key parts).
    pub(crate) snap_id: u64,
    pub(crate) health_version: u64,
    /// Zone answers served from the cache.
    pub(crate) zone_hits: u64,
    /// Routing decisions replayed.
    pub(crate) route_hits: u64,
}

/// How often a [`QueryCache`] saved work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheHits {
    /// Zone answers copied from the cache.
    pub zone: u64,
    /// GeoIP records not decoded again.
    pub geo: u64,
    /// Routing decisions replayed (no GeoIP lookup, no ranking).
    pub route: u64,
}

impl std::ops::Sub for CacheHits {
    type Output = CacheHits;
    fn sub(self, o: CacheHits) -> CacheHits {
        CacheHits {
            zone: self.zone - o.zone,
            geo: self.geo - o.geo,
            route: self.route - o.route,
        }
    }
}

#[derive(Default)]
struct Slot {
    /// `Snapshot::cache_id` of the answer; 0 = empty.
    snap: u64,
    /// Low bits of the key's hash: a miss is usually told without reading
    /// `data` (one memory access less).
    tag: u32,
    qtype: u16,
    rcode: u16,
    aa: bool,
    counts: [u16; 3],
    name_len: u8,
    /// The lowercased query name, then the body.
    data: Vec<u8>,
}

impl Slot {
    /// Holds the answer to this question under this snapshot.
    #[inline]
    fn is(&self, snap: u64, tag: u32, qname_lc: &[u8], qtype: u16) -> bool {
        let n = self.name_len as usize;
        self.tag == tag
            && self.snap == snap
            && self.qtype == qtype
            && n == qname_lc.len()
            && self.data[..n] == *qname_lc
    }
}

/// What a cache hit gives back.
pub(crate) struct Hit<'c> {
    pub rcode: u16,
    pub aa: bool,
    pub counts: [u16; 3],
    pub body: &'c [u8],
}

impl Default for QueryCache {
    fn default() -> Self {
        Self::new()
    }
}

impl QueryCache {
    /// An empty memo (allocates its fixed slot arrays, under 1 MiB).
    pub fn new() -> Self {
        QueryCache {
            answers: (0..ANSWER_SLOTS).map(|_| Slot::default()).collect(),
            geo: popdns_geo::LocationCache::new(),
            routes: (0..crate::geo::ROUTE_SLOTS)
                .map(|_| crate::geo::RouteSlot::default())
                .collect(),
            snap_id: 0,
            health_version: 0,
            zone_hits: 0,
            route_hits: 0,
        }
    }

    /// Hits so far.
    pub fn hits(&self) -> CacheHits {
        CacheHits {
            zone: self.zone_hits,
            geo: self.geo.hits(),
            route: self.route_hits,
        }
    }

    /// The zone answer to (`qname_lc`, `qtype`) made from snapshot `snap`;
    /// `name_hash` is [`popdns_wire::name_hash`] of `qname_lc`.
    #[inline]
    pub(crate) fn get(
        &self,
        snap: u64,
        name_hash: u64,
        qname_lc: &[u8],
        qtype: u16,
    ) -> Option<Hit<'_>> {
        let (i, tag) = slot_of(name_hash, qtype);
        let s = self.answers[i..i + WAYS]
            .iter()
            .find(|s| s.is(snap, tag, qname_lc, qtype))?;
        let n = s.name_len as usize;
        Some(Hit {
            rcode: s.rcode,
            aa: s.aa,
            counts: s.counts,
            body: &s.data[n..],
        })
    }

    /// Keep the answer just written into `w` when it is complete.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn put(
        &mut self,
        snap: u64,
        name_hash: u64,
        qname_lc: &[u8],
        qtype: u16,
        rcode: u16,
        aa: bool,
        w: &Writer<'_>,
    ) {
        let body = w.body();
        if !w.is_complete() || body.len() > MAX_BODY || qname_lc.len() > 255 {
            return;
        }
        let (i, tag) = slot_of(name_hash, qtype);
        // Newest answer first in its bucket: a new answer moves the others
        // one down and takes the last one's place (and buffer), so the
        // oldest is the one replaced. An answer already there is rewritten
        // in place.
        let bucket = &mut self.answers[i..i + WAYS];
        let j = match bucket.iter().position(|s| s.is(snap, tag, qname_lc, qtype)) {
            Some(j) => j,
            None => {
                bucket.rotate_right(1);
                0
            }
        };
        let s = &mut bucket[j];
        s.snap = snap;
        s.tag = tag;
        s.qtype = qtype;
        s.rcode = rcode;
        s.aa = aa;
        s.counts = w.counts();
        s.name_len = qname_lc.len() as u8;
        s.data.clear();
        s.data.extend_from_slice(qname_lc);
        s.data.extend_from_slice(body);
    }
}

/// The slot index and a tag from the name's hash and the type.
#[inline]
fn slot_of(name_hash: u64, qtype: u16) -> (usize, u32) {
    let h = (name_hash ^ u64::from(qtype)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // The first slot of a bucket.
    ((h >> 50) as usize & (ANSWER_SLOTS - WAYS), h as u32)
}
