//! The zone-file loader: text -> records -> `Zone` (name index, cut and
//! wildcard marks), then a few lookups in the zone that was built.
//!
//! `$INCLUDE` is skipped: it reads files named by the input (`/dev/zero`
//! would never end), and zone files are operator input.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use popdns_wire::{Writer, rtype};
use popdns_zone::{Zone, ZoneSet, read_zone_str};

/// Default origin: fuzz.example.
const ORIGIN: &[u8] = b"\x04fuzz\x07example\x00";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.to_ascii_lowercase().contains("$include") {
        return;
    }
    let path = Path::new("fuzz.zone");
    let Ok(parsed) = read_zone_str(text, path, Some(ORIGIN)) else {
        return;
    };
    let owners: Vec<Vec<u8>> = parsed
        .records
        .iter()
        .take(8)
        .map(|r| r.owner.clone())
        .collect();
    let Ok(zone) = Zone::build(&parsed.origin, parsed.records, path.to_path_buf(), &[]) else {
        return;
    };
    let Ok(set) = ZoneSet::new(vec![zone]) else {
        return;
    };
    // Ask for a few names the file defines, and a name below each.
    let mut out = Vec::with_capacity(4096);
    for owner in &owners {
        let mut below = b"\x03zzz".to_vec();
        below.extend_from_slice(owner);
        for name in [owner.as_slice(), below.as_slice()] {
            if name.len() > 255 {
                continue;
            }
            let lc = name.to_ascii_lowercase();
            let Some(z) = set.find(&lc) else {
                continue;
            };
            for (qtype, v6) in [
                (rtype::A, false),
                (rtype::ANY, false),
                (rtype::MX, true),
                (rtype::NS, true),
            ] {
                let q = popdns_fuzz::query_message(1, [0, 0], name, qtype, None);
                let qend = 12 + name.len() + 4;
                let mut w = Writer::new(&mut out, &q, Some(qend), 1, 0, false, false, 65535, 0);
                let (rc, aa, _) = set.answer(z, name, &lc, qtype, v6, &mut w);
                w.finish(rc, aa, None);
            }
        }
    }
});
