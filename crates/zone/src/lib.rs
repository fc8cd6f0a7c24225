//! Zone data for popdns.
//!
//! Reads RFC 1035 zone files (hickory-proto parses RDATA; this crate reads
//! the file syntax so every error has a file and line), indexes each zone by
//! lowercase wire name in a hash map that also holds every empty
//! non-terminal, and answers questions into a [`popdns_wire::Writer`].
//!
//! Cost per question is O(number of labels): the closest encloser is found
//! by hashing the name and its ancestors, so NXDOMAIN, NODATA, empty
//! non-terminal, wildcard (RFC 4592) and delegation decisions do not depend on
//! the size of the zone. Zone cuts and wildcard parents are marked at load.
//!
//! No I/O besides reading the zone files, no async runtime.

mod parse;
mod rdata;
mod zone;

use std::fmt;
use std::path::{Path, PathBuf};

use popdns_wire::{
    NameBuf, RRset, Section, Writer, class, label_offsets, lower_wire, name_from_text, rcode, rtype,
};
use rustc_hash::FxHashMap;

pub use parse::{ParsedZone, RawRecord, parse_ttl, read_zone_file, read_zone_str};
use zone::{MAX_ADDITIONAL, MAX_CHAIN, Resolved, Target, any_choice, collect_targets};
pub use zone::{Node, Outcome, Zone, is_subdomain};

/// A problem in a zone file, with its location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ZoneError {
    pub file: PathBuf,
    /// 1-based line, 0 when the problem is about the whole file.
    pub line: usize,
    pub message: String,
}

impl ZoneError {
    pub fn at(file: &Path, line: usize, message: impl Into<String>) -> Self {
        ZoneError {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)
        }
    }
}

/// Every zone served, immutable; found by longest suffix match.
#[derive(Debug, Default)]
pub struct ZoneSet {
    zones: Vec<Zone>,
    by_origin: FxHashMap<Box<[u8]>, u32>,
}

impl ZoneSet {
    /// Build from loaded zones. Two files with the same origin are an error.
    pub fn new(zones: Vec<Zone>) -> Result<ZoneSet, Vec<ZoneError>> {
        let mut by_origin = FxHashMap::default();
        let mut errors = Vec::new();
        for (i, z) in zones.iter().enumerate() {
            if let Some(prev) = by_origin.insert(z.origin.clone(), i as u32) {
                errors.push(ZoneError::at(
                    &z.file,
                    0,
                    format!(
                        "zone {} is also loaded from {}",
                        popdns_wire::name_to_text(&z.origin),
                        zones[prev as usize].file.display()
                    ),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ZoneSet { zones, by_origin })
    }

    /// The zone with the longest origin that contains `qname_lc`.
    pub fn find(&self, qname_lc: &[u8]) -> Option<&Zone> {
        let mut offs = [0u8; 128];
        let n = label_offsets(qname_lc, &mut offs);
        for &o in &offs[..n] {
            if let Some(&z) = self.by_origin.get(&qname_lc[o as usize..]) {
                return Some(&self.zones[z as usize]);
            }
        }
        self.by_origin
            .get(&[0u8][..])
            .map(|&z| &self.zones[z as usize])
    }

    fn index_of(&self, z: &Zone) -> u32 {
        self.by_origin.get(&z.origin).copied().unwrap_or(0)
    }

    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// Answer `qtype` at `qname` (`qname_lc` lowercased) into `w`, following
    /// CNAME chains and DNAME substitutions (RFC 6672) through every zone
    /// served (RFC 1034 §4.3.2), stopping at names outside them and, as NSD
    /// does, at a CNAME or DNAME already in the answer (a loop). Returns
    /// (rcode, AA flag, outcome).
    /// `qname_lc` must be inside `first` (from [`ZoneSet::find`]). `v6`: the
    /// question came over IPv6, so the addresses of NS targets go AAAA first
    /// (as NSD orders them).
    pub fn answer(
        &self,
        first: &Zone,
        qname: &[u8],
        qname_lc: &[u8],
        qtype: u16,
        v6: bool,
        w: &mut Writer<'_>,
    ) -> (u16, bool, Outcome) {
        let mut zone = first;
        let mut owner: &[u8] = qname;
        let mut lc_buf = NameBuf::new();
        lc_buf.set(qname_lc);
        let mut extra: [Target<'_>; MAX_ADDITIONAL] = [(&[], 0, false); MAX_ADDITIONAL];
        // The RRset answering the question (not a CNAME or DNAME on the
        // way): an RRset goes in one section only, so it is not repeated in
        // the additional section.
        let mut answered: *const RRset = std::ptr::null();
        let mut nextra = 0usize;
        let mut zone_idx = self.index_of(first);
        let mut result = (rcode::NOERROR, true, Outcome::Answer);
        // The CNAME and DNAME RRsets written so far (loop detection).
        let mut chain: [*const RRset; MAX_CHAIN] = [std::ptr::null(); MAX_CHAIN];
        // The name a DNAME substitution made; it is the current owner while
        // `in_synth` holds.
        let mut synth = NameBuf::new();
        let mut in_synth = false;
        for step in 0..MAX_CHAIN {
            match zone.resolve(lc_buf.as_bytes(), qtype) {
                Resolved::Referral(cut) => {
                    if let Some(ns) = cut.get(rtype::NS) {
                        w.push_rrset(Section::Authority, &cut.name, ns);
                        collect_targets(ns, zone_idx, &mut extra, &mut nextra);
                    }
                    result = (rcode::NOERROR, step > 0, Outcome::Referral);
                    break;
                }
                Resolved::NxDomain => {
                    let apex = zone.apex();
                    w.push_rrset(Section::Authority, &apex.name, &zone.neg_soa);
                    result = (rcode::NXDOMAIN, true, Outcome::NxDomain);
                    break;
                }
                Resolved::Found(node, wildcard) => {
                    let cur: &[u8] = if in_synth { synth.as_bytes() } else { owner };
                    let out_owner: &[u8] = if wildcard { cur } else { &node.name };
                    if qtype == rtype::ANY {
                        // RFC 8482: one RRset (as NSD does: SOA at the apex,
                        // else A, else AAAA, else the lowest type).
                        match any_choice(node) {
                            Some(set) => {
                                w.push_rrset(Section::Answer, out_owner, set);
                                answered = set;
                                collect_targets(set, zone_idx, &mut extra, &mut nextra);
                            }
                            None => {
                                zone.nodata(w);
                                result.2 = Outcome::NoData;
                            }
                        }
                        break;
                    }
                    // RFC 5155 §7.2.8 (as NSD): NSEC3 records are not data
                    // of the name; without DNSSEC, an NSEC3 query gets NODATA.
                    if qtype == rtype::NSEC3 {
                        zone.nodata(w);
                        result.2 = Outcome::NoData;
                        break;
                    }
                    if let Some(set) = node.get(qtype) {
                        w.push_rrset(Section::Answer, out_owner, set);
                        answered = set;
                        collect_targets(set, zone_idx, &mut extra, &mut nextra);
                        // NSD's default: the zone's NS in authority of a
                        // positive answer, left out when it does not fit, and
                        // not with the large DNSKEY and DS RRsets (NSD's
                        // answer_needs_ns).
                        let apex = zone.apex();
                        if !(qtype == rtype::NS && std::ptr::eq(node, apex))
                            && qtype != rtype::DNSKEY
                            && qtype != rtype::DS
                            && let Some(ns) = apex.get(rtype::NS)
                            && w.push_rrset_optional(Section::Authority, &apex.name, ns)
                        {
                            collect_targets(ns, zone_idx, &mut extra, &mut nextra);
                        }
                        break;
                    }
                    if let Some(cname) = node.get(rtype::CNAME) {
                        if chain[..step].contains(&std::ptr::from_ref(cname)) {
                            break;
                        }
                        chain[step] = cname;
                        w.push_rrset(Section::Answer, out_owner, cname);
                        let Some(target) = cname.rdatas().next() else {
                            break;
                        };
                        let mut t_lc = NameBuf::new();
                        lower_wire(target, &mut t_lc);
                        // A target outside every zone served: the resolver
                        // follows it.
                        let Some(next) = self.find(t_lc.as_bytes()) else {
                            break;
                        };
                        zone = next;
                        zone_idx = self.index_of(next);
                        owner = target;
                        in_synth = false;
                        lc_buf = t_lc;
                        continue;
                    }
                    zone.nodata(w);
                    result.2 = Outcome::NoData;
                    break;
                }
                Resolved::Dname(node) => {
                    let Some(dname) = node.get(rtype::DNAME) else {
                        break;
                    };
                    if chain[..step].contains(&std::ptr::from_ref(dname)) {
                        break;
                    }
                    chain[step] = dname;
                    w.push_rrset(Section::Answer, &node.name, dname);
                    let Some(target) = dname.rdatas().next() else {
                        break;
                    };
                    // RFC 6672 §2.2: the labels above the DNAME's owner, then
                    // its target; lowercase, as NSD writes them.
                    let prefix = &lc_buf.as_bytes()[..lc_buf.as_bytes().len() - node.name.len()];
                    if prefix.len() + target.len() > popdns_wire::MAX_NAME_LEN {
                        result.0 = rcode::YXDOMAIN;
                        break;
                    }
                    let mut t_lc = NameBuf::new();
                    t_lc.set_concat(prefix, target);
                    let cur: &[u8] = if in_synth { synth.as_bytes() } else { owner };
                    w.push_rr(
                        Section::Answer,
                        cur,
                        rtype::CNAME,
                        class::IN,
                        dname.ttl,
                        t_lc.as_bytes(),
                    );
                    if qtype == rtype::CNAME {
                        break;
                    }
                    let mut next_owner = NameBuf::new();
                    next_owner.set(t_lc.as_bytes());
                    t_lc.make_lowercase();
                    let Some(next) = self.find(t_lc.as_bytes()) else {
                        break;
                    };
                    zone = next;
                    zone_idx = self.index_of(next);
                    synth = next_owner;
                    in_synth = true;
                    lc_buf = t_lc;
                }
            }
        }
        // Additional section: addresses of NS/MX/SRV/KX/RT/MB targets inside
        // the zone that holds the record, from a wildcard when the target
        // does not exist (glue for NS targets only); all A
        // RRsets first, then all AAAA; for NS targets asked over IPv6, AAAA
        // first and A second (as NSD).
        for first_pass in [true, false] {
            for &(t, zi, glue) in &extra[..nextra] {
                let ty = if first_pass != (glue && v6) {
                    rtype::A
                } else {
                    rtype::AAAA
                };
                let mut t_lc = NameBuf::new();
                lower_wire(t, &mut t_lc);
                if let Some((node, wildcard)) =
                    self.zones[zi as usize].additional_node(t_lc.as_bytes())
                    && (glue || !node.below_cut())
                    && let Some(set) = node.get(ty)
                    && !std::ptr::eq(set, answered)
                {
                    let owner: &[u8] = if wildcard { t } else { &node.name };
                    w.push_rrset(Section::Additional, owner, set);
                }
            }
        }
        result
    }
}

#[allow(dead_code)]
fn _assert_rrset_send_sync(r: &RRset) -> &(dyn Send + Sync) {
    r
}

/// Load every `*.zone` file of `dir`. The origin is the file's `$ORIGIN`
/// (or SOA owner), else the file name without `.zone`. `extra` names (service
/// names) are added as empty nodes to the zone that contains them.
/// Returns every problem found, each with file and line.
pub fn load_dir(dir: &Path, extra: &[Vec<u8>]) -> Result<ZoneSet, Vec<ZoneError>> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        vec![ZoneError::at(
            dir,
            0,
            format!("cannot read zone directory: {e}"),
        )]
    })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "zone") && p.is_file())
        .collect();
    files.sort();
    let mut zones = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match load_file(&f, extra) {
            Ok(z) => zones.push(z),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    ZoneSet::new(zones)
}

/// Load one zone file (see [`load_dir`]).
pub fn load_file(path: &Path, extra: &[Vec<u8>]) -> Result<Zone, Vec<ZoneError>> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    let default_origin = name_from_text(&stem).ok();
    let parsed = read_zone_file(path, default_origin.as_deref())?;
    let extra: Vec<&[u8]> = extra.iter().map(Vec::as_slice).collect();
    Zone::build(&parsed.origin, parsed.records, path.to_path_buf(), &extra)
}
