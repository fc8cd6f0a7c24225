//! Geo-routed service names: the per-snapshot routing state and the answer
//! writer for A/AAAA at a service name.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use popdns_config::Config;
use popdns_geo::GeoDb;
use popdns_route::{
    Answer, Client, Decision, DecisionKind, Family, Location, OverrideSpec, PopSpec, Router,
    RouterSpec, ServiceId, ServiceSpec, convert_prefix, ecs_client, source_client,
};
use popdns_wire::{Query, Section, Writer, class, rtype};
use popdns_zone::ZoneSet;
use rustc_hash::FxHashMap;

use crate::cache::QueryCache;

/// What a routing decision depends on, besides the query name's service:
/// the snapshot (router, GeoIP data, overrides), the health table, the
/// family asked and the normalised client. Key of the per-worker memo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RouteKey {
    pub snap: u64,
    pub health: u64,
    pub svc: u32,
    pub family: u8,
    pub source: u8,
    pub prefix: u8,
    pub addr: IpAddr,
}

/// Slots of the per-worker route memo (a power of two), in buckets of two.
pub(crate) const ROUTE_SLOTS: usize = 2048;
/// Largest encoded answer section kept with a decision.
const MAX_ROUTE_BODY: usize = 512;

impl RouteKey {
    /// The first slot of the key's two-slot bucket.
    #[inline]
    fn bucket(&self) -> usize {
        let a = match self.addr {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        };
        let h = ((a as u64) ^ ((a >> 64) as u64).rotate_left(17))
            .wrapping_add(u64::from(self.svc) << 32 | u64::from(self.prefix) << 8)
            .wrapping_add(u64::from(self.family) << 1 | u64::from(self.source))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> 53) as usize & (ROUTE_SLOTS - 2)
    }
}

/// One memoised decision: the key it was made for, what was decided, the
/// PoPs answered and, when the answer section was written whole, its bytes.
#[derive(Clone, Default)]
pub(crate) struct RouteSlot {
    entry: Option<(RouteKey, Routed)>,
    answer: Answer,
    /// The answer section as written after the question (owner compressed
    /// against the question name, which matches case-insensitively, so the
    /// bytes do not depend on the query's case); empty when not kept.
    body: Vec<u8>,
    counts: [u16; 3],
}

impl RouteSlot {
    #[inline]
    fn holds(&self, key: &RouteKey) -> bool {
        matches!(&self.entry, Some((k, _)) if k == key)
    }
}

/// Routing state of a snapshot.
pub struct GeoState {
    pub router: Router,
    pub geoip: Option<GeoDb>,
    /// Service by [`popdns_wire::name_hash`] of its lowercase wire name
    /// (the name kept to confirm a match); names whose hash another name
    /// already has go to `services_overflow`.
    services: FxHashMap<u64, (Box<[u8]>, ServiceId)>,
    services_overflow: Vec<(Box<[u8]>, ServiceId)>,
    /// Owner name (wire, config case) per service.
    owners: Vec<Box<[u8]>>,
    v4: Vec<Vec<[u8; 4]>>,
    v6: Vec<Vec<[u8; 16]>>,
    /// Every override network (normalised): a geo answer's ECS scope must
    /// not cover one of them.
    override_nets: Vec<(IpAddr, u8)>,
    /// Geo answers per (service, PoP), one array per slot.
    counters: Vec<Box<[AtomicU64]>>,
    /// Per service: currently failing open (for one log line per change).
    failing_open: Box<[AtomicBool]>,
}

/// Summary of a geo answer (metrics, query log).
#[derive(Clone, Copy, Debug)]
pub struct GeoInfo {
    pub service: ServiceId,
    pub decision: DecisionKind,
    pub via_ecs: bool,
    pub degraded: bool,
    /// The first PoPs of the answer.
    pub pops: [u16; 4],
    pub npops: u8,
}

/// Slots of geo answer counters (workers share a slot modulo this).
pub const COUNTER_SLOTS: usize = 8;

/// Where the client location came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Ecs,
    SourceIp,
}

/// Everything about one routing decision (for `popdns route` and logs).
#[derive(Clone, Copy, Debug)]
pub struct Routed {
    pub client: Client,
    pub source: Source,
    pub geo_prefix: Option<u8>,
    pub decision: Decision,
    pub scope: u8,
}

impl GeoState {
    /// Build from the config; `None` when no service is configured.
    pub fn build(config: &Config, zones: &ZoneSet) -> Result<Option<GeoState>, Vec<String>> {
        let mut errors = Vec::new();
        let file = config.file.display().to_string();
        let geoip = match &config.geoip {
            Some(g) => match GeoDb::open(&g.databases, g.country_coords.as_deref()) {
                Ok(db) => Some(db),
                Err(e) => {
                    errors.push(format!("{file}: geoip: {e}"));
                    None
                }
            },
            None => None,
        };
        if config.services.is_empty() && config.pops.is_empty() {
            return if errors.is_empty() {
                Ok(None)
            } else {
                Err(errors)
            };
        }
        let spec = RouterSpec {
            pops: config
                .pops
                .iter()
                .map(|p| PopSpec {
                    name: p.name.clone(),
                    latitude: p.latitude,
                    longitude: p.longitude,
                    ipv4: p.ipv4.clone(),
                    ipv6: p.ipv6.clone(),
                })
                .collect(),
            services: config
                .services
                .iter()
                .map(|s| ServiceSpec {
                    name: s.name.clone(),
                    ttl: s.ttl,
                    answers: s.answers,
                    pops: s.pops.clone(),
                })
                .collect(),
            overrides: config
                .overrides
                .iter()
                .map(|o| OverrideSpec {
                    networks: o.networks.clone(),
                    countries: o.countries.clone(),
                    continents: o.continents.clone(),
                    pops: o.pops.clone(),
                })
                .collect(),
            local_pop: config.server.local_pop.clone(),
        };
        let router = match Router::new(spec) {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!("{file}: {e}"));
                return Err(errors);
            }
        };
        let mut services: FxHashMap<u64, (Box<[u8]>, ServiceId)> = FxHashMap::default();
        let mut services_overflow = Vec::new();
        let mut owners: Vec<Box<[u8]>> = vec![Box::from(&[0u8][..]); config.services.len()];
        for s in &config.services {
            let wire = match popdns_wire::name_from_text(&s.name) {
                Ok(w) => w,
                Err(e) => {
                    errors.push(format!("{file}:{}: services.name: {e}", s.line));
                    continue;
                }
            };
            let mut lc = wire.clone();
            lc.make_ascii_lowercase();
            let Some(z) = zones.find(&lc) else {
                errors.push(format!(
                    "{file}:{}: services.name: {} is not inside any served zone",
                    s.line, s.name
                ));
                continue;
            };
            if let Some(node) = z.node(&lc)
                && node.get(rtype::CNAME).is_some()
            {
                errors.push(format!(
                    "{file}:{}: services.name: {} has a CNAME in {}",
                    s.line,
                    s.name,
                    z.file.display()
                ));
            }
            if let Some(id) = router.service_id(&s.name)
                && let Some(slot) = owners.get_mut(id.index())
            {
                *slot = wire.into_boxed_slice();
                let lc = lc.into_boxed_slice();
                match services.entry(popdns_wire::name_hash(&lc)) {
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert((lc, id));
                    }
                    std::collections::hash_map::Entry::Occupied(_) => {
                        services_overflow.push((lc, id));
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let v4 = router
            .pops()
            .iter()
            .map(|p| p.ipv4.iter().map(|a| a.octets()).collect())
            .collect();
        let v6 = router
            .pops()
            .iter()
            .map(|p| p.ipv6.iter().map(|a| a.octets()).collect())
            .collect();
        Ok(Some(GeoState {
            router,
            geoip,
            services,
            services_overflow,
            owners,
            v4,
            v6,
            failing_open: (0..config.services.len())
                .map(|_| AtomicBool::new(false))
                .collect(),
            counters: (0..COUNTER_SLOTS)
                .map(|_| {
                    (0..config.services.len() * config.pops.len())
                        .map(|_| AtomicU64::new(0))
                        .collect()
                })
                .collect(),
            override_nets: config
                .overrides
                .iter()
                .flat_map(|o| o.networks.iter())
                .map(|&(a, l)| convert_prefix(a, l))
                .collect(),
        }))
    }

    /// The service at `qname_lc`, if any.
    pub fn service(&self, qname_lc: &[u8]) -> Option<ServiceId> {
        self.service_hashed(popdns_wire::name_hash(qname_lc), qname_lc)
    }

    /// [`GeoState::service`] given `hash`, the name's
    /// [`popdns_wire::name_hash`].
    #[inline]
    pub fn service_hashed(&self, hash: u64, qname_lc: &[u8]) -> Option<ServiceId> {
        match self.services.get(&hash) {
            Some((name, id)) if **name == *qname_lc => Some(*id),
            Some(_) => self
                .services_overflow
                .iter()
                .find(|(name, _)| **name == *qname_lc)
                .map(|&(_, id)| id),
            None => None,
        }
    }

    /// The service named `name` (presentation form, any case).
    pub fn service_by_name(&self, name: &str) -> Option<ServiceId> {
        let mut w = popdns_wire::name_from_text(name).ok()?;
        w.make_ascii_lowercase();
        self.service(&w)
    }

    /// Decide for a client: ECS `(address, source prefix)` if the query had
    /// one with a source prefix above 0, else the packet's source address.
    pub fn route(
        &self,
        svc: ServiceId,
        ecs: Option<(IpAddr, u8)>,
        src: IpAddr,
        family: Family,
        up: &[bool],
        out: &mut Answer,
    ) -> Routed {
        let (addr, prefix, source) = client_of(ecs, src);
        self.route_client(svc, addr, prefix, source, family, up, None, out)
    }

    /// [`GeoState::route`] for a normalised client address.
    #[allow(clippy::too_many_arguments)]
    fn route_client(
        &self,
        svc: ServiceId,
        addr: IpAddr,
        prefix: u8,
        source: Source,
        family: Family,
        up: &[bool],
        cache: Option<&mut popdns_geo::LocationCache>,
        out: &mut Answer,
    ) -> Routed {
        let hit = self.geoip.as_ref().map(|g| match cache {
            Some(c) => g.lookup_cached(addr, c),
            None => g.lookup(addr),
        });
        let location = hit.and_then(|h| h.location).map(|l| Location {
            lat: l.lat,
            lon: l.lon,
            country: l.country,
            continent: l.continent,
        });
        let client = Client {
            addr,
            prefix,
            location,
        };
        let decision = self.router.decide(svc, client, family, up, out);
        let scope = match decision.override_prefix {
            Some(p) => p.min(prefix),
            // The GeoIP network that decided (for an unknown location, the
            // empty network the lookup ended in): the answer holds across
            // it, except where an override network lies inside it.
            None => {
                let mut scope = hit.map_or(0, |h| h.prefix_len.min(prefix));
                for &(net, len) in &self.override_nets {
                    if len > scope && same_family(net, addr) {
                        let d = common_prefix_len(net, addr);
                        if d >= scope {
                            scope = (d + 1).min(prefix);
                        }
                    }
                }
                scope
            }
        };
        Routed {
            client,
            source,
            geo_prefix: hit.map(|h| h.prefix_len),
            decision,
            scope,
        }
    }

    /// Log once per transition into and out of fail-open for a service.
    #[inline]
    fn note_fail_open(&self, svc: ServiceId, now: bool) {
        let Some(flag) = self.failing_open.get(svc.index()) else {
            return;
        };
        if flag.load(Ordering::Relaxed) != now && flag.swap(now, Ordering::Relaxed) != now {
            let name = &self.router.service(svc).name;
            if now {
                tracing::warn!(service = %name, "every PoP of the service is down: failing open (answering as if all were up)");
            } else {
                tracing::info!(service = %name, "service has a healthy PoP again: no longer failing open");
            }
        }
    }

    /// Services currently failing open.
    pub fn failing_open(&self) -> Vec<String> {
        self.router
            .services()
            .filter(|(id, _)| {
                self.failing_open
                    .get(id.index())
                    .is_some_and(|f| f.load(Ordering::Relaxed))
            })
            .map(|(_, i)| i.name.clone())
            .collect()
    }

    /// Count a geo answer in counter slot `slot`.
    #[inline]
    pub fn count(&self, slot: usize, g: &GeoInfo) {
        let npops = self.router.pops().len();
        let c = &self.counters[slot % COUNTER_SLOTS];
        for &p in &g.pops[..g.npops as usize] {
            if let Some(x) = c.get(g.service.index() * npops + p as usize) {
                x.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Geo answers so far per (service name, PoP name).
    pub fn answer_counts(&self) -> Vec<(String, String, u64)> {
        let npops = self.router.pops().len();
        let mut out = Vec::new();
        for (id, info) in self.router.services() {
            for (p, pop) in self.router.pops().iter().enumerate() {
                let i = id.index() * npops + p;
                let n: u64 = self
                    .counters
                    .iter()
                    .filter_map(|c| c.get(i))
                    .map(|x| x.load(Ordering::Relaxed))
                    .sum();
                out.push((info.name.clone(), pop.name.clone(), n));
            }
        }
        out
    }

    /// Add counts carried over from the previous snapshot (reload).
    pub fn carry_counts(&self, old: &[(String, String, u64)]) {
        let npops = self.router.pops().len();
        for (svc, pop, n) in old {
            if let (Some(s), Some(p)) = (self.router.service_id(svc), self.router.pop_id(pop))
                && let Some(x) = self.counters[0].get(s.index() * npops + p)
            {
                x.fetch_add(*n, Ordering::Relaxed);
            }
        }
    }

    /// Write the geo answer for `q` (A or AAAA at service `svc`). Returns
    /// what was decided and the ECS scope prefix to announce, in the family
    /// of the query's ECS.
    #[allow(clippy::too_many_arguments)]
    pub fn answer(
        &self,
        svc: ServiceId,
        q: &Query<'_>,
        src: IpAddr,
        up: &[bool],
        degraded_ttl: u32,
        cache: Option<&mut QueryCache>,
        w: &mut Writer<'_>,
    ) -> (GeoInfo, Option<u8>) {
        let family = if q.qtype == rtype::AAAA {
            Family::V6
        } else {
            Family::V4
        };
        let ecs = q.edns.and_then(|e| e.ecs);
        let (addr, prefix, source) = client_of(ecs.map(|e| (e.addr, e.source_prefix)), src);
        let mut out = Answer::new();
        let r = match cache {
            None => {
                let r = self.route_client(svc, addr, prefix, source, family, up, None, &mut out);
                self.write_answer(svc, family, degraded_ttl, &r, &out, w);
                r
            }
            Some(c) => {
                // The decision, and so the answer section, is a pure function
                // of these (and of the snapshot and health table the key
                // names): replay it when seen before.
                let key = RouteKey {
                    snap: c.snap_id,
                    health: c.health_version,
                    svc: svc.index() as u32,
                    family: family as u8,
                    source: source as u8,
                    prefix,
                    addr,
                };
                let i = key.bucket();
                if let Some(slot) = c.routes[i..i + 2].iter().find(|s| s.holds(&key))
                    && let Some((_, r)) = slot.entry
                {
                    c.route_hits += 1;
                    out.clone_from(&slot.answer);
                    // Kept bytes are those of a complete section: written
                    // whole when they fit, else afresh (and truncated).
                    if slot.body.is_empty() || !w.push_body(&slot.body, slot.counts) {
                        self.write_answer(svc, family, degraded_ttl, &r, &out, w);
                    }
                    r
                } else {
                    let r = self.route_client(
                        svc,
                        addr,
                        prefix,
                        source,
                        family,
                        up,
                        Some(&mut c.geo),
                        &mut out,
                    );
                    self.write_answer(svc, family, degraded_ttl, &r, &out, w);
                    // Newer decision in the bucket's first slot; the older of
                    // the two is replaced (its buffers reused).
                    if !c.routes[i].holds(&key) {
                        c.routes.swap(i, i + 1);
                    }
                    let slot = &mut c.routes[i];
                    slot.entry = Some((key, r));
                    slot.answer.clone_from(&out);
                    slot.body.clear();
                    slot.counts = w.counts();
                    if w.is_complete() && w.body().len() <= MAX_ROUTE_BODY {
                        slot.body.extend_from_slice(w.body());
                    }
                    r
                }
            }
        };
        self.note_fail_open(svc, r.decision.kind == DecisionKind::FailOpen);
        let mut info = GeoInfo {
            service: svc,
            decision: r.decision.kind,
            via_ecs: r.source == Source::Ecs,
            degraded: r.decision.degraded,
            pops: [0; 4],
            npops: 0,
        };
        for p in out.pops().take(4) {
            info.pops[info.npops as usize] = p as u16;
            info.npops += 1;
        }
        let Some(ecs) = ecs else {
            return (info, None);
        };
        if ecs.source_prefix == 0 {
            return (info, Some(0));
        }
        // Converted from an IPv6 ECS that embeds IPv4: express the scope in
        // the query's family.
        let scope = if ecs.family == 2 && r.client.addr.is_ipv4() {
            let (_, v4_bits) = convert_prefix(ecs.addr, ecs.source_prefix);
            let embedded_at = ecs.source_prefix.saturating_sub(v4_bits);
            embedded_at.saturating_add(r.scope).min(ecs.source_prefix)
        } else {
            r.scope.min(ecs.source_prefix)
        };
        (info, Some(scope))
    }

    /// The answer section: every address of the family of each PoP in
    /// `out`, owner the service name.
    fn write_answer(
        &self,
        svc: ServiceId,
        family: Family,
        degraded_ttl: u32,
        r: &Routed,
        out: &Answer,
        w: &mut Writer<'_>,
    ) {
        let owner = &self.owners[svc.index()];
        let ttl = self.router.service(svc).ttl;
        // An answer that avoids a down PoP is cached no longer than the
        // health situation can last.
        let ttl = if r.decision.degraded {
            ttl.min(degraded_ttl)
        } else {
            ttl
        };
        match family {
            Family::V4 => {
                let rdatas = out.pops().flat_map(|p| self.v4[p].iter().map(|a| &a[..]));
                w.push_rrs(Section::Answer, owner, rtype::A, class::IN, ttl, rdatas);
            }
            Family::V6 => {
                let rdatas = out.pops().flat_map(|p| self.v6[p].iter().map(|a| &a[..]));
                w.push_rrs(Section::Answer, owner, rtype::AAAA, class::IN, ttl, rdatas);
            }
        }
    }
}

/// The client a decision is made for: the ECS address and source prefix
/// (normalised) when the query had one above /0, else the source address.
fn client_of(ecs: Option<(IpAddr, u8)>, src: IpAddr) -> (IpAddr, u8, Source) {
    match ecs {
        Some((a, p)) if p > 0 => {
            let (a, p) = ecs_client(a, p);
            (a, p, Source::Ecs)
        }
        _ => {
            let (a, p) = source_client(src);
            (a, p, Source::SourceIp)
        }
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// Number of leading bits two addresses of the same family share.
fn common_prefix_len(a: IpAddr, b: IpAddr) -> u8 {
    match (a, b) {
        (IpAddr::V4(x), IpAddr::V4(y)) => (u32::from(x) ^ u32::from(y)).leading_zeros() as u8,
        (IpAddr::V6(x), IpAddr::V6(y)) => (u128::from(x) ^ u128::from(y)).leading_zeros() as u8,
        _ => 0,
    }
}

impl GeoState {
    /// Human-readable account of one decision (`popdns route`): location,
    /// override, ranking with distances, answer, ECS scope.
    pub fn explain(
        &self,
        svc: ServiceId,
        ecs: Option<(IpAddr, u8)>,
        src: IpAddr,
        family: Family,
        up: &[bool],
    ) -> String {
        use std::fmt::Write as _;
        let mut out = Answer::new();
        let r = self.route(svc, ecs, src, family, up, &mut out);
        let ex = self.router.explain(svc, r.client, family, up);
        let info = self.router.service(svc);
        let mut s = String::new();
        let _ = match (r.source, ecs) {
            (Source::Ecs, Some((a, p))) => writeln!(
                s,
                "client:    ECS {a}/{p} -> looked up as {}/{}",
                r.client.addr, r.client.prefix
            ),
            _ => writeln!(s, "client:    source address {}", r.client.addr),
        };
        let geo = match (&self.geoip, r.client.location) {
            (None, _) => "no GeoIP database configured".to_string(),
            (Some(_), None) => format!("unknown (matched network /{})", r.geo_prefix.unwrap_or(0)),
            (Some(_), Some(l)) => {
                let cc = l.country.map_or("--".to_string(), |c| {
                    String::from_utf8_lossy(&c).into_owned()
                });
                let ct = l.continent.map_or("--".to_string(), |c| {
                    String::from_utf8_lossy(&c).into_owned()
                });
                format!(
                    "country {cc}, continent {ct}, lat {:.4} lon {:.4} (network /{})",
                    l.lat,
                    l.lon,
                    r.geo_prefix.unwrap_or(0)
                )
            }
        };
        let _ = writeln!(s, "location:  {geo}");
        let _ = match ex.decision.override_index {
            Some(i) => writeln!(
                s,
                "override:  #{i}{}",
                ex.decision
                    .override_prefix
                    .map_or(String::new(), |p| format!(" (network /{p})"))
            ),
            None => writeln!(s, "override:  none"),
        };
        let _ = writeln!(
            s,
            "decision:  {:?}{}",
            ex.decision.kind,
            if ex.decision.degraded {
                " (degraded)"
            } else {
                ""
            }
        );
        let _ = writeln!(s, "ranking:");
        for (i, rp) in ex.ranking.iter().enumerate() {
            let p = self.router.pop(rp.pop);
            let dist = rp
                .distance_km
                .map_or("-".to_string(), |d| format!("{d:.0} km"));
            let mut notes = Vec::new();
            if rp.preferred {
                notes.push("override".to_string());
            }
            if !rp.has_family {
                notes.push("no address of this family".to_string());
            }
            if !rp.up {
                notes.push("down".to_string());
            }
            if let Some(pos) = rp.answer_position {
                notes.push(format!("answer #{}", pos + 1));
            }
            let _ = writeln!(
                s,
                "  {:>2}. {:<10} {:>10}  {}",
                i + 1,
                p.name,
                dist,
                notes.join(", ")
            );
        }
        let owner = popdns_wire::name_to_text(&self.owners[svc.index()]);
        let t = if family == Family::V6 { "AAAA" } else { "A" };
        let _ = writeln!(s, "answer:");
        for a in self.router.addresses(&out, family) {
            let _ = writeln!(s, "  {owner} {} IN {t} {a}", info.ttl);
        }
        let _ = match ecs {
            Some((_, p)) if p > 0 => writeln!(s, "ecs scope: /{}", r.scope),
            _ => writeln!(
                s,
                "ecs scope: (no ECS in the query; /{} if it had one)",
                r.scope
            ),
        };
        s
    }
}
