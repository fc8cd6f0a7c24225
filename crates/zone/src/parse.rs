//! RFC 1035 §5 zone file reader.
//!
//! The master-file syntax (entries, parentheses, quotes, comments, owner
//! inheritance, `$ORIGIN`, `$TTL`, `$INCLUDE`, TTL and class defaults) is
//! read here so that every error carries its file and line. RDATA text is
//! handed to hickory-proto's parser in batches (with `$ORIGIN` set, so
//! relative names in RDATA resolve); when a batch fails, its entries are
//! re-parsed one by one to find the failing line. RFC 3597 generic RDATA
//! (`TYPEnnn`, `\# len hex`) is decoded here.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

use hickory_proto::rr::{RData, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use hickory_proto::serialize::txt::Parser;
use popdns_wire::{name_from_text, name_to_text};

use crate::ZoneError;

/// One record read from a zone file, RDATA in uncompressed wire form.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub owner: Vec<u8>,
    pub rtype: u16,
    pub ttl: u32,
    pub rdata: Vec<u8>,
    /// Shared by every record of a file (no allocation per record).
    pub file: Arc<Path>,
    pub line: usize,
}

/// The result of reading one zone file (and its includes).
pub struct ParsedZone {
    pub origin: Vec<u8>,
    pub records: Vec<RawRecord>,
}

pub(crate) struct Tok {
    pub(crate) text: String,
    pub(crate) quoted: bool,
}

struct Entry {
    line: usize,
    blank_owner: bool,
    toks: Vec<Tok>,
}

/// Split a file into logical entries (parentheses join lines).
fn split_entries(text: &str, file: &Path, errors: &mut Vec<ZoneError>) -> Vec<Entry> {
    let b = text.as_bytes();
    let mut entries = Vec::new();
    let mut line = 1usize;
    let mut i = 0usize;
    let mut depth = 0u32;
    let mut cur: Option<Entry> = None;
    let mut at_line_start = true;
    while i < b.len() {
        let c = b[i];
        if at_line_start && depth == 0 {
            if let Some(e) = cur.take()
                && !e.toks.is_empty()
            {
                entries.push(e);
            }
            cur = Some(Entry {
                line,
                blank_owner: c == b' ' || c == b'\t',
                toks: Vec::new(),
            });
            at_line_start = false;
        }
        match c {
            b'\n' => {
                line += 1;
                at_line_start = true;
                i += 1;
            }
            b'\r' | b' ' | b'\t' => i += 1,
            b';' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                if depth == 0 {
                    errors.push(ZoneError::at(file, line, "unbalanced ')'"));
                } else {
                    depth -= 1;
                }
                i += 1;
            }
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    if i < b.len() && b[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
                if i >= b.len() {
                    errors.push(ZoneError::at(file, line, "unterminated quoted string"));
                }
                i = (i + 1).min(b.len());
                let text = String::from_utf8_lossy(&b[start..i]).into_owned();
                if let Some(e) = cur.as_mut() {
                    e.toks.push(Tok { text, quoted: true });
                }
            }
            _ => {
                let start = i;
                while i < b.len() {
                    match b[i] {
                        b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b';' | b'"' => break,
                        b'\\' => i += 2,
                        _ => i += 1,
                    }
                }
                i = i.min(b.len());
                let text = String::from_utf8_lossy(&b[start..i]).into_owned();
                if let Some(e) = cur.as_mut() {
                    e.toks.push(Tok {
                        text,
                        quoted: false,
                    });
                }
            }
        }
    }
    if depth != 0 {
        let l = cur.as_ref().map_or(line, |e| e.line);
        errors.push(ZoneError::at(file, l, "unbalanced '(' at end of file"));
    }
    if let Some(e) = cur.take()
        && !e.toks.is_empty()
    {
        entries.push(e);
    }
    entries
}

/// Parse a TTL: seconds, or BIND units (1w2d3h4m5s).
pub fn parse_ttl(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|c| c.is_ascii_digit()) {
        return s.parse::<u64>().ok().and_then(|v| u32::try_from(v).ok());
    }
    let mut total: u64 = 0;
    let mut num: Option<u64> = None;
    for c in s.bytes() {
        if c.is_ascii_digit() {
            num = Some(num.unwrap_or(0).checked_mul(10)? + (c - b'0') as u64);
        } else {
            let mult = match c.to_ascii_lowercase() {
                b'w' => 604_800,
                b'd' => 86_400,
                b'h' => 3_600,
                b'm' => 60,
                b's' => 1,
                _ => return None,
            };
            total = total.checked_add(num.take()?.checked_mul(mult)?)?;
        }
    }
    if let Some(n) = num {
        total = total.checked_add(n)?;
    }
    u32::try_from(total).ok()
}

fn parse_class(s: &str) -> Option<u16> {
    let u = s.to_ascii_uppercase();
    match u.as_str() {
        "IN" => Some(1),
        "CH" | "CHAOS" => Some(3),
        "HS" => Some(4),
        _ => u.strip_prefix("CLASS").and_then(|n| n.parse().ok()),
    }
}

/// Resolve a possibly relative owner/origin name against `origin`.
pub(crate) fn resolve_name(text: &str, origin: Option<&[u8]>) -> Result<Vec<u8>, String> {
    if text == "@" {
        return origin
            .map(<[u8]>::to_vec)
            .ok_or_else(|| "'@' used but no $ORIGIN is known".to_string());
    }
    let absolute = text.ends_with('.') && !text.ends_with("\\.");
    let mut w = name_from_text(text)?;
    if !absolute {
        let o = origin.ok_or_else(|| format!("relative name {text:?} but no $ORIGIN is known"))?;
        w.pop();
        w.extend_from_slice(o);
        if w.len() > popdns_wire::MAX_NAME_LEN {
            return Err(format!("name {text:?} is longer than 255 octets"));
        }
    }
    Ok(w)
}

/// A record whose RDATA still has to go through hickory's parser.
struct Pending {
    owner: Vec<u8>,
    rtype_text: String,
    ttl: u32,
    rdata_text: String,
    origin: Vec<u8>,
    file: Arc<Path>,
    line: usize,
}

struct Reader<'e> {
    origin: Option<Vec<u8>>,
    default_ttl: Option<u32>,
    last_ttl: Option<u32>,
    last_owner: Option<Vec<u8>>,
    records: Vec<RawRecord>,
    pending: Vec<Pending>,
    errors: &'e mut Vec<ZoneError>,
    depth: u32,
}

const BATCH: usize = 2048;

/// Read zone text as if it came from `path` (relative `$INCLUDE`s resolve
/// against its folder). Used by fuzzing and tests.
pub fn read_zone_str(
    text: &str,
    path: &Path,
    origin: Option<&[u8]>,
) -> Result<ParsedZone, Vec<ZoneError>> {
    read_zone(path, origin, Some(text))
}

/// Read the zone file at `path`. `origin` is the default origin (from the
/// file name) used until a `$ORIGIN` line.
pub fn read_zone_file(path: &Path, origin: Option<&[u8]>) -> Result<ParsedZone, Vec<ZoneError>> {
    read_zone(path, origin, None)
}

fn read_zone(
    path: &Path,
    origin: Option<&[u8]>,
    text: Option<&str>,
) -> Result<ParsedZone, Vec<ZoneError>> {
    let mut errors = Vec::new();
    let mut r = Reader {
        origin: origin.map(<[u8]>::to_vec),
        default_ttl: None,
        last_ttl: None,
        last_owner: None,
        records: Vec::new(),
        pending: Vec::new(),
        errors: &mut errors,
        depth: 0,
    };
    match text {
        Some(t) => r.read_text(path, t),
        None => r.read_file(path),
    }
    r.flush();
    let first_origin = r.origin.clone();
    let records = std::mem::take(&mut r.records);
    if !errors.is_empty() {
        return Err(errors);
    }
    // The zone's origin is the owner of its SOA when present, else the
    // origin in force at the start.
    let origin = records
        .iter()
        .find(|rec| rec.rtype == popdns_wire::rtype::SOA)
        .map(|rec| rec.owner.clone())
        .or(first_origin)
        .unwrap_or_else(|| vec![0]);
    Ok(ParsedZone { origin, records })
}

impl Reader<'_> {
    fn err(&mut self, file: &Path, line: usize, msg: impl Into<String>) {
        self.errors.push(ZoneError::at(file, line, msg));
    }

    fn read_file(&mut self, path: &Path) {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                self.err(path, 0, format!("cannot read file: {e}"));
                return;
            }
        };
        self.read_text(path, &text);
    }

    fn read_text(&mut self, path: &Path, text: &str) {
        let entries = split_entries(text, path, self.errors);
        let file: Arc<Path> = Arc::from(path);
        for e in entries {
            self.entry(&file, e);
        }
    }

    fn entry(&mut self, file: &Arc<Path>, e: Entry) {
        let line = e.line;
        let first = &e.toks[0].text;
        if !e.blank_owner && first.starts_with('$') {
            let directive = first.to_ascii_uppercase();
            match directive.as_str() {
                "$ORIGIN" => match e.toks.get(1) {
                    Some(t) => match resolve_name(&t.text, self.origin.as_deref()) {
                        Ok(o) => self.origin = Some(o),
                        Err(m) => self.err(file, line, m),
                    },
                    None => self.err(file, line, "$ORIGIN needs a name"),
                },
                "$TTL" => match e.toks.get(1).and_then(|t| parse_ttl(&t.text)) {
                    Some(t) => self.default_ttl = Some(t),
                    None => self.err(file, line, "$TTL needs a valid TTL"),
                },
                "$INCLUDE" => {
                    let Some(t) = e.toks.get(1) else {
                        self.err(file, line, "$INCLUDE needs a file name");
                        return;
                    };
                    if self.depth >= 16 {
                        self.err(file, line, "$INCLUDE nested too deeply");
                        return;
                    }
                    let p = Path::new(t.text.trim_matches('"'));
                    let p = if p.is_absolute() {
                        p.to_path_buf()
                    } else {
                        file.parent().unwrap_or(Path::new(".")).join(p)
                    };
                    let saved_origin = self.origin.clone();
                    if let Some(o) = e.toks.get(2) {
                        match resolve_name(&o.text, self.origin.as_deref()) {
                            Ok(o) => self.origin = Some(o),
                            Err(m) => {
                                self.err(file, line, m);
                                return;
                            }
                        }
                    }
                    self.depth += 1;
                    self.read_file(&p);
                    self.depth -= 1;
                    // RFC 1035 §5.1: the origin reverts after the include.
                    self.origin = saved_origin;
                }
                _ => self.err(file, line, format!("unsupported directive {first}")),
            }
            return;
        }
        // Owner.
        let mut idx = 0;
        let owner = if e.blank_owner {
            match &self.last_owner {
                Some(o) => o.clone(),
                None => {
                    self.err(
                        file,
                        line,
                        "record without owner name and no previous owner",
                    );
                    return;
                }
            }
        } else {
            idx = 1;
            match resolve_name(first, self.origin.as_deref()) {
                Ok(o) => o,
                Err(m) => {
                    self.err(file, line, m);
                    return;
                }
            }
        };
        self.last_owner = Some(owner.clone());
        // [ttl] [class] type, ttl and class in either order.
        let mut ttl: Option<u32> = None;
        let mut class: Option<u16> = None;
        let mut rtype_text: Option<String> = None;
        while idx < e.toks.len() {
            let t = &e.toks[idx].text;
            idx += 1;
            if ttl.is_none() && t.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                match parse_ttl(t) {
                    Some(v) => ttl = Some(v),
                    None => {
                        self.err(file, line, format!("bad TTL {t:?}"));
                        return;
                    }
                }
            } else if class.is_none()
                && let Some(c) = parse_class(t)
            {
                class = Some(c);
            } else {
                rtype_text = Some(t.to_ascii_uppercase());
                break;
            }
        }
        let Some(rtype_text) = rtype_text else {
            self.err(file, line, "missing record type");
            return;
        };
        if let Some(c) = class
            && c != 1
        {
            self.err(file, line, "only class IN is supported in zone files");
            return;
        }
        let ttl = match ttl {
            Some(t) => {
                self.last_ttl = Some(t);
                t
            }
            None => match self.default_ttl.or(self.last_ttl) {
                Some(t) => t,
                None if rtype_text == "SOA" => {
                    // RFC 1035: without $TTL, the SOA minimum (last field).
                    let v = e
                        .toks
                        .last()
                        .and_then(|t| parse_ttl(&t.text))
                        .unwrap_or(3600);
                    self.last_ttl = Some(v);
                    v
                }
                None => 3600,
            },
        };
        let rd_toks = &e.toks[idx..];
        let origin = self.origin.clone().unwrap_or_else(|| vec![0]);
        // RFC 3597 generic forms.
        let generic_type = rtype_text
            .strip_prefix("TYPE")
            .and_then(|n| n.parse::<u16>().ok());
        let rtype_num = generic_type.or_else(|| crate::rdata::type_code(&rtype_text));
        let Some(rtype_num) = rtype_num else {
            self.err(file, line, format!("unknown record type {rtype_text}"));
            return;
        };
        if let Err(m) = check_type_allowed(rtype_num) {
            self.err(file, line, m);
            return;
        }
        let generic = rd_toks
            .first()
            .is_some_and(|t| !t.quoted && t.text == "\\#");
        if !generic
            && generic_type.is_some()
            && matches!(RecordType::from(rtype_num), RecordType::Unknown(_))
        {
            self.err(file, line, format!("{rtype_text} needs RFC 3597 \\# RDATA"));
            return;
        }
        // RFC 3597 generic RDATA, and the types hickory's parser does not
        // read (DNSSEC, LOC, RP, ...); then the common types, encoded here;
        // the rest (and anything the fast path does not accept) goes
        // through hickory's parser.
        let encoded = if generic {
            Some(parse_generic(rd_toks))
        } else if crate::rdata::owns(rtype_num) {
            Some(
                crate::rdata::encode(rtype_num, rd_toks, self.origin.as_deref())
                    .map_err(|m| format!("{rtype_text}: {m}")),
            )
        } else {
            fast_rdata(rtype_num, rd_toks, self.origin.as_deref()).map(Ok)
        };
        if let Some(encoded) = encoded {
            match encoded {
                Ok(rdata) => self.records.push(RawRecord {
                    owner,
                    rtype: rtype_num,
                    ttl,
                    rdata,
                    file: Arc::clone(file),
                    line,
                }),
                Err(m) => self.err(file, line, m),
            }
            return;
        }
        let rdata_text = rd_toks
            .iter()
            .map(|t| t.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        self.pending.push(Pending {
            owner,
            rtype_text: format!("{}", RecordType::from(rtype_num)),
            ttl,
            rdata_text,
            origin,
            file: Arc::clone(file),
            line,
        });
        if self.pending.len() >= BATCH {
            self.flush();
        }
    }

    /// Parse pending RDATA with hickory, in one batch; on failure, entry by
    /// entry to report each failing line.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        match parse_batch(&pending) {
            Ok(recs) => self.records.extend(recs),
            Err(_) => {
                for p in &pending {
                    match parse_batch(std::slice::from_ref(p)) {
                        Ok(recs) => self.records.extend(recs),
                        Err(m) => self.err(&p.file, p.line, m),
                    }
                }
            }
        }
    }
}

/// Encode the RDATA of A, AAAA, NS, CNAME, DNAME, PTR, MX, SRV, TXT and SOA
/// directly. `None`: not one of those, or not in the simple form this
/// accepts (the caller then asks hickory, which also gives the error).
fn fast_rdata(t: u16, toks: &[Tok], origin: Option<&[u8]>) -> Option<Vec<u8>> {
    use popdns_wire::rtype;
    let name = |tok: &Tok| -> Option<Vec<u8>> {
        if tok.quoted {
            return None;
        }
        resolve_name(&tok.text, origin).ok()
    };
    let num = |tok: &Tok| -> Option<u32> {
        if tok.quoted {
            return None;
        }
        tok.text.parse::<u32>().ok()
    };
    match (t, toks) {
        (rtype::A, [a]) if !a.quoted => {
            a.text.parse::<Ipv4Addr>().ok().map(|a| a.octets().to_vec())
        }
        (rtype::AAAA, [a]) if !a.quoted => {
            a.text.parse::<Ipv6Addr>().ok().map(|a| a.octets().to_vec())
        }
        (rtype::NS | rtype::CNAME | rtype::PTR | rtype::DNAME, [n]) => name(n),
        (rtype::MX, [p, n]) => {
            let p = u16::try_from(num(p)?).ok()?;
            let mut v = p.to_be_bytes().to_vec();
            v.extend_from_slice(&name(n)?);
            Some(v)
        }
        (rtype::SRV, [p, w, port, n]) => {
            let mut v = Vec::with_capacity(32);
            for x in [p, w, port] {
                v.extend_from_slice(&u16::try_from(num(x)?).ok()?.to_be_bytes());
            }
            v.extend_from_slice(&name(n)?);
            Some(v)
        }
        (rtype::SOA, [m, r, serial, rest @ ..]) if rest.len() == 4 => {
            let mut v = name(m)?;
            v.extend_from_slice(&name(r)?);
            v.extend_from_slice(&num(serial)?.to_be_bytes());
            for x in rest {
                if x.quoted {
                    return None;
                }
                v.extend_from_slice(&parse_ttl(&x.text)?.to_be_bytes());
            }
            Some(v)
        }
        (rtype::TXT, toks) if !toks.is_empty() => {
            let mut v = Vec::new();
            for tok in toks {
                let raw = if tok.quoted {
                    tok.text.strip_prefix('"')?.strip_suffix('"')?
                } else {
                    tok.text.as_str()
                };
                let s = unescape(raw)?;
                if s.len() > 255 {
                    return None;
                }
                v.push(s.len() as u8);
                v.extend_from_slice(&s);
            }
            Some(v)
        }
        _ => None,
    }
}

/// RFC 1035 §5.1 escapes: `\X` and `\DDD`.
pub(crate) fn unescape(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let d = b.get(i + 1..i + 4);
            if let Some(d) = d.filter(|d| d.iter().all(u8::is_ascii_digit)) {
                let v = u32::from(d[0] - b'0') * 100
                    + u32::from(d[1] - b'0') * 10
                    + u32::from(d[2] - b'0');
                out.push(u8::try_from(v).ok()?);
                i += 4;
            } else {
                out.push(*b.get(i + 1)?);
                i += 2;
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Types refused at load time, with the reason.
fn check_type_allowed(t: u16) -> Result<(), String> {
    use popdns_wire::rtype;
    match t {
        rtype::OPT | rtype::AXFR | rtype::IXFR | rtype::MAILA | rtype::MAILB | rtype::ANY => {
            Err(format!("type {t} cannot appear in a zone file"))
        }
        _ => Ok(()),
    }
}

fn parse_generic(toks: &[Tok]) -> Result<Vec<u8>, String> {
    let len: usize = toks
        .get(1)
        .and_then(|t| t.text.parse().ok())
        .ok_or("\\# needs a length")?;
    let hex: String = toks[2.min(toks.len())..]
        .iter()
        .map(|t| t.text.as_str())
        .collect();
    if !hex.len().is_multiple_of(2) {
        return Err("odd number of hex digits in \\# RDATA".into());
    }
    let mut out = Vec::with_capacity(hex.len() / 2);
    for i in (0..hex.len()).step_by(2) {
        let byte = hex
            .get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or("bad hex digit in \\# RDATA")?;
        out.push(byte);
    }
    if out.len() != len {
        return Err(format!(
            "\\# RDATA length {len} does not match {} octets of data",
            out.len()
        ));
    }
    Ok(out)
}

fn parse_batch(batch: &[Pending]) -> Result<Vec<RawRecord>, String> {
    let mut text = String::with_capacity(batch.len() * 64);
    let mut cur_origin: Option<&[u8]> = None;
    // Lines of the batch in text order, to map records back to their line.
    let mut by_key: BTreeMap<(Vec<u8>, u16), Vec<usize>> = BTreeMap::new();
    for (i, p) in batch.iter().enumerate() {
        if cur_origin != Some(p.origin.as_slice()) {
            text.push_str("$ORIGIN ");
            text.push_str(&name_to_text(&p.origin));
            text.push('\n');
            cur_origin = Some(&p.origin);
        }
        text.push_str(&name_to_text(&p.owner));
        text.push(' ');
        text.push_str(&p.ttl.to_string());
        text.push_str(" IN ");
        text.push_str(&p.rtype_text);
        text.push(' ');
        text.push_str(&p.rdata_text);
        text.push('\n');
        let mut lc = p.owner.clone();
        lc.make_ascii_lowercase();
        let t = p
            .rtype_text
            .parse::<RecordType>()
            .map(u16::from)
            .unwrap_or(0);
        by_key.entry((lc, t)).or_default().push(i);
    }
    let (_, sets) = Parser::new(text, None, None)
        .parse()
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (key, set) in sets {
        let rtype = u16::from(key.record_type);
        let mut lc = Vec::new();
        name_wire(set.name(), &mut lc);
        lc.make_ascii_lowercase();
        let lines = by_key.get(&(lc, rtype));
        for (n, rec) in set.records_without_rrsigs().enumerate() {
            let idx = lines
                .and_then(|l| l.get(n).or(l.last()))
                .copied()
                .unwrap_or(0);
            let p = &batch[idx];
            let mut rdata = Vec::new();
            encode_rdata(&rec.data, &mut rdata)?;
            out.push(RawRecord {
                owner: p.owner.clone(),
                rtype,
                ttl: rec.ttl,
                rdata,
                file: Arc::clone(&p.file),
                line: p.line,
            });
        }
    }
    Ok(out)
}

fn name_wire(name: &hickory_proto::rr::Name, out: &mut Vec<u8>) {
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
}

fn encode_rdata(rdata: &RData, out: &mut Vec<u8>) -> Result<(), String> {
    let mut enc = BinEncoder::new(out);
    enc.set_name_encoding(NameEncoding::Uncompressed);
    rdata.emit(&mut enc).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("3600"), Some(3600));
        assert_eq!(parse_ttl("1h30m"), Some(5400));
        assert_eq!(parse_ttl("1w"), Some(604_800));
        assert_eq!(parse_ttl("x"), None);
        assert_eq!(parse_ttl("99999999999"), None);
    }

    #[test]
    fn entries_and_parens() {
        let mut errs = Vec::new();
        let e = split_entries(
            "a IN SOA ns h ( 1 2\n 3 4 5 ) ; c\n  IN TXT \"x ; y\"\n",
            Path::new("z"),
            &mut errs,
        );
        assert!(errs.is_empty());
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].toks.len(), 10);
        assert!(e[1].blank_owner);
        assert_eq!(e[1].line, 3);
        assert_eq!(e[1].toks[2].text, "\"x ; y\"");
    }
}
