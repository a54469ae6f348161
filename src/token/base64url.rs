//! Strict base64url (RFC 4648 §5) as JWS requires it (RFC 7515 §2): no padding, no standard
//! alphabet, no whitespace, and zero trailing bits. Rejecting non-canonical forms means a
//! signature has exactly one spelling, so caches keyed on the token cannot be fooled by
//! re-encodings of the same bytes.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Base64Error;

fn value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

pub fn decode(input: &[u8]) -> Result<Vec<u8>, Base64Error> {
    if input.len() % 4 == 1 {
        return Err(Base64Error);
    }
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut chunks = input.chunks_exact(4);
    for chunk in &mut chunks {
        let mut n = 0u32;
        for &c in chunk {
            n = (n << 6) | value(c).ok_or(Base64Error)?;
        }
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    let rest = chunks.remainder();
    let mut n = 0u32;
    for &c in rest {
        n = (n << 6) | value(c).ok_or(Base64Error)?;
    }
    match rest.len() {
        0 => {}
        2 => {
            if n & 0xF != 0 {
                return Err(Base64Error);
            }
            out.push((n >> 4) as u8);
        }
        3 => {
            if n & 0x3 != 0 {
                return Err(Base64Error);
            }
            out.extend_from_slice(&[(n >> 10) as u8, (n >> 2) as u8]);
        }
        _ => return Err(Base64Error),
    }
    Ok(out)
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub fn encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let emit = chunk.len() + 1;
        for i in 0..emit {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let enc = encode(&data);
            assert!(!enc.contains('='));
            assert_eq!(decode(enc.as_bytes()).unwrap(), data);
        }
    }

    #[test]
    fn known_vectors() {
        assert_eq!(encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(encode(b"fo"), "Zm8");
        assert_eq!(decode(b"Zm8").unwrap(), b"fo");
        assert_eq!(decode(b"_-8").unwrap(), vec![0xff, 0xef]);
    }

    #[test]
    fn rejects_non_canonical_forms() {
        assert_eq!(decode(b"Zm8="), Err(Base64Error), "padding");
        assert_eq!(decode(b"Zm9"), Err(Base64Error), "trailing bits set");
        assert_eq!(decode(b"Zm+v"), Err(Base64Error), "standard alphabet");
        assert_eq!(decode(b"Zm/v"), Err(Base64Error), "standard alphabet");
        assert_eq!(decode(b"Zm 8"), Err(Base64Error), "whitespace");
        assert_eq!(decode(b"Zm9vY"), Err(Base64Error), "impossible length");
        assert_eq!(decode("é".as_bytes()), Err(Base64Error), "non-ascii");
    }
}
