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

/// A JOSE `alg` name. Ed25519 signatures go by two: RFC 9864's fully specified `Ed25519`
/// (what current providers such as oidc-provider 9 sign with) and the older polymorphic
/// `EdDSA`. Both verify alike, but they are different names: an allow-list or a key pinned to
/// one takes tokens under that name only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoseAlg {
    algorithm: Algorithm,
    ed25519: bool,
}

impl JoseAlg {
    pub const ED25519: JoseAlg = JoseAlg { algorithm: Algorithm::EdDSA, ed25519: true };

    pub const fn of(algorithm: Algorithm) -> JoseAlg {
        JoseAlg { algorithm, ed25519: false }
    }

    /// What the signature check runs.
    pub fn algorithm(self) -> Algorithm {
        self.algorithm
    }

    /// The name as a token or JWK spells it.
    pub fn name(self) -> String {
        if self.ed25519 {
            "Ed25519".to_string()
        } else {
            format!("{:?}", self.algorithm)
        }
    }
}

impl From<Algorithm> for JoseAlg {
    fn from(algorithm: Algorithm) -> JoseAlg {
        JoseAlg::of(algorithm)
    }
}

pub fn parse_algorithm(name: &str) -> Result<JoseAlg, String> {
    match name {
        "none" => Err("`none` can never be allowed".to_string()),
        "ES512" => Err("ES512 is not supported (use ES256 or ES384)".to_string()),
        "Ed25519" => Ok(JoseAlg::ED25519),
        other => other.parse::<Algorithm>().map(JoseAlg::of).map_err(|_| format!("unknown algorithm {other:?}")),
    }
}
