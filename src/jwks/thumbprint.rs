//! RFC 7638 JWK thumbprints: what a DPoP-bound token's `cnf.jkt` names.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::token::base64url;

/// base64url(SHA-256) of the JWK's required members, in lexicographic order, as compact JSON
/// (RFC 7638 §3). `None` for a key type without a thumbprint rule here or a missing member.
pub fn jwk_thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let members: &[&str] = match jwk.get("kty")?.as_str()? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (i, name) in members.iter().enumerate() {
        let value = jwk.get(*name)?.as_str()?;
        if i > 0 {
            canonical.push(',');
        }
        // serde_json writes a string with the escaping RFC 7638 §3.3 asks for.
        canonical.push_str(&format!("\"{name}\":{}", Value::String(value.to_string())));
    }
    canonical.push('}');
    Some(base64url::encode(&Sha256::digest(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example() {
        // RFC 7638 §3.1: the RSA key and its thumbprint.
        let jwk: Value = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            jwk_thumbprint(jwk.as_object().unwrap()).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn only_required_members_count_and_their_order_does_not() {
        let a: Value =
            serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AAA", "y": "BBB", "kid": "1", "use": "sig"});
        let b: Value = serde_json::json!({"y": "BBB", "x": "AAA", "crv": "P-256", "kty": "EC"});
        let ta = jwk_thumbprint(a.as_object().unwrap()).unwrap();
        assert_eq!(Some(ta.clone()), jwk_thumbprint(b.as_object().unwrap()));
        let c: Value = serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AAA", "y": "BBC"});
        assert_ne!(Some(ta), jwk_thumbprint(c.as_object().unwrap()));
    }

    #[test]
    fn unknown_types_and_missing_members_have_none() {
        for jwk in [
            serde_json::json!({"kty": "oct", "k": "AAA"}),
            serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AAA"}),
            serde_json::json!({"kty": "RSA", "n": 5, "e": "AQAB"}),
            serde_json::json!({"n": "x", "e": "AQAB"}),
        ] {
            assert_eq!(jwk_thumbprint(jwk.as_object().unwrap()), None, "{jwk}");
        }
    }
}
