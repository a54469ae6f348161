//! Big-endian integers as JWKs and signatures carry them, shared by both RSA engines.

/// A big-endian integer without its leading zero bytes (JWK `n` and `e` may carry them).
pub fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}
