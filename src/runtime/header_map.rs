//! The proxy-wasm serialized header map, read without copying: a little-endian u32 count,
//! then a (name length, value length) u32 pair per header, then each name and value followed
//! by a NUL. Parsing it here, instead of through the SDK's owned `Vec<(String, Vec<u8>)>`,
//! saves two allocations per header on every request, and never panics on odd bytes.

/// Borrowed `(name, value)` pairs. Names that are not UTF-8 are skipped: no header jwt-guard
/// reads or writes can have one.
pub fn parse(buf: &[u8]) -> Vec<(&str, &[u8])> {
    let word = |at: usize| -> Option<usize> {
        let b = buf.get(at..at + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let Some(count) = word(0) else { return Vec::new() };
    // Each header needs at least 8 bytes of sizes and 2 NULs: bound before allocating.
    let count = count.min(buf.len() / 10);
    let mut out = Vec::with_capacity(count);
    let mut data = 4 + count * 8;
    for i in 0..count {
        let (Some(klen), Some(vlen)) = (word(4 + i * 8), word(8 + i * 8)) else { break };
        let Some(key) = buf.get(data..data + klen) else { break };
        let vstart = data + klen + 1;
        let Some(value) = buf.get(vstart..vstart + vlen) else { break };
        data = vstart + vlen + 1;
        if let Ok(name) = std::str::from_utf8(key) {
            out.push((name, value));
        }
    }
    out
}

/// The inverse, for tests and fake hosts.
pub fn serialize(pairs: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let pairs: Vec<(&str, &[u8])> =
            vec![(":path", b"/x"), ("authorization", b"Bearer t"), ("empty", b""), ("bin", b"\xff\x00\xfe")];
        assert_eq!(parse(&serialize(&pairs)), pairs);
        assert_eq!(parse(&serialize(&[])), vec![]);
    }

    #[test]
    fn garbage_never_panics_and_yields_what_is_whole() {
        let good = serialize(&[("a", b"1"), ("b", b"2")]);
        for cut in 0..good.len() {
            let _ = parse(&good[..cut]);
        }
        assert_eq!(parse(&good[..good.len() - 1]).len(), 2, "only the final NUL is missing");
        assert_eq!(parse(&good[..good.len() - 2]).len(), 1, "a cut value is dropped");
        let mut huge = vec![0xff, 0xff, 0xff, 0xff];
        huge.extend_from_slice(&[0xff; 64]);
        assert!(parse(&huge).is_empty());
        let bad_name =
            serialize(&[("ok", b"1")]).iter().map(|b| if *b == b'o' { 0xff } else { *b }).collect::<Vec<_>>();
        assert!(parse(&bad_name).is_empty(), "non-UTF-8 names are skipped");
    }
}
