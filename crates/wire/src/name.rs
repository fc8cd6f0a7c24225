//! Domain names in uncompressed wire form (length-prefixed labels ending in a
//! zero byte).

/// Longest name in wire form (RFC 1035 §3.1).
pub const MAX_NAME_LEN: usize = 255;

/// A name in wire form held in a fixed buffer (no allocation).
#[derive(Clone)]
pub struct NameBuf {
    bytes: [u8; MAX_NAME_LEN],
    len: usize,
}

impl Default for NameBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl NameBuf {
    /// The root name.
    pub const fn new() -> Self {
        NameBuf {
            bytes: [0; MAX_NAME_LEN],
            len: 1,
        }
    }

    /// The wire bytes, including the final zero byte.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Replace the content by `wire` (which must be a valid wire name).
    pub fn set(&mut self, wire: &[u8]) {
        let n = wire.len().min(MAX_NAME_LEN);
        self.bytes[..n].copy_from_slice(&wire[..n]);
        self.len = n;
    }

    /// Replace the content by the labels `prefix` followed by the wire name
    /// `suffix` (a DNAME substitution), cut at [`MAX_NAME_LEN`]: the caller
    /// checks the length first.
    pub fn set_concat(&mut self, prefix: &[u8], suffix: &[u8]) {
        let p = prefix.len().min(MAX_NAME_LEN);
        self.bytes[..p].copy_from_slice(&prefix[..p]);
        let s = suffix.len().min(MAX_NAME_LEN - p);
        self.bytes[p..p + s].copy_from_slice(&suffix[..s]);
        self.len = p + s;
    }

    /// Lowercase ASCII letters in place. Label length bytes are at most 63 and
    /// therefore never in `A..=Z`, so lowercasing the whole buffer is safe.
    pub fn make_lowercase(&mut self) {
        self.bytes[..self.len].make_ascii_lowercase();
    }
}

/// A name that could not be read from a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadName;

/// Parse a possibly compressed name starting at `off` in `msg` into `out`.
///
/// Returns the offset just past the name as it appears at `off` (past the
/// first pointer if the name is compressed). Pointers must point strictly
/// backwards, so loops are impossible; the work is bounded by the packet.
pub fn parse_name(msg: &[u8], mut off: usize, out: &mut NameBuf) -> Result<usize, BadName> {
    let mut len = 0usize;
    let mut end: Option<usize> = None;
    let mut limit = off; // pointers must go below this
    let mut hops = 0u32;
    loop {
        let b = *msg.get(off).ok_or(BadName)?;
        match b & 0xC0 {
            0x00 => {
                let l = b as usize;
                if len + 1 + l > MAX_NAME_LEN {
                    return Err(BadName);
                }
                if l == 0 {
                    out.bytes[len] = 0;
                    out.len = len + 1;
                    return Ok(end.unwrap_or(off + 1));
                }
                let label = msg.get(off + 1..off + 1 + l).ok_or(BadName)?;
                out.bytes[len] = b;
                out.bytes[len + 1..len + 1 + l].copy_from_slice(label);
                len += 1 + l;
                off += 1 + l;
            }
            0xC0 => {
                let lo = *msg.get(off + 1).ok_or(BadName)?;
                let target = (((b & 0x3F) as usize) << 8) | lo as usize;
                if end.is_none() {
                    end = Some(off + 2);
                }
                hops += 1;
                if target >= limit || hops > 127 {
                    return Err(BadName);
                }
                limit = target;
                off = target;
            }
            _ => return Err(BadName),
        }
    }
}

/// Parse the question name at offset 12 of a query into `out`, lowercased.
/// The name must be uncompressed (a pointer could only point into the
/// header); returns the offset just past it. Same limits as [`parse_name`].
pub(crate) fn parse_question_name(msg: &[u8], out: &mut NameBuf) -> Result<usize, BadName> {
    // Check the label lengths first, then copy and lowercase the whole name
    // in one pass: the length bytes (at most 63) are not letters, so
    // lowercasing them is harmless, and one long pass beats one per label.
    let mut off = 12usize;
    loop {
        let l = *msg.get(off).ok_or(BadName)? as usize;
        if l > 63 || off - 12 + 1 + l > MAX_NAME_LEN {
            return Err(BadName);
        }
        off += 1 + l;
        if l == 0 {
            break;
        }
    }
    let name = msg.get(12..off).ok_or(BadName)?;
    let dst = &mut out.bytes[..name.len()];
    dst.copy_from_slice(name);
    dst.make_ascii_lowercase();
    out.len = name.len();
    Ok(off)
}

/// A fast 64-bit hash of a wire name (FxHash-style, 8 bytes a step), for
/// in-memory tables; not for anything an attacker must not steer.
#[inline]
pub fn name_hash(name: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = 0u64;
    let mut chunks = name.chunks_exact(8);
    for c in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(b)).wrapping_mul(K);
    }
    let mut b = [0u8; 8];
    let rest = chunks.remainder();
    b[..rest.len()].copy_from_slice(rest);
    (h.rotate_left(5) ^ u64::from_le_bytes(b)).wrapping_mul(K)
}

/// Copy `src` into `dst` lowercased.
pub fn lower_wire(src: &[u8], dst: &mut NameBuf) {
    dst.set(src);
    dst.make_lowercase();
}

/// Offsets of the start of each label of a wire name, the root excluded.
/// Returns the number of labels written into `out`.
pub fn label_offsets(name: &[u8], out: &mut [u8; 128]) -> usize {
    let mut n = 0;
    let mut off = 0usize;
    while let Some(&l) = name.get(off) {
        if l == 0 || n == out.len() {
            break;
        }
        out[n] = off as u8;
        n += 1;
        off += 1 + l as usize;
    }
    n
}

/// Parse a presentation-format absolute or relative name (`www.example.` or
/// `www.example`, both taken as absolute) into wire form. Supports `\.` and
/// `\DDD` escapes. Used for configuration, not on the query path.
pub fn name_from_text(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    if text == "." || text.is_empty() {
        return Ok(vec![0]);
    }
    let mut out = Vec::with_capacity(text.len() + 2);
    let mut label: Vec<u8> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    let flush = |label: &mut Vec<u8>, out: &mut Vec<u8>| -> Result<(), String> {
        if label.is_empty() {
            return Err(format!("empty label in name {text:?}"));
        }
        if label.len() > 63 {
            return Err(format!("label longer than 63 octets in name {text:?}"));
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label);
        label.clear();
        Ok(())
    };
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\\' {
            let d = bytes.get(i + 1..i + 4);
            if let Some(d) = d.filter(|d| d.iter().all(u8::is_ascii_digit)) {
                let v =
                    (d[0] - b'0') as u32 * 100 + (d[1] - b'0') as u32 * 10 + (d[2] - b'0') as u32;
                if v > 255 {
                    return Err(format!("bad escape in name {text:?}"));
                }
                label.push(v as u8);
                i += 4;
            } else if let Some(&n) = bytes.get(i + 1) {
                label.push(n);
                i += 2;
            } else {
                return Err(format!("dangling backslash in name {text:?}"));
            }
        } else if c == b'.' {
            flush(&mut label, &mut out)?;
            i += 1;
        } else {
            label.push(c);
            i += 1;
        }
    }
    if !label.is_empty() {
        flush(&mut label, &mut out)?;
    }
    out.push(0);
    if out.len() > MAX_NAME_LEN {
        return Err(format!("name longer than 255 octets: {text:?}"));
    }
    Ok(out)
}

/// Presentation form of a wire name, with a trailing dot.
pub fn name_to_text(wire: &[u8]) -> String {
    let mut s = String::with_capacity(wire.len() + 1);
    let mut off = 0usize;
    while let Some(&l) = wire.get(off) {
        if l == 0 {
            break;
        }
        let label = wire.get(off + 1..off + 1 + l as usize).unwrap_or(&[]);
        for &c in label {
            match c {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                    s.push('\\');
                    s.push(c as char);
                }
                0x21..=0x7E => s.push(c as char),
                _ => s.push_str(&format!("\\{c:03}")),
            }
        }
        s.push('.');
        off += 1 + l as usize;
    }
    if s.is_empty() {
        s.push('.');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_roundtrip() {
        let w = name_from_text("www.Example.").unwrap();
        assert_eq!(w, b"\x03www\x07Example\x00");
        assert_eq!(name_to_text(&w), "www.Example.");
        assert_eq!(name_from_text(".").unwrap(), vec![0]);
        assert!(name_from_text("a..b").is_err());
    }

    #[test]
    fn pointer_loops_rejected() {
        // a name at 12 pointing to itself
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(&[0xC0, 12]);
        let mut n = NameBuf::new();
        assert!(parse_name(&msg, 12, &mut n).is_err());
        // forward pointer
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(&[0xC0, 14, 0]);
        assert!(parse_name(&msg, 12, &mut n).is_err());
    }

    #[test]
    fn backward_pointer_ok() {
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(b"\x03abc\x00");
        msg.extend_from_slice(b"\x01x\xC0\x0C");
        let mut n = NameBuf::new();
        let end = parse_name(&msg, 17, &mut n).unwrap();
        assert_eq!(end, msg.len());
        assert_eq!(n.as_bytes(), b"\x01x\x03abc\x00");
    }

    #[test]
    fn offsets() {
        let mut o = [0u8; 128];
        let n = label_offsets(b"\x01a\x02bc\x00", &mut o);
        assert_eq!(&o[..n], &[0, 2]);
    }
}
