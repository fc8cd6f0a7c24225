//! DNS wire format for the popdns query path.
//!
//! This crate owns the bytes: it parses incoming queries ([`parse_query`]) and
//! writes responses ([`Writer`]) straight into a caller-owned, reused buffer.
//! It has no dependencies and never allocates on the query path: names are
//! parsed into fixed stack buffers, name compression uses a fixed-size table,
//! and resource record sets ([`RRset`]) are stored pre-encoded in wire form at
//! load time.
//!
//! Invariants:
//! - every function here is total: any byte string gives `Ok` or an error,
//!   never a panic, and all work is bounded by the packet length;
//! - a response never carries a partial RRset: an RRset that does not fit in
//!   the answer or authority section sets TC and removes every record; one
//!   that does not fit in the additional section is left out;
//! - an OPT record is written only when the query carried one.

mod name;
mod query;
mod rrset;
mod writer;

pub use name::{
    BadName, MAX_NAME_LEN, NameBuf, label_offsets, lower_wire, name_from_text, name_hash,
    name_to_text, parse_name,
};
pub use query::{Ecs, Edns, FormErr, ParseError, Query, parse_query};
pub use rrset::{RRset, RRsetBuilder};
pub use writer::{OptOut, Section, Writer};

/// Record types used by the server logic.
pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const MD: u16 = 3;
    pub const MF: u16 = 4;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const MB: u16 = 7;
    pub const MG: u16 = 8;
    pub const MR: u16 = 9;
    pub const PTR: u16 = 12;
    pub const MINFO: u16 = 14;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const RT: u16 = 21;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const KX: u16 = 36;
    pub const DNAME: u16 = 39;
    pub const OPT: u16 = 41;
    pub const DS: u16 = 43;
    pub const RRSIG: u16 = 46;
    pub const NSEC: u16 = 47;
    pub const DNSKEY: u16 = 48;
    pub const NSEC3: u16 = 50;
    pub const IXFR: u16 = 251;
    pub const AXFR: u16 = 252;
    pub const MAILB: u16 = 253;
    pub const MAILA: u16 = 254;
    pub const ANY: u16 = 255;
}

/// Classes.
pub mod class {
    pub const IN: u16 = 1;
    pub const CH: u16 = 3;
    pub const ANY: u16 = 255;
}

/// Response codes (the low four bits; BADVERS is extended).
pub mod rcode {
    pub const NOERROR: u16 = 0;
    pub const FORMERR: u16 = 1;
    pub const SERVFAIL: u16 = 2;
    pub const NXDOMAIN: u16 = 3;
    pub const NOTIMP: u16 = 4;
    pub const REFUSED: u16 = 5;
    pub const YXDOMAIN: u16 = 6;
    pub const BADVERS: u16 = 16;
}

/// Opcodes.
pub mod opcode {
    pub const QUERY: u8 = 0;
    pub const NOTIFY: u8 = 4;
}

/// EDNS option codes.
pub mod edns_code {
    pub const NSID: u16 = 3;
    pub const ECS: u16 = 8;
    pub const EDE: u16 = 15;
}
