//! JOSE vocabulary shared by the configuration and the checks: algorithm names and `typ`.

use jsonwebtoken::Algorithm;

/// `typ` values compare case-insensitively and `application/` may be omitted (RFC 7515 §4.1.9).
pub fn normalize_typ(typ: &str) -> String {
    let lower = typ.to_ascii_lowercase();
    match lower.strip_prefix("application/") {
        Some(rest) => rest.to_string(),
        None => lower,
    }
}

pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    match name {
        "none" => Err("`none` can never be allowed".to_string()),
        "ES512" => Err("ES512 is not supported (use ES256 or ES384)".to_string()),
        other => other.parse::<Algorithm>().map_err(|_| format!("unknown algorithm {other:?}")),
    }
}
