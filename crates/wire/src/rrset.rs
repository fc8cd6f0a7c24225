//! Pre-encoded resource record sets.

/// An RRset in wire form: type, class, TTL and every RDATA, stored as
/// `[u16 length][bytes]` entries, names inside RDATA uncompressed and in the
/// case of the zone file. The owner is kept by whoever holds the set (a zone
/// node), so a name is stored once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RRset {
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    count: u16,
    rdata: Box<[u8]>,
}

impl RRset {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when the set has no record (never for loaded data).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Iterate over the RDATA of each record.
    pub fn rdatas(&self) -> RdataIter<'_> {
        RdataIter {
            buf: &self.rdata,
            off: 0,
        }
    }

    /// A copy with another TTL (used for the negative-answer SOA).
    pub fn with_ttl(&self, ttl: u32) -> RRset {
        let mut r = self.clone();
        r.ttl = ttl;
        r
    }
}

/// Iterator over the RDATA entries of an [`RRset`].
pub struct RdataIter<'a> {
    buf: &'a [u8],
    off: usize,
}

impl<'a> Iterator for RdataIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let hdr = self.buf.get(self.off..self.off + 2)?;
        let len = u16::from_be_bytes([hdr[0], hdr[1]]) as usize;
        let data = self.buf.get(self.off + 2..self.off + 2 + len)?;
        self.off += 2 + len;
        Some(data)
    }
}

/// Builds an [`RRset`] record by record (load time only).
#[derive(Debug)]
pub struct RRsetBuilder {
    rtype: u16,
    class: u16,
    ttl: u32,
    count: u16,
    rdata: Vec<u8>,
}

impl RRsetBuilder {
    pub fn new(rtype: u16, class: u16, ttl: u32) -> Self {
        RRsetBuilder {
            rtype,
            class,
            ttl,
            count: 0,
            rdata: Vec::new(),
        }
    }

    /// Add one record's RDATA. Duplicate RDATA is ignored (RFC 2181 §5).
    /// Returns false when the RDATA is a duplicate or the set is full.
    pub fn push(&mut self, rdata: &[u8]) -> bool {
        if rdata.len() > u16::MAX as usize || self.count == u16::MAX {
            return false;
        }
        let view = RdataIter {
            buf: &self.rdata,
            off: 0,
        };
        if view.into_iter().any(|r| r == rdata) {
            return false;
        }
        self.rdata
            .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        self.rdata.extend_from_slice(rdata);
        self.count += 1;
        true
    }

    /// RFC 2181 §5.2: all TTLs of an RRset are the same; keep the lowest.
    pub fn merge_ttl(&mut self, ttl: u32) {
        self.ttl = self.ttl.min(ttl);
    }

    pub fn rtype(&self) -> u16 {
        self.rtype
    }

    pub fn build(self) -> RRset {
        RRset {
            rtype: self.rtype,
            class: self.class,
            ttl: self.ttl,
            count: self.count,
            rdata: self.rdata.into_boxed_slice(),
        }
    }
}
