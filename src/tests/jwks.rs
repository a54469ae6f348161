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
    n_small["n"] = json!(crate::token::base64url::encode(&[0xc1; 128]));
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
    let nokid = json!({"keys": [{"kty": "oct", "k": crate::token::base64url::encode(&[1u8; 32])}]});
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

/// The public JWK of a PKCS#1 DER private key.
fn rsa_jwk(der: &[u8], kid: &str) -> serde_json::Value {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let private = rsa::RsaPrivateKey::from_pkcs1_der(der).unwrap();
    json!({"kty": "RSA", "kid": kid,
           "n": crate::token::base64url::encode(&private.n().to_bytes_be()),
           "e": crate::token::base64url::encode(&private.e().to_bytes_be())})
}

#[test]
fn every_accepted_rsa_size_signs_and_verifies_in_every_path() {
    use crate::crypto::verify;
    use crate::testkit::sign_raw;
    use jsonwebtoken::EncodingKey;
    let sizes: [(&[u8], usize); 6] = [
        (include_bytes!("../testdata/rsa2047_private_pkcs1.der"), 2047),
        (include_bytes!("../testdata/rsa_private_pkcs1.der"), 2048),
        (include_bytes!("../testdata/rsa2056_private_pkcs1.der"), 2056),
        (include_bytes!("../testdata/rsa3000_private_pkcs1.der"), 3000),
        (include_bytes!("../testdata/rsa3072_private_pkcs1.der"), 3072),
        (include_bytes!("../testdata/rsa4096_private_pkcs1.der"), 4096),
    ];
    for (der, bits) in sizes {
        let set = KeySet::parse(json!({"keys": [rsa_jwk(der, "k")]}).to_string().as_bytes()).unwrap();
        let key = &set.keys()[0];
        // The fast verifier takes whole 2048/3072/4096-bit lengths; the rest go to `rsa`.
        assert_eq!(key.prepared.is_some(), [256, 384, 512].contains(&bits.div_ceil(8)), "{bits} bits");
        let signing = EncodingKey::from_rsa_der(der);
        for alg in [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::PS512] {
            let token = sign_raw(&format!(r#"{{"alg":"{alg:?}","kid":"k"}}"#), r#"{"sub":"x"}"#, alg, &signing);
            let jwt = crate::token::parse(&token).unwrap();
            let ctx = format!("{bits} bits, {alg:?}");
            assert_eq!(crate::authn::signature::verify_signature(&jwt, alg, &set), Ok(()), "{ctx}");
            // Both paths, the prepared key's and jsonwebtoken's, accept it and refuse a change.
            let msg = jwt.signing_input.as_bytes();
            for prepared in [key.prepared.as_deref(), None] {
                assert!(verify(msg, &jwt.signature, &key.decoding, prepared, alg).unwrap(), "{ctx}");
                let mut bad = jwt.signature.clone();
                bad[10] ^= 1;
                assert!(!verify(msg, &bad, &key.decoding, prepared, alg).unwrap_or(false), "{ctx}");
            }
        }
    }
}

#[test]
fn rsa_keys_over_4096_bits_are_skipped_with_the_reason() {
    let big = rsa_jwk(include_bytes!("../testdata/rsa8192_private_pkcs1.der"), "big");
    let good = rsa_jwk(include_bytes!("../testdata/rsa_private_pkcs1.der"), "good");
    let set = KeySet::parse(json!({"keys": [big, good]}).to_string().as_bytes()).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(set.skipped, vec!["key 0: RSA modulus of 1024 bytes (2048 to 4096 bits allowed)".to_string()]);
    let mut n = vec![0xc3u8; 513];
    n[512] = 1;
    let just_over = json!({"kty": "RSA", "n": crate::token::base64url::encode(&n), "e": "AQAB"});
    assert!(KeySet::parse(json!({"keys": [just_over]}).to_string().as_bytes()).is_err(), "4097+ bits");
}

#[test]
fn keys_are_prepared_when_parsed_up_to_a_cap() {
    let set = KeySet::parse(JWKS.as_bytes()).unwrap();
    for k in set.keys() {
        let fast = matches!(k.family, Family::Rsa | Family::P256 | Family::P384);
        assert_eq!(k.prepared.is_some(), fast, "{k:?}");
    }
    assert!(set.warnings.is_empty());
    // 20 P-256 keys: 16 prepared, 4 verify through jsonwebtoken, and a warning says so.
    let doc: serde_json::Value = serde_json::from_str(JWKS).unwrap();
    let ec = doc["keys"].as_array().unwrap().iter().find(|k| k["crv"] == "P-256").unwrap().clone();
    let many: Vec<serde_json::Value> = (0..20)
        .map(|i| {
            let mut k = ec.clone();
            k["kid"] = json!(format!("ec-{i}"));
            k
        })
        .collect();
    let set = KeySet::parse(json!({ "keys": many }).to_string().as_bytes()).unwrap();
    assert_eq!(set.keys().iter().filter(|k| k.prepared.is_some()).count(), 16);
    assert_eq!(set.warnings.len(), 1, "{:?}", set.warnings);
    assert!(set.warnings[0].contains("4 P256 keys past the first 16"), "{:?}", set.warnings);
}

#[test]
fn a_token_is_checked_against_at_most_three_keys() {
    let doc: serde_json::Value = serde_json::from_str(JWKS).unwrap();
    let rsa = doc["keys"].as_array().unwrap().iter().find(|k| k["kid"] == "rsa-1").unwrap().clone();
    let with_kids = |kids: &[Option<&str>]| {
        let keys: Vec<serde_json::Value> = kids
            .iter()
            .map(|kid| {
                let mut k = rsa.clone();
                match kid {
                    Some(id) => k["kid"] = json!(id),
                    None => {
                        k.as_object_mut().unwrap().remove("kid");
                    }
                }
                k
            })
            .collect();
        KeySet::parse(json!({ "keys": keys }).to_string().as_bytes()).unwrap()
    };
    let three = with_kids(&[Some("a"), Some("b"), Some("c")]);
    assert_eq!(three.select(Algorithm::RS256, None).unwrap().len(), 3, "no kid, three keys: each tried");
    let four = with_kids(&[Some("a"), Some("b"), Some("c"), Some("d")]);
    assert_eq!(four.select(Algorithm::RS256, None).unwrap_err(), SelectError::Ambiguous(4));
    assert_eq!(four.select(Algorithm::RS256, Some("b")).unwrap().len(), 1, "a kid picks one");
    // Keys without kid match every kid, and so do duplicated kids: bounded the same way.
    let kidless = with_kids(&[None, None, None, None]);
    assert_eq!(kidless.select(Algorithm::RS256, Some("x")).unwrap_err(), SelectError::Ambiguous(4));
    let dupes = with_kids(&[Some("a"), Some("a"), Some("a"), Some("a"), Some("b")]);
    assert_eq!(dupes.select(Algorithm::RS256, Some("a")).unwrap_err(), SelectError::Ambiguous(4));
    assert_eq!(dupes.select(Algorithm::RS256, Some("b")).unwrap().len(), 1);
}
