//! RFC 3986 percent-encoding, read strictly: the one place a `%XX` escape is taken apart, for
//! tokens in a query string (`decision::extractor`) and DPoP `htu` paths (`authn::dpop`).

/// The byte the escape at `bytes[i]` (a `%`) stands for: `None` unless exactly two hex digits
/// follow (`u8::from_str_radix` alone would take "%+1" as 0x01).
pub fn escape_at(bytes: &[u8], i: usize) -> Option<u8> {
    let hex = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
    u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}
