//! RDATA presentation formats that hickory's zone parser does not read:
//! the DNSSEC types (it refuses them without its signing feature), types it
//! has no name for (LOC, RP, AFSDB, SPF, URI, ZONEMD, EUI48, ...) and a few
//! old RFC 1035 ones. A zone file with any of them loads here as it does in
//! NSD and is served as plain data.

use std::net::Ipv4Addr;

use hickory_proto::rr::RecordType;

use crate::parse::{Tok, resolve_name, unescape};

/// Types with no mnemonic in hickory's `RecordType` (IANA numbers).
const EXTRA_TYPES: [(&str, u16); 31] = [
    ("MD", 3),
    ("MF", 4),
    ("MB", 7),
    ("MG", 8),
    ("MR", 9),
    ("MINFO", 14),
    ("RP", 17),
    ("AFSDB", 18),
    ("X25", 19),
    ("ISDN", 20),
    ("RT", 21),
    ("PX", 26),
    ("GPOS", 27),
    ("LOC", 29),
    ("KX", 36),
    ("DHCID", 49),
    ("SMIMEA", 53),
    ("CSYNC", 62),
    ("ZONEMD", 63),
    ("SPF", 99),
    ("NID", 104),
    ("L32", 105),
    ("L64", 106),
    ("LP", 107),
    ("EUI48", 108),
    ("EUI64", 109),
    ("URI", 256),
    ("AVC", 258),
    ("RESINFO", 261),
    ("TA", 32768),
    ("DLV", 32769),
];

/// The number of a type mnemonic (uppercase), or of `TYPEnnn`.
pub(crate) fn type_code(text: &str) -> Option<u16> {
    if let Some(n) = text.strip_prefix("TYPE") {
        return n.parse().ok();
    }
    if let Some(&(_, n)) = EXTRA_TYPES.iter().find(|(m, _)| *m == text) {
        return Some(n);
    }
    text.parse::<RecordType>()
        .ok()
        .map(u16::from)
        .filter(|&n| n != 0 && !matches!(RecordType::from(n), RecordType::Unknown(_)))
}

/// Does this module encode type `t`? (Then hickory is not asked.)
pub(crate) fn owns(t: u16) -> bool {
    matches!(
        t,
        3 | 4
            | 7
            | 8
            | 9
            | 14
            | 17
            | 18
            | 19
            | 20
            | 21
            | 24
            | 25
            | 26
            | 27
            | 29
            | 36
            | 43
            | 46
            | 47
            | 48
            | 49
            | 50
            | 51
            | 53
            | 59
            | 60
            | 62
            | 63
            | 99
            | 104..=109 | 256 | 258 | 261 | 32768 | 32769
    )
}

type R = Result<Vec<u8>, String>;

/// Encode the RDATA of type `t` (one that [`owns`]) from its tokens.
pub(crate) fn encode(t: u16, toks: &[Tok], origin: Option<&[u8]>) -> R {
    let mut out = Vec::with_capacity(64);
    let mut f = Fields {
        toks,
        i: 0,
        origin,
        out: &mut out,
    };
    match t {
        // One name: MD, MF, MB, MG, MR.
        3 | 4 | 7 | 8 | 9 => f.name()?,
        // Two names: MINFO, RP.
        14 | 17 => {
            f.name()?;
            f.name()?;
        }
        // Preference and a name: AFSDB, RT, KX, LP.
        18 | 21 | 36 | 107 => {
            f.u16()?;
            f.name()?;
        }
        // PX: preference, two names.
        26 => {
            f.u16()?;
            f.name()?;
            f.name()?;
        }
        // One character string: X25.
        19 => f.string()?,
        // ISDN: address and optional subaddress; GPOS: three strings.
        20 => {
            f.string()?;
            if f.more() {
                f.string()?;
            }
        }
        27 => {
            f.string()?;
            f.string()?;
            f.string()?;
        }
        // Strings like TXT: SPF, AVC, RESINFO.
        99 | 258 | 261 => {
            f.string()?;
            while f.more() {
                f.string()?;
            }
        }
        // DS, CDS, TA, DLV: key tag, algorithm, digest type, digest.
        43 | 59 | 32768 | 32769 => {
            f.u16()?;
            f.algorithm()?;
            f.u8()?;
            f.hex_rest()?;
        }
        // KEY, DNSKEY, CDNSKEY: flags, protocol, algorithm, key.
        25 | 48 | 60 => {
            f.u16()?;
            f.u8()?;
            f.algorithm()?;
            f.base64_rest()?;
        }
        // RRSIG (and SIG): type covered, algorithm, labels, original TTL,
        // expiration, inception, key tag, signer, signature.
        46 | 24 => {
            let covered = f.next("type covered")?;
            let c = type_code(&covered.to_ascii_uppercase())
                .ok_or_else(|| format!("unknown type {covered:?} in RRSIG"))?;
            f.out.extend_from_slice(&c.to_be_bytes());
            f.algorithm()?;
            f.u8()?;
            f.u32()?;
            f.time()?;
            f.time()?;
            f.u16()?;
            f.name()?;
            f.base64_rest()?;
        }
        // NSEC: next name, type bitmap.
        47 => {
            f.name()?;
            f.bitmap()?;
        }
        // NSEC3: algorithm, flags, iterations, salt, next hashed owner, bitmap.
        50 => {
            f.u8()?;
            f.u8()?;
            f.u16()?;
            f.salt()?;
            let h = f.next("next hashed owner")?;
            let b = base32hex(&h).ok_or_else(|| format!("bad base32hex {h:?}"))?;
            push_len8(f.out, &b)?;
            f.bitmap()?;
        }
        // NSEC3PARAM: algorithm, flags, iterations, salt.
        51 => {
            f.u8()?;
            f.u8()?;
            f.u16()?;
            f.salt()?;
        }
        // SMIMEA: like TLSA.
        53 => {
            f.u8()?;
            f.u8()?;
            f.u8()?;
            f.hex_rest()?;
        }
        // DHCID: base64.
        49 => f.base64_rest()?,
        // CSYNC: SOA serial, flags, type bitmap.
        62 => {
            f.u32()?;
            f.u16()?;
            f.bitmap()?;
        }
        // ZONEMD: serial, scheme, hash algorithm, digest.
        63 => {
            f.u32()?;
            f.u8()?;
            f.u8()?;
            f.hex_rest()?;
        }
        // NID, L64: preference and a 64-bit locator written as four groups.
        104 | 106 => {
            f.u16()?;
            let s = f.next("locator")?;
            let groups: Vec<&str> = s.split(':').collect();
            if groups.len() != 4 {
                return Err(format!("bad locator {s:?}"));
            }
            for g in groups {
                let v = u16::from_str_radix(g, 16).map_err(|_| format!("bad locator {s:?}"))?;
                f.out.extend_from_slice(&v.to_be_bytes());
            }
        }
        // L32: preference and an IPv4 address.
        105 => {
            f.u16()?;
            let s = f.next("locator")?;
            let a: Ipv4Addr = s.parse().map_err(|_| format!("bad locator {s:?}"))?;
            f.out.extend_from_slice(&a.octets());
        }
        // EUI48, EUI64: hex bytes joined by '-'.
        108 | 109 => {
            let s = f.next("address")?;
            let want = if t == 108 { 6 } else { 8 };
            let parts: Vec<&str> = s.split('-').collect();
            if parts.len() != want || parts.iter().any(|p| p.len() != 2) {
                return Err(format!("bad EUI address {s:?}"));
            }
            for p in parts {
                f.out
                    .push(u8::from_str_radix(p, 16).map_err(|_| format!("bad EUI {s:?}"))?);
            }
        }
        // URI: priority, weight, target (the rest of the RDATA, no length).
        256 => {
            f.u16()?;
            f.u16()?;
            let tok = f.tok("target")?;
            let target = unescape(strip_quotes(tok)?).ok_or("bad escape in URI target")?;
            f.out.extend_from_slice(&target);
        }
        29 => f.loc()?,
        _ => return Err(format!("type {t} cannot be read here")),
    }
    if f.more() {
        return Err(format!(
            "unexpected {:?} after the RDATA",
            toks.get(f.i).map(|t| t.text.as_str()).unwrap_or_default()
        ));
    }
    if out.len() > usize::from(u16::MAX) {
        return Err("RDATA longer than 65535 octets".into());
    }
    Ok(out)
}

fn strip_quotes(tok: &Tok) -> Result<&str, String> {
    if tok.quoted {
        tok.text
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .ok_or_else(|| "unterminated quoted string".to_string())
    } else {
        Ok(tok.text.as_str())
    }
}

fn push_len8(out: &mut Vec<u8>, b: &[u8]) -> Result<(), String> {
    let n = u8::try_from(b.len()).map_err(|_| "field longer than 255 octets".to_string())?;
    out.push(n);
    out.extend_from_slice(b);
    Ok(())
}

/// The RDATA fields being read, and the encoding so far.
struct Fields<'a, 'o> {
    toks: &'a [Tok],
    i: usize,
    origin: Option<&'a [u8]>,
    out: &'o mut Vec<u8>,
}

impl Fields<'_, '_> {
    fn more(&self) -> bool {
        self.i < self.toks.len()
    }

    fn tok(&mut self, what: &str) -> Result<&Tok, String> {
        let t = self
            .toks
            .get(self.i)
            .ok_or_else(|| format!("missing {what}"))?;
        self.i += 1;
        Ok(t)
    }

    fn next(&mut self, what: &str) -> Result<String, String> {
        let t = self.tok(what)?;
        if t.quoted {
            return Err(format!("{what} cannot be a quoted string"));
        }
        Ok(t.text.clone())
    }

    fn num(&mut self, what: &str, max: u64) -> Result<u64, String> {
        let s = self.next(what)?;
        s.parse::<u64>()
            .ok()
            .filter(|&v| v <= max)
            .ok_or_else(|| format!("bad {what} {s:?}"))
    }

    fn u8(&mut self) -> Result<(), String> {
        let v = self.num("number", u8::MAX.into())?;
        self.out.push(v as u8);
        Ok(())
    }

    fn u16(&mut self) -> Result<(), String> {
        let v = self.num("number", u16::MAX.into())?;
        self.out.extend_from_slice(&(v as u16).to_be_bytes());
        Ok(())
    }

    fn u32(&mut self) -> Result<(), String> {
        let v = self.num("number", u32::MAX.into())?;
        self.out.extend_from_slice(&(v as u32).to_be_bytes());
        Ok(())
    }

    fn name(&mut self) -> Result<(), String> {
        let s = self.next("name")?;
        let w = resolve_name(&s, self.origin)?;
        self.out.extend_from_slice(&w);
        Ok(())
    }

    fn string(&mut self) -> Result<(), String> {
        let tok = self.tok("string")?;
        let raw = strip_quotes(tok)?;
        let s = unescape(raw).ok_or("bad escape in string")?;
        push_len8(self.out, &s)
    }

    /// A DNSSEC algorithm number or mnemonic (RFC 4034 appendix A.1).
    fn algorithm(&mut self) -> Result<(), String> {
        let s = self.next("algorithm")?;
        let v = match s.to_ascii_uppercase().as_str() {
            "RSAMD5" => 1,
            "DH" => 2,
            "DSA" => 3,
            "RSASHA1" => 5,
            "DSA-NSEC3-SHA1" => 6,
            "RSASHA1-NSEC3-SHA1" => 7,
            "RSASHA256" => 8,
            "RSASHA512" => 10,
            "ECC-GOST" => 12,
            "ECDSAP256SHA256" => 13,
            "ECDSAP384SHA384" => 14,
            "ED25519" => 15,
            "ED448" => 16,
            "INDIRECT" => 252,
            "PRIVATEDNS" => 253,
            "PRIVATEOID" => 254,
            _ => s
                .parse::<u8>()
                .map_err(|_| format!("bad algorithm {s:?}"))?,
        };
        self.out.push(v);
        Ok(())
    }

    /// RRSIG time: `YYYYMMDDHHmmSS` (UTC) or seconds (RFC 4034 §3.2).
    fn time(&mut self) -> Result<(), String> {
        let s = self.next("time")?;
        let v = if s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit()) {
            let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap_or(0);
            let secs = days_from_civil(n(0, 4), n(4, 6), n(6, 8)) * 86_400
                + n(8, 10) * 3600
                + n(10, 12) * 60
                + n(12, 14);
            // Serial number arithmetic (RFC 1982): the value modulo 2^32.
            secs.rem_euclid(1 << 32) as u32
        } else {
            s.parse::<u32>().map_err(|_| format!("bad time {s:?}"))?
        };
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }

    /// The remaining tokens as one hex string.
    fn hex_rest(&mut self) -> Result<(), String> {
        self.rest_decoded("hex", hex)
    }

    /// The remaining tokens as one base64 string.
    fn base64_rest(&mut self) -> Result<(), String> {
        self.rest_decoded("base64", base64)
    }

    /// The remaining tokens joined and decoded by `decode`.
    fn rest_decoded(
        &mut self,
        what: &str,
        decode: fn(&str) -> Option<Vec<u8>>,
    ) -> Result<(), String> {
        let mut s = String::new();
        while self.more() {
            s.push_str(&self.next(what)?);
        }
        let b = decode(&s).ok_or_else(|| format!("bad {what} {s:?}"))?;
        self.out.extend_from_slice(&b);
        Ok(())
    }

    /// NSEC3 salt: hex with a length byte, `-` for none.
    fn salt(&mut self) -> Result<(), String> {
        let s = self.next("salt")?;
        let b = if s == "-" {
            Vec::new()
        } else {
            hex(&s).ok_or_else(|| format!("bad salt {s:?}"))?
        };
        push_len8(self.out, &b)
    }

    /// Type bitmap (RFC 4034 §4.1.2) from the remaining type mnemonics.
    fn bitmap(&mut self) -> Result<(), String> {
        let mut types = Vec::new();
        while self.more() {
            let s = self.next("type")?;
            types.push(
                type_code(&s.to_ascii_uppercase())
                    .ok_or_else(|| format!("unknown type {s:?} in type bitmap"))?,
            );
        }
        types.sort_unstable();
        types.dedup();
        let mut i = 0;
        while i < types.len() {
            let window = types[i] >> 8;
            let mut bits = [0u8; 32];
            let mut len = 0;
            while i < types.len() && types[i] >> 8 == window {
                let low = usize::from(types[i] & 0xff);
                bits[low / 8] |= 0x80 >> (low % 8);
                len = low / 8 + 1;
                i += 1;
            }
            self.out.push(window as u8);
            self.out.push(len as u8);
            self.out.extend_from_slice(&bits[..len]);
        }
        Ok(())
    }

    /// LOC (RFC 1876 §3): `d [m [s]] N|S d [m [s]] E|W alt[m] [size[m] [hp[m] [vp[m]]]]`.
    fn loc(&mut self) -> Result<(), String> {
        let lat = self.angle(&["N", "S"], 90)?;
        let lon = self.angle(&["E", "W"], 180)?;
        let alt = self.meters("altitude")?;
        let alt = (alt + 10_000_000.0).round();
        if !(0.0..=f64::from(u32::MAX)).contains(&alt) {
            return Err("LOC altitude out of range".into());
        }
        let mut prec = [1e2, 1e6, 1e3]; // size 1 m, horizontal 10 km, vertical 10 m
        for p in &mut prec {
            if !self.more() {
                break;
            }
            *p = self.meters("precision")?;
        }
        self.out.push(0);
        for p in prec {
            self.out.push(precision(p)?);
        }
        self.out.extend_from_slice(&lat.to_be_bytes());
        self.out.extend_from_slice(&lon.to_be_bytes());
        self.out.extend_from_slice(&(alt as u32).to_be_bytes());
        Ok(())
    }

    /// Degrees, optional minutes and seconds, then a hemisphere letter:
    /// thousandths of an arc second offset by 2^31.
    fn angle(&mut self, hemi: &[&str; 2], max_deg: u32) -> Result<u32, String> {
        let mut parts: Vec<String> = Vec::new();
        loop {
            let s = self.next("LOC coordinate")?;
            let u = s.to_ascii_uppercase();
            if let Some(k) = hemi.iter().position(|h| *h == u) {
                let (d, m, sec) = match parts.as_slice() {
                    [d] => (d.as_str(), "0", "0"),
                    [d, m] => (d.as_str(), m.as_str(), "0"),
                    [d, m, s] => (d.as_str(), m.as_str(), s.as_str()),
                    _ => return Err("bad LOC coordinate".into()),
                };
                let d: u32 = d.parse().map_err(|_| format!("bad degrees {d:?}"))?;
                let m: u32 = m.parse().map_err(|_| format!("bad minutes {m:?}"))?;
                let sec: f64 = sec.parse().map_err(|_| format!("bad seconds {sec:?}"))?;
                if d > max_deg || m >= 60 || !(0.0..60.0).contains(&sec) {
                    return Err("LOC coordinate out of range".into());
                }
                let v = f64::from((d * 60 + m) * 60) * 1000.0 + (sec * 1000.0).round();
                if v > f64::from(max_deg) * 3_600_000.0 {
                    return Err("LOC coordinate out of range".into());
                }
                let off = 1u64 << 31;
                let v = v as u64;
                return Ok((if k == 0 { off + v } else { off - v }) as u32);
            }
            if parts.len() == 3 {
                return Err(format!("expected {} or {} in LOC", hemi[0], hemi[1]));
            }
            parts.push(s);
        }
    }

    /// A length in meters (`12.5m` or `12.5`), returned in centimeters.
    fn meters(&mut self, what: &str) -> Result<f64, String> {
        let s = self.next(what)?;
        let n = s.strip_suffix(['m', 'M']).unwrap_or(&s);
        let v: f64 = n.parse().map_err(|_| format!("bad {what} {s:?}"))?;
        if !v.is_finite() {
            return Err(format!("bad {what} {s:?}"));
        }
        Ok(v * 100.0)
    }
}

/// RFC 1876 size/precision byte: mantissa and power of ten, in centimeters.
fn precision(cm: f64) -> Result<u8, String> {
    if !(0.0..=9e9).contains(&cm) {
        return Err("LOC size or precision out of range".into());
    }
    let mut v = cm.round() as u64;
    let mut e = 0u8;
    while v >= 10 {
        v /= 10;
        e += 1;
    }
    Ok(((v as u8) << 4) | e)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// Text encodings of RDATA fields: the data-encoding crate, which (like the
// b64_pton of BIND and NSD) rejects non-zero trailing bits.

fn hex(s: &str) -> Option<Vec<u8>> {
    data_encoding::HEXLOWER_PERMISSIVE.decode(s.as_bytes()).ok()
}

/// Base64, padded or not.
fn base64(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    data_encoding::BASE64
        .decode(b)
        .or_else(|_| data_encoding::BASE64_NOPAD.decode(b))
        .ok()
}

/// Base32 with the extended hex alphabet, any case, no padding (RFC 4648
/// §7, NSEC3).
fn base32hex(s: &str) -> Option<Vec<u8>> {
    let up = s.trim_end_matches('=').to_ascii_uppercase();
    data_encoding::BASE32HEX_NOPAD.decode(up.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        s.split_whitespace()
            .map(|t| Tok {
                text: t.to_string(),
                quoted: t.starts_with('"'),
            })
            .collect()
    }

    fn enc(t: u16, s: &str) -> Vec<u8> {
        encode(t, &toks(s), Some(b"\x04test\x00")).unwrap()
    }

    #[test]
    fn ds_and_dnskey() {
        assert_eq!(
            enc(43, "12345 8 2 0123 ABCD"),
            [0x30, 0x39, 8, 2, 0x01, 0x23, 0xab, 0xcd]
        );
        assert_eq!(
            enc(48, "257 3 RSASHA256 AwEAAag="),
            [1, 1, 3, 8, 3, 1, 0, 1, 168]
        );
    }

    #[test]
    fn rrsig_times_and_bitmaps() {
        let r = enc(46, "A 8 2 300 20261231000000 1 12345 test. aGk=");
        // 2026-12-31T00:00:00Z = 1798675200
        assert_eq!(&r[8..12], &1_798_675_200u32.to_be_bytes());
        assert_eq!(&r[12..16], &1u32.to_be_bytes());
        assert_eq!(&r[r.len() - 2..], b"hi");
        // NSEC with A, MX, RRSIG, NSEC, TYPE1234 (window 4).
        let n = enc(47, "b.test. A MX RRSIG NSEC TYPE1234");
        let mut want = vec![0, 6, 0x40, 0x01, 0, 0, 0, 0x03, 4, 27];
        want.extend_from_slice(&[0; 26]);
        want.push(0x20);
        assert_eq!(&n[8..], want.as_slice());
    }

    #[test]
    fn loc_matches_rfc1876_example() {
        // Values as dig and NSD encode them.
        let r = enc(29, "52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m");
        assert_eq!(r[..4], [0, 0x00, 0x16, 0x13]);
        assert_eq!(&r[4..8], &(2_147_483_648u32 + 188_543_000).to_be_bytes());
        assert_eq!(&r[8..12], &(2_147_483_648u32 + 17_612_000).to_be_bytes());
        assert_eq!(&r[12..16], &9_999_800u32.to_be_bytes());
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for (t, s) in [
            (43, "1 8"),
            (48, "257 3 8 !!!"),
            (29, "91 N 0 E 0"),
            (50, "1 0 10 zz 0123 A"),
            (108, "00-11"),
            (46, "BOGUS 8 2 300 1 1 1 test. aGk="),
            (256, ""),
            // A sign is not a hex digit; "aGl=" has non-zero trailing bits.
            (43, "1 8 2 +f"),
            (48, "257 3 8 aGl="),
        ] {
            assert!(encode(t, &toks(s), None).is_err(), "{t} {s}");
        }
    }
}
