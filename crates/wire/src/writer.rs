//! Response writer: encodes straight into a reused buffer with name
//! compression and RRset-granular truncation.

use crate::query::Ecs;
use crate::rrset::RRset;
use crate::{edns_code, rtype};

/// Message section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Answer = 0,
    Authority = 1,
    Additional = 2,
}

/// The OPT record of a response.
#[derive(Clone, Copy, Debug)]
pub struct OptOut<'a> {
    pub udp_payload: u16,
    pub dnssec_ok: bool,
    /// NSID payload to include (only when the query asked for it).
    pub nsid: Option<&'a [u8]>,
    /// ECS to echo, with the scope prefix to announce.
    pub ecs: Option<(Ecs, u8)>,
    /// Extended DNS Error info code (RFC 8914), e.g. 20 "Not Authoritative".
    pub ede: Option<u16>,
}

impl OptOut<'_> {
    /// Size of the encoded OPT record.
    pub fn wire_len(&self) -> usize {
        let mut n = 11;
        if let Some(nsid) = self.nsid {
            n += 4 + nsid.len();
        }
        if let Some((ecs, _)) = self.ecs {
            n += 8 + (ecs.source_prefix as usize).div_ceil(8);
        }
        if self.ede.is_some() {
            n += 6;
        }
        n
    }
}

const COMP_SLOTS: usize = 64;
/// Highest offset a compression pointer can reach.
const MAX_PTR: usize = 0x3FFF;

/// Writes one response message.
pub struct Writer<'b> {
    buf: &'b mut Vec<u8>,
    limit: usize,
    counts: [u16; 3],
    comp: [u16; COMP_SLOTS],
    ncomp: usize,
    /// The question's suffixes are in `comp` (see `Writer::mark`).
    comp_ready: bool,
    tc: bool,
    additional_full: bool,
    /// An optional RRset was left out for lack of room.
    dropped: bool,
    question_end: usize,
    id: u16,
    opcode: u8,
    rd: bool,
    cd: bool,
    has_question: bool,
}

impl<'b> Writer<'b> {
    /// Start a response to `packet` (a query): header and, when
    /// `question_end` is given, the question copied verbatim (so the case of
    /// the name is echoed as sent). `max_len` is the largest message allowed
    /// and `reserve` the room kept for the OPT record.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        buf: &'b mut Vec<u8>,
        packet: &[u8],
        question_end: Option<usize>,
        id: u16,
        opcode: u8,
        rd: bool,
        cd: bool,
        max_len: usize,
        reserve: usize,
    ) -> Self {
        buf.clear();
        buf.extend_from_slice(&[0u8; 12]);
        let mut w = Writer {
            buf,
            limit: max_len.saturating_sub(reserve).max(12),
            counts: [0; 3],
            comp: [0; COMP_SLOTS],
            ncomp: 0,
            comp_ready: false,
            tc: false,
            additional_full: false,
            dropped: false,
            question_end: 12,
            id,
            opcode,
            rd,
            cd,
            has_question: false,
        };
        if let Some(end) = question_end
            && let Some(q) = packet.get(12..end)
        {
            w.buf.extend_from_slice(q);
            w.question_end = w.buf.len();
            w.has_question = true;
        }
        w
    }

    /// Where a record about to be written starts (buffer length and
    /// compression entries, to roll back to). Before the first record, the
    /// question name's suffixes become compression targets: done here, not
    /// in `new`, so a message made of a stored body never pays for it.
    #[inline]
    fn mark(&mut self) -> (usize, usize) {
        if !self.comp_ready {
            self.comp_ready = true;
            if self.has_question {
                // Every suffix of the question name (uncompressed).
                let mut off = 12usize;
                while let Some(&l) = self.buf.get(off) {
                    if l == 0 || l & 0xC0 != 0 || self.ncomp == COMP_SLOTS {
                        break;
                    }
                    self.comp[self.ncomp] = off as u16;
                    self.ncomp += 1;
                    off += 1 + l as usize;
                }
            }
        }
        (self.buf.len(), self.ncomp)
    }

    /// Append one record if it fits; never sets TC (zone transfers start a
    /// new message instead).
    pub fn try_push_rr(
        &mut self,
        section: Section,
        owner: &[u8],
        rtype: u16,
        class: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> bool {
        let (start, ncomp) = self.mark();
        self.write_rr(owner, rtype, class, ttl, rdata);
        self.fits(section, start, ncomp, 1)
    }

    /// Append a whole RRset with `owner` as the owner name. Returns false
    /// when it did not fit (nothing of it is written).
    pub fn push_rrset(&mut self, section: Section, owner: &[u8], set: &RRset) -> bool {
        if !self.can_write(section) {
            return false;
        }
        let (start, ncomp) = self.mark();
        let n = self.write_set(owner, set);
        self.commit(section, start, ncomp, n)
    }

    /// Append one record. Returns false when it did not fit.
    pub fn push_rr(
        &mut self,
        section: Section,
        owner: &[u8],
        rtype: u16,
        class: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> bool {
        self.push_rrs(section, owner, rtype, class, ttl, std::iter::once(rdata))
    }

    /// Append several records of one RRset given as separate RDATA slices.
    pub fn push_rrs<'r>(
        &mut self,
        section: Section,
        owner: &[u8],
        rtype: u16,
        class: u16,
        ttl: u32,
        rdatas: impl Iterator<Item = &'r [u8]>,
    ) -> bool {
        if !self.can_write(section) {
            return false;
        }
        let (start, ncomp) = self.mark();
        let mut n = 0;
        for rd in rdatas {
            self.write_rr(owner, rtype, class, ttl, rd);
            n += 1;
        }
        self.commit(section, start, ncomp, n)
    }

    /// Append a whole RRset that the message can do without: when it does
    /// not fit it is left out without setting TC (authority NS of a positive
    /// answer, RFC 2181 §9).
    pub fn push_rrset_optional(&mut self, section: Section, owner: &[u8], set: &RRset) -> bool {
        if self.tc {
            return false;
        }
        let (start, ncomp) = self.mark();
        let n = self.write_set(owner, set);
        let ok = self.fits(section, start, ncomp, n);
        self.dropped |= !ok;
        ok
    }

    /// Nothing was left out or truncated: the sections written are the
    /// whole answer, whatever the size limit.
    pub fn is_complete(&self) -> bool {
        !(self.tc || self.additional_full || self.dropped)
    }

    /// The sections written so far (everything after the question).
    pub fn body(&self) -> &[u8] {
        &self.buf[self.question_end..]
    }

    /// Records written so far in the answer, authority and additional
    /// sections.
    pub fn counts(&self) -> [u16; 3] {
        self.counts
    }

    /// Append sections recorded earlier with [`Writer::body`] and
    /// [`Writer::counts`] from a complete answer to the same question
    /// (any case: compression matches names case-insensitively, so the
    /// bytes do not depend on the question's case). Only into a writer
    /// with nothing written after the question, and only when the whole
    /// body fits: then every step of writing it afresh would have fitted
    /// too, so the result is byte for byte what the full path writes.
    /// Returns false (and writes nothing) otherwise.
    pub fn push_body(&mut self, body: &[u8], counts: [u16; 3]) -> bool {
        if self.buf.len() != self.question_end
            || self.counts != [0; 3]
            || self.buf.len() + body.len() > self.limit
        {
            return false;
        }
        self.buf.extend_from_slice(body);
        self.counts = counts;
        true
    }

    fn write_set(&mut self, owner: &[u8], set: &RRset) -> u16 {
        let mut n = 0u16;
        for rdata in set.rdatas() {
            self.write_rr(owner, set.rtype, set.class, set.ttl, rdata);
            n += 1;
        }
        n
    }

    /// Keep what was written since `start` if it fits, else roll it back.
    fn fits(&mut self, section: Section, start: usize, ncomp: usize, n: u16) -> bool {
        let idx = section as usize;
        if self.buf.len() > self.limit || self.counts[idx].checked_add(n).is_none() {
            self.buf.truncate(start);
            self.ncomp = ncomp;
            return false;
        }
        self.counts[idx] += n;
        true
    }

    fn can_write(&self, section: Section) -> bool {
        !(self.tc || (section == Section::Additional && self.additional_full))
    }

    /// Like [`Writer::fits`]; an overflow sets TC (answer, authority) or
    /// closes the additional section.
    fn commit(&mut self, section: Section, start: usize, ncomp: usize, n: u16) -> bool {
        if self.fits(section, start, ncomp, n) {
            return true;
        }
        if section == Section::Additional {
            self.additional_full = true;
        } else {
            self.tc = true;
        }
        false
    }

    fn write_rr(&mut self, owner: &[u8], t: u16, class: u16, ttl: u32, rdata: &[u8]) {
        self.write_name(owner, true);
        self.buf.extend_from_slice(&t.to_be_bytes());
        self.buf.extend_from_slice(&class.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        match t {
            // The RFC 1035 types whose RDATA names may be compressed (RFC
            // 3597 §4); newer types never are.
            rtype::NS
            | rtype::CNAME
            | rtype::PTR
            | rtype::MD
            | rtype::MF
            | rtype::MB
            | rtype::MG
            | rtype::MR => self.write_name(rdata, true),
            rtype::MINFO => {
                let r = wire_name_len(rdata);
                if r > 0 && r < rdata.len() && wire_name_len(&rdata[r..]) == rdata.len() - r {
                    self.write_name(&rdata[..r], true);
                    self.write_name(&rdata[r..], true);
                } else {
                    self.buf.extend_from_slice(rdata);
                }
            }
            rtype::MX if rdata.len() > 2 => {
                self.buf.extend_from_slice(&rdata[..2]);
                self.write_name(&rdata[2..], true);
            }
            rtype::SOA => {
                let m = wire_name_len(rdata);
                let r = m + wire_name_len(&rdata[m..]);
                if m > 0 && r > m && rdata.len() == r + 20 {
                    self.write_name(&rdata[..m], true);
                    self.write_name(&rdata[m..r], true);
                    self.buf.extend_from_slice(&rdata[r..]);
                } else {
                    self.buf.extend_from_slice(rdata);
                }
            }
            _ => self.buf.extend_from_slice(rdata),
        }
        let rdlen = (self.buf.len() - len_at - 2).min(u16::MAX as usize) as u16;
        self.buf[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    }

    /// Write an uncompressed wire name, compressing against earlier names.
    fn write_name(&mut self, name: &[u8], compress: bool) {
        let mut off = 0usize;
        loop {
            let Some(&l) = name.get(off) else {
                self.buf.push(0);
                return;
            };
            if l == 0 {
                self.buf.push(0);
                return;
            }
            if compress && let Some(ptr) = self.find(&name[off..]) {
                self.buf
                    .extend_from_slice(&(0xC000u16 | ptr as u16).to_be_bytes());
                return;
            }
            let here = self.buf.len();
            if here <= MAX_PTR && self.ncomp < COMP_SLOTS {
                self.comp[self.ncomp] = here as u16;
                self.ncomp += 1;
            }
            let end = (off + 1 + l as usize).min(name.len());
            self.buf.extend_from_slice(&name[off..end]);
            off = end;
        }
    }

    fn find(&self, suffix: &[u8]) -> Option<usize> {
        self.comp[..self.ncomp]
            .iter()
            .map(|&o| o as usize)
            .find(|&o| name_eq_at(self.buf, o, suffix))
    }

    /// Finish the message: header, counts, optional OPT. Returns the length.
    pub fn finish(self, rcode: u16, aa: bool, opt: Option<OptOut<'_>>) -> usize {
        if self.tc {
            self.buf.truncate(self.question_end);
        }
        let counts = if self.tc { [0; 3] } else { self.counts };
        let b = &mut self.buf[..12];
        b[0..2].copy_from_slice(&self.id.to_be_bytes());
        b[2] = 0x80
            | (self.opcode & 0x0F) << 3
            | if aa { 0x04 } else { 0 }
            | if self.tc { 0x02 } else { 0 }
            | u8::from(self.rd);
        b[3] = if self.cd { 0x10 } else { 0 } | (rcode & 0x0F) as u8;
        b[4..6].copy_from_slice(&u16::from(self.has_question).to_be_bytes());
        b[6..8].copy_from_slice(&counts[0].to_be_bytes());
        b[8..10].copy_from_slice(&counts[1].to_be_bytes());
        let ar = counts[2] + u16::from(opt.is_some());
        b[10..12].copy_from_slice(&ar.to_be_bytes());
        if let Some(o) = opt {
            write_opt(self.buf, &o, (rcode >> 4) as u8);
        }
        self.buf.len()
    }
}

fn write_opt(buf: &mut Vec<u8>, o: &OptOut<'_>, ext_rcode: u8) {
    buf.push(0);
    buf.extend_from_slice(&rtype::OPT.to_be_bytes());
    buf.extend_from_slice(&o.udp_payload.to_be_bytes());
    buf.extend_from_slice(&[ext_rcode, 0, if o.dnssec_ok { 0x80 } else { 0 }, 0]);
    let len_at = buf.len();
    buf.extend_from_slice(&[0, 0]);
    if let Some(nsid) = o.nsid {
        buf.extend_from_slice(&edns_code::NSID.to_be_bytes());
        buf.extend_from_slice(&(nsid.len() as u16).to_be_bytes());
        buf.extend_from_slice(nsid);
    }
    if let Some((ecs, scope)) = o.ecs {
        let n = (ecs.source_prefix as usize).div_ceil(8);
        buf.extend_from_slice(&edns_code::ECS.to_be_bytes());
        buf.extend_from_slice(&((4 + n) as u16).to_be_bytes());
        buf.extend_from_slice(&ecs.family.to_be_bytes());
        buf.push(ecs.source_prefix);
        buf.push(scope);
        match ecs.addr {
            std::net::IpAddr::V4(a) => buf.extend_from_slice(&a.octets()[..n.min(4)]),
            std::net::IpAddr::V6(a) => buf.extend_from_slice(&a.octets()[..n.min(16)]),
        }
    }
    if let Some(code) = o.ede {
        buf.extend_from_slice(&edns_code::EDE.to_be_bytes());
        buf.extend_from_slice(&2u16.to_be_bytes());
        buf.extend_from_slice(&code.to_be_bytes());
    }
    let len = (buf.len() - len_at - 2) as u16;
    buf[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
}

/// Length of the uncompressed wire name at the start of `b` (0 if invalid).
fn wire_name_len(b: &[u8]) -> usize {
    let mut off = 0usize;
    while let Some(&l) = b.get(off) {
        if l == 0 {
            return off + 1;
        }
        if l & 0xC0 != 0 {
            return 0;
        }
        off += 1 + l as usize;
    }
    0
}

/// Does the (possibly compressed) name at `off` in `buf` equal `s`
/// (uncompressed), ignoring ASCII case?
fn name_eq_at(buf: &[u8], mut off: usize, s: &[u8]) -> bool {
    let mut si = 0usize;
    for _ in 0..256 {
        let Some(&l) = buf.get(off) else { return false };
        if l & 0xC0 == 0xC0 {
            let Some(&lo) = buf.get(off + 1) else {
                return false;
            };
            off = (((l & 0x3F) as usize) << 8) | lo as usize;
            continue;
        }
        let Some(&sl) = s.get(si) else { return false };
        if l != sl {
            return false;
        }
        if l == 0 {
            return true;
        }
        let n = l as usize;
        match (buf.get(off + 1..off + 1 + n), s.get(si + 1..si + 1 + n)) {
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => {}
            _ => return false,
        }
        off += 1 + n;
        si += 1 + n;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rrset::RRsetBuilder;

    #[test]
    fn compression_and_counts() {
        let q = b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x00\x00\x01\x00\x01";
        let mut buf = Vec::new();
        let mut w = Writer::new(&mut buf, q, Some(q.len()), 1, 0, true, false, 512, 0);
        let mut b = RRsetBuilder::new(1, 1, 300);
        b.push(&[192, 0, 2, 1]);
        b.push(&[192, 0, 2, 2]);
        assert!(w.push_rrset(Section::Answer, b"\x03WWW\x07EXAMPLE\x00", &b.build()));
        let mut ns = RRsetBuilder::new(rtype::NS, 1, 300);
        ns.push(b"\x02ns\x07example\x00");
        assert!(w.push_rrset(Section::Authority, b"\x07example\x00", &ns.build()));
        let len = w.finish(0, true, None);
        // header 12 + question 17 + 2 A records (2+10+4 each) + NS (2+10+ (3 + 2))
        assert_eq!(len, 12 + 17 + 32 + 17);
        assert_eq!(buf[6..8], [0, 2]);
        assert_eq!(buf[8..10], [0, 1]);
        // owner pointer to the question
        assert_eq!(buf[29..31], [0xC0, 12]);
    }

    #[test]
    fn truncation_is_whole_rrset() {
        let q = b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01t\x00\x00\x10\x00\x01";
        let mut buf = Vec::new();
        let mut w = Writer::new(&mut buf, q, Some(q.len()), 1, 0, false, false, 512, 0);
        let mut b = RRsetBuilder::new(rtype::TXT, 1, 300);
        for i in 0..3u8 {
            let mut rd = vec![200u8];
            rd.extend(std::iter::repeat_n(b'a' + i, 200));
            b.push(&rd);
        }
        assert!(!w.push_rrset(Section::Answer, b"\x01t\x00", &b.build()));
        let len = w.finish(0, true, None);
        assert_eq!(len, q.len());
        assert_eq!(buf[2] & 0x02, 0x02);
        assert_eq!(buf[6..8], [0, 0]);
    }
}
