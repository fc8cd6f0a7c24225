//! The [`Router`]: validated configuration plus precomputed tables, and the
//! per-query [`Router::decide`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::addr::{convert_prefix, mask_u128};
use crate::error::RouteError;
use crate::geo::{Grid, Trig, hav_key, key_to_km, valid_coords};
use crate::spec::RouterSpec;

/// Most PoPs one answer can hold; [`ServiceSpec::answers`](crate::ServiceSpec)
/// is clamped to it.
pub const MAX_ANSWERS: usize = 16;
/// Extra ranking depth kept per cell beyond a service's `answers`, so that a
/// few down PoPs do not force a full scan.
pub const DOWN_MARGIN: usize = 4;
const MAX_K: usize = MAX_ANSWERS + DOWN_MARGIN;

/// Index of a PoP: its position in [`RouterSpec::pops`] and in the `up` slice.
pub type PopId = usize;

/// Handle of a service, valid for the [`Router`] that issued it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(u32);

impl ServiceId {
    /// Position of the service in [`RouterSpec::services`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Address family of the query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// A records.
    V4,
    /// AAAA records.
    V6,
}

impl Family {
    fn idx(self) -> usize {
        match self {
            Family::V4 => 0,
            Family::V6 => 1,
        }
    }
}

/// Client location, already looked up by the caller (GeoIP).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Location {
    /// Latitude in degrees. Out of range / non-finite coordinates make the
    /// location unusable for distance (treated as unknown).
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// ISO 3166-1 alpha-2 country code (ASCII, any case).
    pub country: Option<[u8; 2]>,
    /// Continent code (ASCII, any case).
    pub continent: Option<[u8; 2]>,
}

/// The client a decision is made for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Client {
    /// Normalised, masked address (see [`ecs_client`](crate::ecs_client) and
    /// [`source_client`](crate::source_client)).
    pub addr: IpAddr,
    /// Effective source prefix of `addr`. Override networks longer than this
    /// are not matched (the client did not reveal those bits).
    pub prefix: u8,
    /// Location, if GeoIP knew it.
    pub location: Option<Location>,
}

/// Why the answer is what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecisionKind {
    /// An override matched (its PoPs first, then by distance).
    Override,
    /// Ranked by distance from the client's location.
    Geo,
    /// Location unknown: ranked by distance from the local PoP.
    LocalPopFallback,
    /// Location unknown and no local PoP: configuration order.
    ConfigOrder,
    /// Every PoP of the service (with addresses of the family) was down, so
    /// the answer was computed as if all were up.
    FailOpen,
}

/// Metadata of one decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// What rule produced the answer.
    pub kind: DecisionKind,
    /// Index (in [`RouterSpec::overrides`]) of the override that matched,
    /// also set when `kind` is [`DecisionKind::FailOpen`].
    pub override_index: Option<usize>,
    /// Prefix length of the override network that matched, if the override
    /// matched by network (for the ECS scope).
    pub override_prefix: Option<u8>,
    /// A PoP that would have been answered was skipped because it was down
    /// (always true on fail-open): the caller should cap the TTL.
    pub degraded: bool,
}

impl Decision {
    /// ECS scope prefix to return for a client of effective prefix
    /// `client_prefix`: a network override's prefix when one matched,
    /// otherwise the client prefix.
    pub fn scope_prefix(&self, client_prefix: u8) -> u8 {
        self.override_prefix.unwrap_or(client_prefix)
    }
}

/// Caller-owned, reusable answer: up to [`MAX_ANSWERS`] PoP ids, best first.
/// Filling it never allocates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    ids: [u16; MAX_ANSWERS],
    len: u8,
}

impl Default for Answer {
    fn default() -> Self {
        Self::new()
    }
}

impl Answer {
    /// An empty answer.
    pub const fn new() -> Self {
        Self {
            ids: [0; MAX_ANSWERS],
            len: 0,
        }
    }

    /// Number of PoPs in the answer.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True when no PoP was selected (the service has no PoP with addresses
    /// of the family: answer NODATA).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// PoP ids, best first.
    pub fn pops(&self) -> impl ExactSizeIterator<Item = PopId> + '_ {
        self.ids[..self.len()].iter().map(|&p| usize::from(p))
    }

    /// Empties the answer.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    fn contains(&self, p: u16) -> bool {
        self.ids[..self.len()].contains(&p)
    }

    fn push(&mut self, p: u16) {
        if self.len() < MAX_ANSWERS {
            self.ids[self.len()] = p;
            self.len += 1;
        }
    }
}

/// A PoP as the server sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Pop {
    /// Unique name.
    pub name: String,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// A addresses.
    pub ipv4: Vec<Ipv4Addr>,
    /// AAAA addresses.
    pub ipv6: Vec<Ipv6Addr>,
}

impl Pop {
    fn has(&self, family: Family) -> bool {
        match family {
            Family::V4 => !self.ipv4.is_empty(),
            Family::V6 => !self.ipv6.is_empty(),
        }
    }
}

/// A service as the server sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Lower-case name without trailing dot.
    pub name: String,
    /// Answer TTL in seconds.
    pub ttl: u32,
    /// PoPs per answer (clamped to [`MAX_ANSWERS`]).
    pub answers: usize,
}

/// One line of [`Router::explain`].
#[derive(Clone, Debug, PartialEq)]
pub struct RankedPop {
    /// The PoP.
    pub pop: PopId,
    /// Distance in km from the reference point (client location, or local
    /// PoP when the location is unknown); `None` in configuration order.
    pub distance_km: Option<f64>,
    /// Listed by the matching override (ranked ahead of distance).
    pub preferred: bool,
    /// Has addresses of the queried family.
    pub has_family: bool,
    /// Health flag.
    pub up: bool,
    /// Position in the answer, if selected.
    pub answer_position: Option<usize>,
}

/// Output of [`Router::explain`], for the `popdns route` command.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// The decision exactly as [`Router::decide`] makes it.
    pub decision: Decision,
    /// The answer exactly as [`Router::decide`] fills it.
    pub answer: Vec<PopId>,
    /// Every PoP of the service, in ranking order (as if all were up):
    /// override PoPs first, then by distance / configuration order.
    pub ranking: Vec<RankedPop>,
}

/// Statistics of the precomputed tables (for logs and tuning).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TableStats {
    /// Distinct candidate tables (shared by services with equal PoP sets).
    pub tables: usize,
    /// Heap bytes of all candidate tables.
    pub heap_bytes: usize,
    /// Largest mean number of candidates per cell over the tables.
    pub max_mean_candidates: f64,
}

#[derive(Clone, Debug)]
struct FamilyRoute {
    /// Index into `Router::grids`.
    grid: usize,
    /// Ranking for unknown locations: by distance from the local PoP, or
    /// configuration order.
    fallback: Vec<u16>,
}

#[derive(Clone, Debug)]
struct ServiceRoute {
    /// Bitset over PoP ids.
    members: Vec<u64>,
    /// Service PoPs in configuration order (explain, ranking order).
    config_order: Vec<u16>,
    fam: [FamilyRoute; 2],
}

impl ServiceRoute {
    fn member(&self, p: u16) -> bool {
        let p = usize::from(p);
        self.members
            .get(p / 64)
            .is_some_and(|w| w & (1u64 << (p % 64)) != 0)
    }
}

/// Network → override index, one sorted table per prefix length, longest
/// first. A lookup costs one binary search per distinct prefix length.
#[derive(Clone, Debug, Default)]
struct PrefixTable {
    /// (prefix length, sorted (masked key, override index)).
    levels: Vec<(u8, Vec<(u128, u32)>)>,
}

impl PrefixTable {
    fn build(mut entries: Vec<(u8, u128, u32)>) -> Self {
        // Longest prefix first; equal networks keep the first override.
        entries.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        entries.dedup_by(|b, a| a.0 == b.0 && a.1 == b.1);
        let mut levels: Vec<(u8, Vec<(u128, u32)>)> = Vec::new();
        for (len, key, idx) in entries {
            match levels.last_mut() {
                Some((l, v)) if *l == len => v.push((key, idx)),
                _ => levels.push((len, vec![(key, idx)])),
            }
        }
        Self { levels }
    }

    /// `key` is left-aligned in `width` bits (IPv4 in the top 32 of u128).
    fn lookup(&self, key: u128, max_len: u8) -> Option<(usize, u8)> {
        for (len, table) in &self.levels {
            if *len > max_len {
                continue;
            }
            let k = mask_u128(key, *len);
            if let Ok(i) = table.binary_search_by(|e| e.0.cmp(&k)) {
                return Some((table[i].1 as usize, *len));
            }
        }
        None
    }
}

fn left_aligned(ip: IpAddr) -> (usize, u128, u8) {
    match ip {
        IpAddr::V4(v4) => (0, u128::from(u32::from(v4)) << 96, 32),
        IpAddr::V6(v6) => (1, u128::from(v6), 128),
    }
}

fn code(c: [u8; 2]) -> [u8; 2] {
    [c[0].to_ascii_uppercase(), c[1].to_ascii_uppercase()]
}

/// Sorted top list of at most `MAX_K` (key, pop) pairs, ordered by
/// `(key, pop id)`.
struct TopK {
    items: [(f64, u16); MAX_K],
    len: usize,
    cap: usize,
}

impl TopK {
    fn new(cap: usize) -> Self {
        Self {
            items: [(0.0, 0); MAX_K],
            len: 0,
            cap: cap.min(MAX_K),
        }
    }

    #[inline]
    fn less(a: (f64, u16), b: (f64, u16)) -> bool {
        a.0 < b.0 || (a.0 == b.0 && a.1 < b.1)
    }

    /// Adds the pair if it ranks among the first `cap`. The usual case on
    /// a long candidate list, a full list and a pair that ranks after its
    /// last, is told inline with one comparison.
    #[inline(always)]
    fn insert(&mut self, key: f64, p: u16) {
        if self.len == self.cap
            && (self.cap == 0 || !Self::less((key, p), self.items[self.len - 1]))
        {
            return;
        }
        self.place(key, p);
    }

    #[inline(never)]
    fn place(&mut self, key: f64, p: u16) {
        let item = (key, p);
        if self.len == self.cap {
            self.len -= 1;
        }
        let mut i = self.len;
        while i > 0 && Self::less(item, self.items[i - 1]) {
            self.items[i] = self.items[i - 1];
            i -= 1;
        }
        self.items[i] = item;
        self.len += 1;
    }

    fn as_slice(&self) -> &[(f64, u16)] {
        &self.items[..self.len]
    }
}

/// Health view: the caller's flags, or everything up (fail-open).
#[derive(Clone, Copy)]
struct Health<'a> {
    up: &'a [bool],
    all_up: bool,
}

impl Health<'_> {
    #[inline]
    fn up(&self, p: u16) -> bool {
        self.all_up || self.up.get(usize::from(p)).copied().unwrap_or(true)
    }
}

/// The routing core. Immutable after [`Router::new`]; share it behind an
/// `Arc` (it is `Send + Sync`) and swap it on reload.
#[derive(Clone, Debug)]
pub struct Router {
    pops: Vec<Pop>,
    trig: Vec<Trig>,
    services: Vec<ServiceInfo>,
    by_name: HashMap<String, ServiceId>,
    routes: Vec<ServiceRoute>,
    grids: Vec<Grid>,
    override_pops: Vec<Vec<u16>>,
    /// [IPv4, IPv6] network tables.
    nets: [PrefixTable; 2],
    /// Sorted (code, first override index).
    countries: Vec<([u8; 2], u32)>,
    continents: Vec<([u8; 2], u32)>,
    local_pop: Option<PopId>,
}

/// What matched: override index and network prefix length (if by network).
type OverrideMatch = Option<(usize, Option<u8>)>;

impl Router {
    /// Validates `spec` and precomputes the routing tables.
    ///
    /// Build cost is dominated by the candidate grids: one per distinct
    /// (service PoP set ∩ PoPs with addresses of a family).
    pub fn new(spec: RouterSpec) -> Result<Self, RouteError> {
        let n = spec.pops.len();
        if n > usize::from(u16::MAX) {
            return Err(RouteError::TooManyPops { count: n });
        }
        let mut pop_ids: HashMap<&str, u16> = HashMap::with_capacity(n);
        for (i, p) in spec.pops.iter().enumerate() {
            if !valid_coords(p.latitude, p.longitude) {
                return Err(RouteError::InvalidCoordinates {
                    pop: p.name.clone(),
                    latitude: p.latitude,
                    longitude: p.longitude,
                });
            }
            // i < n <= u16::MAX, checked above.
            let id = u16::try_from(i).unwrap_or(u16::MAX);
            if pop_ids.insert(p.name.as_str(), id).is_some() {
                return Err(RouteError::DuplicatePop {
                    name: p.name.clone(),
                });
            }
        }

        let local_pop = match &spec.local_pop {
            None => None,
            Some(name) => match pop_ids.get(name.as_str()) {
                Some(&id) => Some(usize::from(id)),
                None => return Err(RouteError::UnknownLocalPop { pop: name.clone() }),
            },
        };

        // Services.
        let mut service_sets: Vec<Vec<u16>> = Vec::with_capacity(spec.services.len());
        let mut services = Vec::with_capacity(spec.services.len());
        let mut by_name = HashMap::with_capacity(spec.services.len());
        for (si, s) in spec.services.iter().enumerate() {
            let name = s.name.trim_end_matches('.').to_ascii_lowercase();
            if s.answers == 0 {
                return Err(RouteError::ZeroAnswers {
                    service_index: si,
                    service: s.name.clone(),
                });
            }
            let set: Vec<u16> = match &s.pops {
                None => (0..n).filter_map(|i| u16::try_from(i).ok()).collect(),
                Some(names) => {
                    let mut v = Vec::with_capacity(names.len());
                    for pn in names {
                        let Some(&id) = pop_ids.get(pn.as_str()) else {
                            return Err(RouteError::UnknownServicePop {
                                service_index: si,
                                service: s.name.clone(),
                                pop: pn.clone(),
                            });
                        };
                        if !v.contains(&id) {
                            v.push(id);
                        }
                    }
                    v
                }
            };
            if set.is_empty() {
                return Err(RouteError::EmptyServicePops {
                    service_index: si,
                    service: s.name.clone(),
                });
            }
            let id = ServiceId(u32::try_from(si).unwrap_or(u32::MAX));
            if by_name.insert(name.clone(), id).is_some() {
                return Err(RouteError::DuplicateService { name });
            }
            services.push(ServiceInfo {
                name,
                ttl: s.ttl,
                answers: s.answers.min(MAX_ANSWERS),
            });
            service_sets.push(set);
        }

        // Overrides.
        let mut override_pops = Vec::with_capacity(spec.overrides.len());
        let mut net_entries: [Vec<(u8, u128, u32)>; 2] = [Vec::new(), Vec::new()];
        let mut countries = Vec::new();
        let mut continents = Vec::new();
        for (oi, o) in spec.overrides.iter().enumerate() {
            let idx = u32::try_from(oi).unwrap_or(u32::MAX);
            if o.pops.is_empty() {
                return Err(RouteError::EmptyOverridePops { override_index: oi });
            }
            let mut v = Vec::with_capacity(o.pops.len());
            for pn in &o.pops {
                let Some(&id) = pop_ids.get(pn.as_str()) else {
                    return Err(RouteError::UnknownOverridePop {
                        override_index: oi,
                        pop: pn.clone(),
                    });
                };
                if !v.contains(&id) {
                    v.push(id);
                }
            }
            override_pops.push(v);
            for &(net, prefix) in &o.networks {
                let width = if net.is_ipv4() { 32 } else { 128 };
                if prefix > width {
                    return Err(RouteError::InvalidOverridePrefix {
                        override_index: oi,
                        network: net,
                        prefix,
                    });
                }
                let (net, prefix) = convert_prefix(net, prefix);
                let (fam, key, _) = left_aligned(net);
                net_entries[fam].push((prefix, mask_u128(key, prefix), idx));
            }
            countries.extend(o.countries.iter().map(|&c| (code(c), idx)));
            continents.extend(o.continents.iter().map(|&c| (code(c), idx)));
        }
        for codes in [&mut countries, &mut continents] {
            codes.sort_unstable();
            codes.dedup_by_key(|e| e.0);
        }
        let [n4, n6] = net_entries;
        let nets = [PrefixTable::build(n4), PrefixTable::build(n6)];

        // Per-pop geometry.
        let pops: Vec<Pop> = spec
            .pops
            .into_iter()
            .map(|p| Pop {
                name: p.name,
                lat: p.latitude,
                lon: p.longitude,
                ipv4: p.ipv4,
                ipv6: p.ipv6,
            })
            .collect();
        let trig: Vec<Trig> = pops.iter().map(|p| Trig::new(p.lat, p.lon)).collect();
        let units: Vec<[f64; 3]> = pops
            .iter()
            .map(|p| {
                let (sl, cl) = p.lat.to_radians().sin_cos();
                let (so, co) = p.lon.to_radians().sin_cos();
                [cl * co, cl * so, sl]
            })
            .collect();

        // Group (service, family) by PoP set; depth = max answers + margin.
        let mut set_index: HashMap<Vec<u16>, usize> = HashMap::new();
        let mut set_list: Vec<(Vec<u16>, usize)> = Vec::new();
        let mut fam_set = Vec::with_capacity(services.len());
        for (set, info) in service_sets.iter().zip(&services) {
            let mut pair = [0usize; 2];
            for fam in [Family::V4, Family::V6] {
                let mut fs: Vec<u16> = set
                    .iter()
                    .copied()
                    .filter(|&p| pops[usize::from(p)].has(fam))
                    .collect();
                fs.sort_unstable();
                let depth = info.answers + DOWN_MARGIN;
                let gi = *set_index.entry(fs.clone()).or_insert_with(|| {
                    set_list.push((fs, 0));
                    set_list.len() - 1
                });
                set_list[gi].1 = set_list[gi].1.max(depth);
                pair[fam.idx()] = gi;
            }
            fam_set.push(pair);
        }
        let grids: Vec<Grid> = set_list
            .into_iter()
            .map(|(set, k)| Grid::build(set, k, &units))
            .collect();

        let mut routes = Vec::with_capacity(services.len());
        for (set, pair) in service_sets.iter().zip(&fam_set) {
            let mut members = vec![0u64; n.div_ceil(64)];
            for &p in set {
                members[usize::from(p) / 64] |= 1u64 << (usize::from(p) % 64);
            }
            let fam = [Family::V4, Family::V6].map(|f| {
                let mut fallback: Vec<u16> = set
                    .iter()
                    .copied()
                    .filter(|&p| pops[usize::from(p)].has(f))
                    .collect();
                if let Some(lp) = local_pop {
                    let t = &trig[lp];
                    fallback.sort_by(|&a, &b| {
                        hav_key(t, &trig[usize::from(a)])
                            .total_cmp(&hav_key(t, &trig[usize::from(b)]))
                            .then(a.cmp(&b))
                    });
                }
                FamilyRoute {
                    grid: pair[f.idx()],
                    fallback,
                }
            });
            routes.push(ServiceRoute {
                members,
                config_order: set.clone(),
                fam,
            });
        }

        Ok(Self {
            pops,
            trig,
            services,
            by_name,
            routes,
            grids,
            override_pops,
            nets,
            countries,
            continents,
            local_pop,
        })
    }

    /// Looks up a service by lower-case ASCII name without trailing dot.
    pub fn service_id(&self, name_lowercase_ascii: &str) -> Option<ServiceId> {
        self.by_name.get(name_lowercase_ascii).copied()
    }

    /// All services with their ids, in configuration order.
    pub fn services(&self) -> impl ExactSizeIterator<Item = (ServiceId, &ServiceInfo)> + '_ {
        self.services
            .iter()
            .enumerate()
            .map(|(i, s)| (ServiceId(u32::try_from(i).unwrap_or(u32::MAX)), s))
    }

    /// A service's metadata. Panics if `id` is not from this router.
    pub fn service(&self, id: ServiceId) -> &ServiceInfo {
        &self.services[id.index()]
    }

    /// A PoP. Panics if `id >= self.pops().len()`.
    pub fn pop(&self, id: PopId) -> &Pop {
        &self.pops[id]
    }

    /// All PoPs; the index is the [`PopId`] (and the `up` slice index).
    pub fn pops(&self) -> &[Pop] {
        &self.pops
    }

    /// Looks up a PoP by exact name (linear; not for the query path).
    pub fn pop_id(&self, name: &str) -> Option<PopId> {
        self.pops.iter().position(|p| p.name == name)
    }

    /// The configured local PoP.
    pub fn local_pop(&self) -> Option<PopId> {
        self.local_pop
    }

    /// Iterates the addresses of `family` of every PoP in `answer`, in order.
    pub fn addresses<'a>(
        &'a self,
        answer: &'a Answer,
        family: Family,
    ) -> impl Iterator<Item = IpAddr> + 'a {
        answer.pops().flat_map(move |p| {
            let pop = &self.pops[p];
            let (v4, v6): (&[Ipv4Addr], &[Ipv6Addr]) = match family {
                Family::V4 => (&pop.ipv4, &[]),
                Family::V6 => (&[], &pop.ipv6),
            };
            v4.iter()
                .map(|&a| IpAddr::V4(a))
                .chain(v6.iter().map(|&a| IpAddr::V6(a)))
        })
    }

    /// Sizes of the precomputed candidate tables.
    pub fn table_stats(&self) -> TableStats {
        TableStats {
            tables: self.grids.len(),
            heap_bytes: self.grids.iter().map(Grid::heap_bytes).sum(),
            max_mean_candidates: self
                .grids
                .iter()
                .map(Grid::mean_candidates)
                .fold(0.0, f64::max),
        }
    }

    fn match_override(&self, client: &Client) -> OverrideMatch {
        let (fam, key, width) = left_aligned(client.addr);
        let max_len = client.prefix.min(width);
        if let Some((i, len)) = self.nets[fam].lookup(key, max_len) {
            return Some((i, Some(len)));
        }
        let loc = client.location.as_ref()?;
        let find = |codes: &[([u8; 2], u32)], c: Option<[u8; 2]>| {
            let c = code(c?);
            codes
                .binary_search_by(|e| e.0.cmp(&c))
                .ok()
                .map(|i| codes[i].1 as usize)
        };
        if let Some(i) = find(&self.countries, loc.country) {
            return Some((i, None));
        }
        find(&self.continents, loc.continent).map(|i| (i, None))
    }

    /// Picks the answer for one query. Never allocates.
    ///
    /// `up[pop]` is the health flag of each PoP (missing entries count as
    /// up). The answer is written into `out` (cleared first); an empty answer
    /// means the service has no PoP with addresses of `family` (NODATA).
    ///
    /// Panics if `service` is not from this router.
    pub fn decide(
        &self,
        service: ServiceId,
        client: Client,
        family: Family,
        up: &[bool],
        out: &mut Answer,
    ) -> Decision {
        let route = &self.routes[service.index()];
        let k = self.services[service.index()].answers;
        let ov = self.match_override(&client);
        let loc = client
            .location
            .filter(|l| valid_coords(l.lat, l.lon))
            .map(|l| (l.lat, l.lon));
        let health = Health { up, all_up: false };
        let mut d = self.select(route, k, family, ov, loc, health, out);
        if out.is_empty() && !self.grids[route.fam[family.idx()].grid].set.is_empty() {
            let health = Health { up, all_up: true };
            d = self.select(route, k, family, ov, loc, health, out);
            d.kind = DecisionKind::FailOpen;
            d.degraded = true;
        }
        d
    }

    #[allow(clippy::too_many_arguments)]
    fn select(
        &self,
        route: &ServiceRoute,
        k: usize,
        family: Family,
        ov: OverrideMatch,
        loc: Option<(f64, f64)>,
        health: Health<'_>,
        out: &mut Answer,
    ) -> Decision {
        out.clear();
        let mut degraded = false;
        let fr = &route.fam[family.idx()];
        if let Some((oi, _)) = ov {
            for &p in &self.override_pops[oi] {
                if out.len() >= k {
                    break;
                }
                if !route.member(p) || !self.pops[usize::from(p)].has(family) {
                    continue;
                }
                if !health.up(p) {
                    degraded = true;
                    continue;
                }
                out.push(p);
            }
        }
        let kind = if out.len() < k {
            match loc {
                Some((lat, lon)) => {
                    self.fill_geo(
                        &self.grids[fr.grid],
                        lat,
                        lon,
                        k,
                        health,
                        out,
                        &mut degraded,
                    );
                    DecisionKind::Geo
                }
                None => {
                    fill_order(&fr.fallback, k, health, out, &mut degraded);
                    if self.local_pop.is_some() {
                        DecisionKind::LocalPopFallback
                    } else {
                        DecisionKind::ConfigOrder
                    }
                }
            }
        } else if loc.is_some() {
            DecisionKind::Geo
        } else if self.local_pop.is_some() {
            DecisionKind::LocalPopFallback
        } else {
            DecisionKind::ConfigOrder
        };
        Decision {
            kind: if ov.is_some() {
                DecisionKind::Override
            } else {
                kind
            },
            override_index: ov.map(|o| o.0),
            override_prefix: ov.and_then(|o| o.1),
            degraded,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn fill_geo(
        &self,
        grid: &Grid,
        lat: f64,
        lon: f64,
        k: usize,
        health: Health<'_>,
        out: &mut Answer,
        degraded: &mut bool,
    ) {
        let ct = Trig::new(lat, lon);
        let mut top = TopK::new(grid.k);
        for &p in grid.candidates(lat, lon) {
            top.insert(hav_key(&ct, &self.trig[usize::from(p)]), p);
        }
        // The first grid.k ranked candidates are exactly the first grid.k
        // of the full ranking (grid invariant).
        for &(_, p) in top.as_slice() {
            if out.len() >= k {
                return;
            }
            if out.contains(p) {
                continue;
            }
            if !health.up(p) {
                *degraded = true;
                continue;
            }
            out.push(p);
        }
        if out.len() >= k || grid.complete() {
            return;
        }
        // Too many down (or override-taken) PoPs among the first grid.k:
        // rank the whole set.
        let need = k - out.len();
        let mut best = TopK::new(need);
        let mut nearest_down: Option<(f64, u16)> = None;
        for &p in &grid.set {
            if out.contains(p) {
                continue;
            }
            let key = hav_key(&ct, &self.trig[usize::from(p)]);
            if health.up(p) {
                best.insert(key, p);
            } else if nearest_down.is_none_or(|d| TopK::less((key, p), d)) {
                nearest_down = Some((key, p));
            }
        }
        let chosen = best.as_slice();
        if let Some(d) = nearest_down {
            match chosen.last() {
                Some(&last) if best.len == need => {
                    if TopK::less(d, last) {
                        *degraded = true;
                    }
                }
                _ => *degraded = true,
            }
        }
        for &(_, p) in chosen {
            out.push(p);
        }
    }

    /// Full ranking with distances and the applied override, for the
    /// `popdns route` command. Allocates; not for the query path.
    pub fn explain(
        &self,
        service: ServiceId,
        client: Client,
        family: Family,
        up: &[bool],
    ) -> Explanation {
        let mut out = Answer::new();
        let decision = self.decide(service, client, family, up, &mut out);
        let answer: Vec<PopId> = out.pops().collect();
        let route = &self.routes[service.index()];
        let ov = self.match_override(&client);
        let reference = client
            .location
            .filter(|l| valid_coords(l.lat, l.lon))
            .map(|l| Trig::new(l.lat, l.lon))
            .or_else(|| self.local_pop.map(|lp| self.trig[lp]));
        let health = Health { up, all_up: false };
        let line = |p: u16, preferred: bool| {
            let id = usize::from(p);
            RankedPop {
                pop: id,
                distance_km: reference.map(|r| key_to_km(hav_key(&r, &self.trig[id]))),
                preferred,
                has_family: self.pops[id].has(family),
                up: health.up(p),
                answer_position: answer.iter().position(|&a| a == id),
            }
        };
        let mut ranking = Vec::with_capacity(route.config_order.len());
        let mut seen = vec![false; self.pops.len()];
        if let Some((oi, _)) = ov {
            for &p in &self.override_pops[oi] {
                if route.member(p) {
                    seen[usize::from(p)] = true;
                    ranking.push(line(p, true));
                }
            }
        }
        let mut rest: Vec<(f64, u16)> = route
            .config_order
            .iter()
            .copied()
            .filter(|&p| !seen[usize::from(p)])
            .map(|p| {
                let key = reference.map_or(0.0, |r| hav_key(&r, &self.trig[usize::from(p)]));
                (key, p)
            })
            .collect();
        if reference.is_some() {
            rest.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        }
        ranking.extend(rest.into_iter().map(|(_, p)| line(p, false)));
        Explanation {
            decision,
            answer,
            ranking,
        }
    }
}

fn fill_order(order: &[u16], k: usize, health: Health<'_>, out: &mut Answer, degraded: &mut bool) {
    for &p in order {
        if out.len() >= k {
            return;
        }
        if out.contains(p) {
            continue;
        }
        if !health.up(p) {
            *degraded = true;
            continue;
        }
        out.push(p);
    }
}
