//! One zone: the name index and the authoritative answer logic.

use std::path::PathBuf;

use popdns_wire::{
    NameBuf, RRset, RRsetBuilder, Section, Writer, label_offsets, lower_wire, rtype,
};
use rustc_hash::FxHashMap;

use crate::ZoneError;
use crate::parse::RawRecord;

const NONE: u32 = u32::MAX;
/// Longest CNAME chain followed inside a zone.
pub(crate) const MAX_CHAIN: usize = 12;
/// Most names whose addresses are added to the additional section.
pub(crate) const MAX_ADDITIONAL: usize = 16;

/// A name in the zone: its RRsets (none for an empty non-terminal).
#[derive(Debug)]
pub struct Node {
    /// Owner name in wire form, case as in the zone file.
    pub name: Box<[u8]>,
    pub rrsets: Box<[RRset]>,
    /// The topmost zone cut at or above this node (not the apex), if any.
    cut: u32,
    /// A `*` child exists.
    wildcard: bool,
    /// Holds a DNAME (RFC 6672): names below it are redirected.
    dname: bool,
}

impl Node {
    /// The RRset of type `t`.
    pub fn get(&self, t: u16) -> Option<&RRset> {
        self.rrsets.iter().find(|r| r.rtype == t)
    }

    /// At or below a zone cut: delegation data or glue, not the zone's own.
    pub fn below_cut(&self) -> bool {
        self.cut != NONE
    }
}

/// Hash index of node names: node ids only, hashed on the lowercase name
/// and compared case-insensitively with the node's own name, so a name is
/// stored once.
#[derive(Default)]
struct Index {
    table: hashbrown::HashTable<u32>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Index({} names)", self.table.len())
    }
}

/// Hash of a lowercase wire name.
#[inline]
fn name_hash(lc: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(lc);
    h.finish()
}

/// Hash of a wire name in any case (lowercased on the way).
fn name_hash_any(name: &[u8]) -> u64 {
    let mut b = NameBuf::new();
    lower_wire(name, &mut b);
    name_hash(b.as_bytes())
}

impl Index {
    fn get(&self, names: &[Box<[u8]>], lc: &[u8]) -> Option<u32> {
        self.table
            .find(name_hash(lc), |&i| {
                names[i as usize].eq_ignore_ascii_case(lc)
            })
            .copied()
    }

    #[inline]
    fn get_nodes(&self, nodes: &[Node], lc: &[u8]) -> Option<u32> {
        self.table
            .find(name_hash(lc), |&i| {
                nodes[i as usize].name.eq_ignore_ascii_case(lc)
            })
            .copied()
    }

    fn insert(&mut self, names: &[Box<[u8]>], lc: &[u8], id: u32) {
        self.table
            .insert_unique(name_hash(lc), id, |&i| name_hash_any(&names[i as usize]));
    }
}

/// An authoritative zone, immutable once built.
#[derive(Debug)]
pub struct Zone {
    /// Origin in lowercase wire form.
    pub origin: Box<[u8]>,
    origin_labels: usize,
    index: Index,
    store: Vec<Node>,
    apex: u32,
    pub(crate) neg_soa: RRset,
    pub serial: u32,
    pub file: PathBuf,
    pub records: usize,
    /// Hash of the zone's content (to warn when content changes on reload
    /// while the SOA serial does not).
    pub digest: u64,
}

/// What an answer was, for metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Answer,
    NoData,
    NxDomain,
    Referral,
}

pub(crate) enum Resolved<'z> {
    Found(&'z Node, bool),
    Referral(&'z Node),
    /// The name is below this node's DNAME: substitute (RFC 6672 §3.2).
    Dname(&'z Node),
    NxDomain,
}

fn count_labels(wire: &[u8]) -> usize {
    let mut o = [0u8; 128];
    label_offsets(wire, &mut o)
}

/// Is `name` (lowercase wire) equal to or below `origin` (lowercase wire)?
pub fn is_subdomain(name: &[u8], origin: &[u8]) -> bool {
    if origin == [0] {
        return true;
    }
    if name.len() < origin.len() || !name.ends_with(origin) {
        return false;
    }
    let start = name.len() - origin.len();
    // `start` must be a label boundary of `name`.
    let mut off = 0usize;
    while off < start {
        off += 1 + name[off] as usize;
    }
    off == start
}

fn lower(w: &[u8]) -> Vec<u8> {
    let mut v = w.to_vec();
    v.make_ascii_lowercase();
    v
}

impl Zone {
    /// Build a zone from records. `extra` names (service names) are added as
    /// empty nodes so that other types at them get NODATA.
    pub fn build(
        origin: &[u8],
        records: Vec<RawRecord>,
        file: PathBuf,
        extra: &[&[u8]],
    ) -> Result<Zone, Vec<ZoneError>> {
        let origin_lc = lower(origin);
        let mut errors = Vec::new();
        let mut index = Index::default();
        let mut names: Vec<Box<[u8]>> = Vec::with_capacity(records.len());
        let mut sets: Vec<Vec<RRsetBuilder>> = Vec::with_capacity(records.len());
        let mut soa_count = 0;
        let nrecords = records.len();
        // Order-independent content hash (sum of per-record hashes).
        let mut digest = 0u64;
        let mut cname_line: FxHashMap<u32, usize> = FxHashMap::default();
        // Where each DNAME is, to report what conflicts with it.
        let mut dname_at: FxHashMap<u32, (std::sync::Arc<std::path::Path>, usize)> =
            FxHashMap::default();
        let mut lc = NameBuf::new();
        for r in records {
            lower_wire(&r.owner, &mut lc);
            let lcb = lc.as_bytes();
            {
                use std::hash::{Hash, Hasher};
                let mut h = rustc_hash::FxHasher::default();
                (lcb, r.rtype, r.ttl, r.rdata.as_slice()).hash(&mut h);
                digest = digest.wrapping_add(h.finish());
            }
            if !is_subdomain(lcb, &origin_lc) {
                errors.push(ZoneError::at(
                    &r.file,
                    r.line,
                    format!(
                        "{} is outside the zone {}",
                        popdns_wire::name_to_text(&r.owner),
                        popdns_wire::name_to_text(origin)
                    ),
                ));
                continue;
            }
            // NSEC3 records only serve DNSSEC denial proofs, which popdns does
            // not give: they are not data of their owner (RFC 5155 §7.2.8),
            // and a name holding only NSEC3 does not exist (as in NSD).
            if r.rtype == rtype::NSEC3 {
                continue;
            }
            if r.rtype == rtype::SOA {
                if lcb != origin_lc.as_slice() {
                    errors.push(ZoneError::at(
                        &r.file,
                        r.line,
                        "SOA record not at the zone origin",
                    ));
                    continue;
                }
                soa_count += 1;
                if soa_count > 1 {
                    errors.push(ZoneError::at(&r.file, r.line, "more than one SOA record"));
                    continue;
                }
            }
            let id = match index.get(&names, lcb) {
                Some(id) => id,
                None => {
                    let id = names.len() as u32;
                    names.push(r.owner.into_boxed_slice());
                    sets.push(Vec::with_capacity(1));
                    index.insert(&names, lcb, id);
                    id
                }
            };
            if r.rtype == rtype::CNAME {
                cname_line.entry(id).or_insert(r.line);
            }
            if r.rtype == rtype::DNAME {
                dname_at
                    .entry(id)
                    .or_insert_with(|| (std::sync::Arc::clone(&r.file), r.line));
            }
            let node_sets = &mut sets[id as usize];
            match node_sets.iter_mut().find(|b| b.rtype() == r.rtype) {
                Some(b) => {
                    b.merge_ttl(r.ttl);
                    b.push(&r.rdata);
                }
                None => {
                    let mut b = RRsetBuilder::new(r.rtype, 1, r.ttl);
                    b.push(&r.rdata);
                    node_sets.push(b);
                }
            }
        }
        // CNAME and other data (RFC 1034 §3.6.2, RFC 2181 §10.1).
        // Signatures and NSEC records may sit beside a CNAME (RFC 4035 §2.5).
        for (&id, &line) in &cname_line {
            let others = sets[id as usize]
                .iter()
                .filter(|b| !matches!(b.rtype(), rtype::RRSIG | rtype::NSEC))
                .count();
            if others > 1 {
                errors.push(ZoneError::at(
                    &file,
                    line,
                    format!(
                        "{} has a CNAME and other data",
                        popdns_wire::name_to_text(&names[id as usize])
                    ),
                ));
            }
        }
        let Some(apex) = index.get(&names, &origin_lc) else {
            errors.push(ZoneError::at(
                &file,
                0,
                "the zone has no SOA record at its origin",
            ));
            return Err(errors);
        };
        if soa_count == 0 {
            errors.push(ZoneError::at(
                &file,
                0,
                "the zone has no SOA record at its origin",
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        // Extra (service) names.
        for e in extra {
            let elc = lower(e);
            if is_subdomain(&elc, &origin_lc) && index.get(&names, &elc).is_none() {
                let id = names.len() as u32;
                names.push((*e).into());
                sets.push(Vec::new());
                index.insert(&names, &elc, id);
            }
        }
        // Empty non-terminals: every ancestor up to the origin exists.
        let origin_len = origin_lc.len();
        let count = names.len();
        for i in 0..count {
            lower_wire(&names[i], &mut lc);
            let n = lc.as_bytes().len();
            let mut off = 0usize;
            while n - off > origin_len {
                off += 1 + lc.as_bytes()[off] as usize;
                let anc = &lc.as_bytes()[off..];
                if index.get(&names, anc).is_some() {
                    break;
                }
                let id = names.len() as u32;
                let name: Box<[u8]> = names[i][off..].into();
                names.push(name);
                sets.push(Vec::new());
                index.insert(&names, anc, id);
            }
        }
        // Nodes.
        let mut store: Vec<Node> = names
            .into_iter()
            .zip(sets)
            .map(|(name, s)| {
                let mut rrsets: Vec<RRset> = s.into_iter().map(RRsetBuilder::build).collect();
                rrsets.sort_by_key(|r| r.rtype);
                Node {
                    dname: rrsets.iter().any(|r| r.rtype == rtype::DNAME),
                    name,
                    rrsets: rrsets.into_boxed_slice(),
                    cut: NONE,
                    wildcard: false,
                }
            })
            .collect();
        // Zone cuts and wildcards.
        for id in 0..store.len() {
            lower_wire(&store[id].name, &mut lc);
            let k = lc.as_bytes();
            if id as u32 != apex
                && k.first() == Some(&1)
                && k.get(1) == Some(&b'*')
                && let Some(p) = index.get_nodes(&store, &k[2..])
            {
                store[p as usize].wildcard = true;
            }
            // Topmost cut at or above this node, below the apex; and no
            // data below a DNAME (RFC 6672 §2.3, as NSD checks).
            let has_data = !store[id].rrsets.is_empty();
            let mut off = 0usize;
            let mut cut = NONE;
            let mut dname = (id as u32 != apex && store[apex as usize].dname).then_some(apex);
            while k.len() - off > origin_len {
                if let Some(a) = index.get_nodes(&store, &k[off..]) {
                    let anc = &store[a as usize];
                    if anc.get(rtype::NS).is_some() {
                        cut = a;
                    }
                    if off > 0 && anc.dname {
                        dname = Some(a);
                    }
                }
                off += 1 + k[off] as usize;
            }
            store[id].cut = cut;
            if has_data
                && let Some(d) = dname
                && let Some((f, line)) = dname_at.get(&d)
            {
                errors.push(ZoneError::at(
                    f,
                    *line,
                    format!(
                        "{} has a DNAME, so {} cannot have data (RFC 6672 §2.3)",
                        popdns_wire::name_to_text(&store[d as usize].name),
                        popdns_wire::name_to_text(&store[id].name)
                    ),
                ));
            }
        }
        // A DNAME is a single record (RFC 6672 §2.4).
        for (&id, (f, line)) in &dname_at {
            if store[id as usize]
                .get(rtype::DNAME)
                .is_some_and(|s| s.len() > 1)
            {
                errors.push(ZoneError::at(
                    f,
                    *line,
                    format!(
                        "{} has more than one DNAME record",
                        popdns_wire::name_to_text(&store[id as usize].name)
                    ),
                ));
            }
        }
        if !errors.is_empty() {
            errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
            return Err(errors);
        }
        let soa = store[apex as usize]
            .get(rtype::SOA)
            .cloned()
            .ok_or_else(|| vec![ZoneError::at(&file, 0, "the zone has no SOA record")])?;
        let soa_rdata = soa.rdatas().next().unwrap_or(&[]);
        let (serial, minimum) = if soa_rdata.len() >= 20 {
            let t = &soa_rdata[soa_rdata.len() - 20..];
            (
                u32::from_be_bytes([t[0], t[1], t[2], t[3]]),
                u32::from_be_bytes([t[16], t[17], t[18], t[19]]),
            )
        } else {
            (0, 0)
        };
        // RFC 2308 §5: negative TTL = min(SOA TTL, SOA MINIMUM).
        let neg_soa = soa.with_ttl(soa.ttl.min(minimum));
        store.shrink_to_fit();
        Ok(Zone {
            origin_labels: count_labels(&origin_lc),
            origin: origin_lc.into_boxed_slice(),
            index,
            store,
            apex,
            neg_soa,
            serial,
            file,
            records: nrecords,
            digest,
        })
    }

    /// The apex node.
    pub fn apex(&self) -> &Node {
        &self.store[self.apex as usize]
    }

    /// Number of names (including empty non-terminals).
    pub fn names(&self) -> usize {
        self.store.len()
    }

    /// The node at exactly `lc` (lowercase wire), if any.
    pub fn node(&self, lc: &[u8]) -> Option<&Node> {
        self.index
            .get_nodes(&self.store, lc)
            .map(|i| &self.store[i as usize])
    }

    /// Where the additional section finds the addresses of `lc` (lowercase):
    /// the name's own node, else, when the name does not exist, the wildcard
    /// that covers it (`true`), as NSD synthesises them.
    pub(crate) fn additional_node(&self, lc: &[u8]) -> Option<(&Node, bool)> {
        if let Some(n) = self.node(lc) {
            return Some((n, false));
        }
        if !is_subdomain(lc, &self.origin) {
            return None;
        }
        match self.resolve(lc, rtype::A) {
            Resolved::Found(n, true) => Some((n, true)),
            _ => None,
        }
    }

    /// Every node (for inspection and transfers).
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.store.iter()
    }

    pub(crate) fn resolve(&self, lc: &[u8], qtype: u16) -> Resolved<'_> {
        let mut offs = [0u8; 128];
        let n = label_offsets(lc, &mut offs);
        let below = n.saturating_sub(self.origin_labels);
        // Closest encloser: the longest existing ancestor-or-self.
        let mut found: Option<(usize, u32)> = None;
        for (i, &o) in offs[..=below.min(n)].iter().enumerate() {
            let key = if i == n {
                &lc[lc.len() - 1..]
            } else {
                &lc[o as usize..]
            };
            if let Some(id) = self.index.get_nodes(&self.store, key) {
                found = Some((i, id));
                break;
            }
        }
        let Some((i, id)) = found else {
            return Resolved::NxDomain;
        };
        let node = &self.store[id as usize];
        if node.cut != NONE {
            let at_cut = i == 0 && node.cut == id;
            // DS at a cut is answered by the parent side (RFC 4035 §3.1.4.1).
            if !(at_cut && qtype == rtype::DS) {
                return Resolved::Referral(&self.store[node.cut as usize]);
            }
        }
        if i == 0 {
            return Resolved::Found(node, false);
        }
        // Nothing exists below a DNAME (checked at load), so the closest
        // encloser is the DNAME's owner.
        if node.dname {
            return Resolved::Dname(node);
        }
        if node.wildcard {
            let mut key = [0u8; 257];
            let len = 2 + (lc.len() - offs[i] as usize);
            key[0] = 1;
            key[1] = b'*';
            key[2..len].copy_from_slice(&lc[offs[i] as usize..]);
            if let Some(w) = self.index.get_nodes(&self.store, &key[..len]) {
                return Resolved::Found(&self.store[w as usize], true);
            }
        }
        Resolved::NxDomain
    }

    pub(crate) fn nodata(&self, w: &mut Writer<'_>) {
        let apex = self.apex();
        w.push_rrset(Section::Authority, &apex.name, &self.neg_soa);
    }
}

pub(crate) fn any_choice(node: &Node) -> Option<&RRset> {
    [rtype::SOA, rtype::A, rtype::AAAA]
        .iter()
        .find_map(|&t| node.get(t))
        .or_else(|| node.rrsets.first())
}

/// A name whose addresses go in the additional section: the name, the zone
/// that holds the record naming it, and whether an address below a zone cut
/// (glue) may be given: only for NS targets, as NSD does.
pub(crate) type Target<'a> = (&'a [u8], u32, bool);

pub(crate) fn collect_targets<'a>(
    set: &'a RRset,
    zone: u32,
    out: &mut [Target<'a>; MAX_ADDITIONAL],
    n: &mut usize,
) {
    let (skip, glue) = match set.rtype {
        rtype::NS => (0, true),
        rtype::MB => (0, false),
        rtype::MX | rtype::KX | rtype::RT => (2, false),
        rtype::SRV => (6, false),
        _ => return,
    };
    for rd in set.rdatas() {
        if *n == MAX_ADDITIONAL {
            return;
        }
        if let Some(t) = rd.get(skip..) {
            if out[..*n].iter().any(|x| x.0.eq_ignore_ascii_case(t)) {
                continue;
            }
            out[*n] = (t, zone, glue);
            *n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomain() {
        assert!(is_subdomain(b"\x01a\x07example\x00", b"\x07example\x00"));
        assert!(is_subdomain(b"\x07example\x00", b"\x07example\x00"));
        assert!(!is_subdomain(b"\x08xexample\x00", b"\x07example\x00"));
        assert!(!is_subdomain(b"\x03com\x00", b"\x07example\x00"));
        assert!(is_subdomain(b"\x03com\x00", b"\x00"));
    }
}
