//! Certificate-bound tokens (RFC 8705): `cnf["x5t#S256"]` against the connection's client
//! certificate, alone and beside a DPoP binding.

use super::*;

fn cert_digest(der: &[u8]) -> (String, Vec<u8>) {
    let d = Sha256::digest(der).to_vec();
    (base64url::encode(&d), d.iter().map(|b| format!("{b:02x}")).collect::<String>().into_bytes())
}

#[test]
fn a_certificate_bound_token_needs_that_certificate() {
    let (x5t, hex) = cert_digest(b"client certificate one");
    let (_, other_hex) = cert_digest(b"client certificate two");
    let t = access_token(json!({"cnf": {"x5t#S256": x5t}}));
    let auth = format!("Bearer {t}");
    let mut w = World::with_dpop(json!({}));
    assert_eq!(denied(&w.send("GET", &auth, &[])).0, Reason::CertMissing);
    w.peer_certificate = Some(Vec::new());
    assert_eq!(denied(&w.send("GET", &auth, &[])).0, Reason::CertMissing, "an empty property is no certificate");
    w.peer_certificate = Some(other_hex);
    let (r, c) = denied(&w.send("GET", &auth, &[]));
    assert_eq!(r, Reason::CertMismatch);
    assert!(c.starts_with("Bearer realm=") && c.contains("error=\"invalid_token\""), "{c}");
    w.peer_certificate = Some(hex.clone());
    assert!(allowed(&w.send("GET", &auth, &[])));
    // Bytes, not spellings: upper case and colons name the same digest.
    let upper: Vec<u8> = hex.to_ascii_uppercase();
    w.peer_certificate = Some(upper);
    assert!(allowed(&w.send("GET", &auth, &[])));
    // An unbound token never asks for the certificate.
    w.peer_certificate = None;
    assert!(allowed(&w.send("GET", &format!("Bearer {}", access_token(json!({}))), &[])));
}

#[test]
fn hex_digests_parse_strictly() {
    let hex = "ab".repeat(32);
    assert_eq!(parse_hex_digest(hex.as_bytes()), Some([0xab; 32]));
    let colons = vec!["AB"; 32].join(":");
    assert_eq!(parse_hex_digest(colons.as_bytes()), Some([0xab; 32]));
    for bad in ["", "ab", &"zz".repeat(32), &format!("+{}", "a".repeat(63)), &"ab".repeat(33)] {
        assert_eq!(parse_hex_digest(bad.as_bytes()), None, "{bad}");
    }
}

#[test]
fn both_bindings_are_enforced_together() {
    let (x5t, hex) = cert_digest(b"cert");
    let t = access_token(json!({"cnf": {"jkt": ec_jkt(), "x5t#S256": x5t}}));
    let mut w = World::with_dpop(json!({}));
    assert_eq!(denied(&w.send("GET", &format!("DPoP {t}"), &[&proof_for(&t, "1")])).0, Reason::CertMissing);
    w.peer_certificate = Some(hex);
    assert!(allowed(&w.send("GET", &format!("DPoP {t}"), &[&proof_for(&t, "2")])));
}

#[test]
fn a_cnf_we_cannot_read_or_enforce_is_refused() {
    let mut w = World::with_dpop(json!({}));
    for cnf in [
        json!("x"),
        json!({"jkt": 5}),
        json!({"jkt": "short"}),
        json!({"x5t#S256": "AAAA"}),
        json!({"jwk": {"kty": "EC"}}),
    ] {
        let t = access_token(json!({"cnf": cnf}));
        let (r, _) = denied(&w.send("GET", &format!("Bearer {t}"), &[]));
        assert!(matches!(r, Reason::Malformed(_)), "{cnf}: {r:?}");
    }
    assert!(allowed(&w.send("GET", &format!("Bearer {}", access_token(json!({"cnf": {}}))), &[])));
}
