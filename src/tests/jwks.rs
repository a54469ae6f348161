use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::jwks::*;
use crate::testkit::JWKS;

#[test]
fn parses_the_fixture() {
    let set = KeySet::parse(JWKS.as_bytes()).unwrap();
    assert_eq!(set.len(), 5);
    assert!(set.skipped.is_empty());
}

#[test]
fn document_errors() {
    assert!(matches!(KeySet::parse(b"<html>"), Err(JwksError::NotJson(_))));
    assert_eq!(KeySet::parse(b"{}").unwrap_err(), JwksError::NoKeysMember);
    assert_eq!(KeySet::parse(br#"{"keys": 1}"#).unwrap_err(), JwksError::NoKeysMember);
    assert_eq!(KeySet::parse(br#"{"keys": []}"#).unwrap_err(), JwksError::NoUsableKeys(vec![]));
}

#[test]
fn unusable_keys_are_skipped_and_good_ones_kept() {
    let good: serde_json::Value = serde_json::from_str(JWKS).unwrap();
    let good_key = good["keys"][0].clone();
    let mut n_small = good_key.clone();
    n_small["n"] = json!(crate::base64url::encode(&[0xc1; 128]));
    let mut e_odd = good_key.clone();
    e_odd["e"] = json!("Aw0");
    let bad = vec![
        json!({"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}),
        json!({"kty": "XYZ"}),
        json!({"kid": "no-kty"}),
        json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}),
        json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}),
        json!({"kty": "OKP", "crv": "X25519", "x": "AA"}),
        json!({"kty": "oct", "k": ""}),
        json!({"kty": "RSA", "n": "+/+/", "e": "AQAB"}),
        json!({"kty": "RSA", "alg": "ES256", "n": good_key["n"], "e": "AQAB"}),
        json!({"kty": "RSA", "alg": "RS999", "n": good_key["n"], "e": "AQAB"}),
        json!({"kty": "RSA", "kid": 5, "n": good_key["n"], "e": "AQAB"}),
        json!({"kty": "RSA", "key_ops": ["encrypt"], "n": good_key["n"], "e": "AQAB"}),
        n_small,
        e_odd,
        json!("string"),
    ];
    let mut keys = bad.clone();
    keys.push(good_key);
    let set = KeySet::parse(json!({"keys": keys}).to_string().as_bytes()).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(set.skipped.len(), bad.len());
    let only_bad = KeySet::parse(json!({"keys": bad}).to_string().as_bytes()).unwrap_err();
    assert!(matches!(only_bad, JwksError::NoUsableKeys(v) if v.len() == 15));
}

#[test]
fn selection_rules() {
    let set = KeySet::parse(JWKS.as_bytes()).unwrap();
    assert_eq!(set.select(Algorithm::RS256, Some("rsa-1")).unwrap().len(), 1);
    assert_eq!(set.select(Algorithm::RS256, None).unwrap().len(), 1, "rsa-ps pins PS256");
    assert_eq!(set.select(Algorithm::RS256, Some("nope")).unwrap_err(), SelectError::UnknownKid);
    assert_eq!(set.select(Algorithm::RS256, Some("ec-1")).unwrap_err(), SelectError::NoCompatibleKey);
    assert_eq!(set.select(Algorithm::ES384, Some("ec-1")).unwrap_err(), SelectError::NoCompatibleKey);
    assert_eq!(set.select(Algorithm::HS256, None).unwrap_err(), SelectError::NoCompatibleKey);
    // Keys without kid match any token kid (jwt_verify_lib's rule).
    let nokid = json!({"keys": [{"kty": "oct", "k": crate::base64url::encode(&[1u8; 32])}]});
    let set = KeySet::parse(nokid.to_string().as_bytes()).unwrap();
    assert_eq!(set.select(Algorithm::HS256, Some("anything")).unwrap().len(), 1);
    // RFC 7518 §3.2: a 32-byte secret is too short for HS512.
    assert_eq!(set.select(Algorithm::HS512, None).unwrap_err(), SelectError::NoCompatibleKey);
}

#[test]
fn key_debug_never_prints_material() {
    let set = KeySet::parse(JWKS.as_bytes()).unwrap();
    let text = format!("{:?}", set.keys()[0]);
    assert!(!text.contains("n:") && text.contains("rsa-1"));
}
