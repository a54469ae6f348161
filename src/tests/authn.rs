use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::authn::{authenticate, scopes};
use crate::deny::Reason;
use crate::testkit::*;

fn check(patch_provider: serde_json::Value, token: &str, now: u64) -> Result<crate::authn::Verified, Reason> {
    let p = provider_with(patch_provider);
    authenticate(&p, &keys_of(&p), token, now)
}

fn ok(token: &str) -> crate::authn::Verified {
    check(json!({}), token, NOW).unwrap()
}

fn err(token: &str) -> Reason {
    check(json!({}), token, NOW).unwrap_err()
}

#[test]
fn valid_access_tokens_for_every_default_algorithm() {
    for alg in crate::policy::DEFAULT_ALGORITHMS {
        // The fixture JWKS pins RS256 and PS256 on its RSA keys; RS384 etc. need a key without alg.
        let mut jwks: serde_json::Value = serde_json::from_str(JWKS).unwrap();
        // The Ed25519 key is pinned to `EdDSA`; the `Ed25519` name needs it unpinned too.
        for k in jwks["keys"].as_array_mut().unwrap() {
            if k["kty"] == "RSA" || k["kty"] == "OKP" {
                k.as_object_mut().unwrap().remove("alg");
            }
        }
        let patch = json!({"local_jwks": {"inline_string": jwks.to_string()}});
        let mut header = access_header(alg.algorithm());
        header["alg"] = json!(alg.name());
        let token = sign(alg.algorithm(), header, access_claims());
        let v = check(patch, &token, NOW).unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
        assert_eq!(v.sub.as_deref(), Some("user-1"));
    }
}

#[test]
fn verified_carries_what_forwarding_needs() {
    let token = access_token(json!({}));
    let v = ok(&token);
    assert_eq!(v.payload_b64, token.split('.').nth(1).unwrap());
    assert_eq!(v.kid.as_deref(), Some("rsa-1"));
    assert_eq!(v.exp, Some(NOW + 3600));
    assert_eq!(v.scopes, vec!["read:items", "write:items"]);
}

#[test]
fn shapes_are_named() {
    assert_eq!(err("2YotnFZFEjr1zCsicMWpAA"), Reason::Opaque);
    assert_eq!(err("a.b.c.d.e"), Reason::Jwe);
    assert_eq!(err("a.b"), Reason::Malformed("a JWS has three dot-separated parts"));
    assert_eq!(err("a.b.c.d"), Reason::Malformed("a JWS has three dot-separated parts"));
}

#[test]
fn oversized_tokens_are_refused_before_decoding() {
    let big = format!("{}.{}.{}", "a".repeat(5000), "b".repeat(5000), "c");
    assert_eq!(err(&big), Reason::TooLarge);
    assert_eq!(check(json!({"max_token_size": 100}), &access_token(json!({})), NOW).unwrap_err(), Reason::TooLarge);
}

#[test]
fn algorithm_rules() {
    let claims = access_claims().to_string();
    let none = format!(
        "{}.{}.",
        crate::token::base64url::encode(br#"{"alg":"none"}"#),
        crate::token::base64url::encode(claims.as_bytes())
    );
    assert_eq!(err(&none), Reason::Algorithm);
    let none_sig = format!("{none}AAAA");
    assert_eq!(err(&none_sig), Reason::Algorithm);
    let unknown =
        sign_raw(r#"{"alg":"XS999","kid":"rsa-1"}"#, &claims, Algorithm::RS256, &encoding_key(Algorithm::RS256));
    assert_eq!(err(&unknown), Reason::Algorithm);
    // Allowed by default but not by this provider.
    let es = sign(Algorithm::ES256, access_header(Algorithm::ES256), access_claims());
    assert_eq!(check(json!({"algorithms": ["RS256"]}), &es, NOW).unwrap_err(), Reason::Algorithm);
    // HS256 is never on by default.
    let hs = sign(Algorithm::HS256, json!({"alg": "HS256", "kid": "hs-1"}), access_claims());
    assert_eq!(err(&hs), Reason::Algorithm);
}

#[test]
fn alg_confusion_hs256_signed_with_the_rsa_public_key_fails() {
    // The attacker HMACs with the RSA public key bytes; even with HS256 allowed, RSA keys
    // never verify HMAC tokens.
    let jwks: serde_json::Value = serde_json::from_str(JWKS).unwrap();
    let n = jwks["keys"][0]["n"].as_str().unwrap();
    let mut keys = jwks["keys"].as_array().unwrap().clone();
    keys.push(json!({"kty": "oct", "kid": "hs-1", "k": crate::token::base64url::encode(HMAC_SECRET)}));
    let patch =
        json!({"algorithms": ["RS256", "HS256"], "local_jwks": {"inline_string": json!({"keys": keys}).to_string()}});
    let forged = sign_raw(
        r#"{"alg":"HS256","kid":"rsa-1"}"#,
        &access_claims().to_string(),
        Algorithm::HS256,
        &jsonwebtoken::EncodingKey::from_secret(n.as_bytes()),
    );
    assert_eq!(check(patch.clone(), &forged, NOW).unwrap_err(), Reason::NoCompatibleKey);
    let forged_nokid = sign_raw(
        r#"{"alg":"HS256"}"#,
        &access_claims().to_string(),
        Algorithm::HS256,
        &jsonwebtoken::EncodingKey::from_secret(n.as_bytes()),
    );
    assert_eq!(check(patch.clone(), &forged_nokid, NOW).unwrap_err(), Reason::BadSignature);
    // The real shared secret does verify.
    let real = sign(Algorithm::HS256, json!({"alg": "HS256", "kid": "hs-1", "typ": "at+jwt"}), access_claims());
    assert!(check(patch, &real, NOW).is_ok());
}

#[test]
fn crit_is_refused() {
    let t = sign(Algorithm::RS256, json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"], "exp": 1}), access_claims());
    assert_eq!(err(&t), Reason::Crit);
    let bad = sign(Algorithm::RS256, json!({"alg": "RS256", "kid": "rsa-1", "crit": []}), access_claims());
    assert!(matches!(err(&bad), Reason::Malformed(_)));
}

#[test]
fn issuer_must_match_exactly() {
    assert_eq!(err(&access_token(json!({"iss": "https://issuer.test"}))), Reason::Issuer);
    assert_eq!(err(&access_token(json!({"iss": null}))), Reason::Issuer);
}

#[test]
fn unknown_kid_and_incompatible_key() {
    let t = sign(Algorithm::RS256, json!({"alg": "RS256", "kid": "gone"}), access_claims());
    assert_eq!(err(&t), Reason::UnknownKid);
    // kid names an EC key but the token says RS256.
    let t = sign(Algorithm::RS256, json!({"alg": "RS256", "kid": "ec-1"}), access_claims());
    assert_eq!(err(&t), Reason::NoCompatibleKey);
    // The key pins PS256; an RS256 token naming it must not be checked with it.
    let t = sign(Algorithm::RS256, json!({"alg": "RS256", "kid": "rsa-ps"}), access_claims());
    assert_eq!(err(&t), Reason::NoCompatibleKey);
}

#[test]
fn token_without_kid_tries_every_compatible_key() {
    let t = sign(Algorithm::ES256, json!({"alg": "ES256", "typ": "at+jwt"}), access_claims());
    assert!(check(json!({}), &t, NOW).is_ok());
}

#[test]
fn bad_signature() {
    let t = access_token(json!({}));
    let (head, sig) = t.rsplit_once('.').unwrap();
    let mut bytes = crate::token::base64url::decode(sig.as_bytes()).unwrap();
    bytes[10] ^= 1;
    assert_eq!(err(&format!("{head}.{}", crate::token::base64url::encode(&bytes))), Reason::BadSignature);
    // A token signed by a key that is not in the JWKS but claims a known kid.
    let other = sign_raw(
        &access_header(Algorithm::RS256).to_string(),
        &access_claims().to_string(),
        Algorithm::RS256,
        &rotated_key(),
    );
    assert_eq!(err(&other), Reason::BadSignature);
}

#[test]
fn time_checks_honour_skew_and_zero_means_zero() {
    let t = access_token(json!({"exp": NOW - 30}));
    assert!(check(json!({}), &t, NOW).is_ok(), "within the default 60s skew");
    assert_eq!(check(json!({"clock_skew_seconds": 0}), &t, NOW).unwrap_err(), Reason::Expired);
    let t = access_token(json!({"exp": NOW}));
    assert_eq!(check(json!({"clock_skew_seconds": 0}), &t, NOW).unwrap_err(), Reason::Expired, "exp is exclusive");
    assert!(check(json!({"clock_skew_seconds": 0}), &t, NOW - 1).is_ok());
    let t = access_token(json!({"exp": NOW - 61}));
    assert_eq!(err(&t), Reason::Expired);
    let t = access_token(json!({"nbf": NOW + 60}));
    assert!(check(json!({}), &t, NOW).is_ok(), "nbf within skew");
    let t = access_token(json!({"nbf": NOW + 61}));
    assert_eq!(err(&t), Reason::NotYetValid);
    let t = access_token(json!({"nbf": NOW + 1}));
    assert_eq!(check(json!({"clock_skew_seconds": 0}), &t, NOW).unwrap_err(), Reason::NotYetValid);
}

#[test]
fn expiration_is_required_unless_turned_off() {
    let t = access_token(json!({"exp": null}));
    assert!(matches!(err(&t), Reason::Lifetime(_)));
    assert!(check(json!({"require_expiration": false}), &t, NOW).is_ok());
}

#[test]
fn max_lifetime() {
    let p = json!({"max_lifetime": "3600s"});
    assert!(check(p.clone(), &access_token(json!({"iat": NOW, "exp": NOW + 3600})), NOW).is_ok());
    assert!(matches!(
        check(p.clone(), &access_token(json!({"iat": NOW, "exp": NOW + 3601})), NOW),
        Err(Reason::Lifetime(_))
    ));
    assert!(matches!(check(p, &access_token(json!({"iat": null})), NOW), Err(Reason::Lifetime(_))));
}

#[test]
fn audience_must_intersect_and_is_exact() {
    assert!(check(json!({}), &access_token(json!({"aud": ["other", API]})), NOW).is_ok());
    assert_eq!(err(&access_token(json!({"aud": "https://api.test/"}))), Reason::Audience);
    assert_eq!(err(&access_token(json!({"aud": "http://api.test"}))), Reason::Audience);
    assert_eq!(err(&access_token(json!({"aud": null}))), Reason::Audience);
    assert_eq!(err(&access_token(json!({"aud": []}))), Reason::Audience);
}

#[test]
fn claim_types_are_enforced() {
    for (patch, what) in [
        (json!({"aud": 5}), "aud"),
        (json!({"aud": [API, 5]}), "aud"),
        (json!({"exp": "2000000000"}), "exp"),
        (json!({"exp": -1}), "exp"),
        (json!({"exp": 1e300}), "exp"),
        (json!({"exp": 9_300_000_000_000_000_000u64}), "exp"),
        (json!({"nbf": true}), "nbf"),
        (json!({"iat": [1]}), "iat"),
        (json!({"iss": 1}), "iss"),
        (json!({"sub": {}}), "sub"),
        (json!({"jti": 7}), "jti"),
    ] {
        assert!(matches!(err(&access_token(patch.clone())), Reason::Malformed(m) if m.contains(what)), "{patch}");
    }
    // (The helper drops null claims: this is a token without `aud`. A literal `"aud": null`
    // is malformed, see tests::token::payload_errors.) A fractional exp is truncated.
    assert_eq!(err(&access_token(json!({"aud": null}))), Reason::Audience);
    assert!(check(json!({}), &access_token(json!({"exp": (NOW + 100) as f64 + 0.9})), NOW).is_ok());
}

#[test]
fn duplicate_members_are_refused() {
    let claims = access_claims().to_string();
    let dup_claims = claims.replacen('{', "{\"sub\":\"admin\",", 1);
    let t = sign_raw(
        &access_header(Algorithm::RS256).to_string(),
        &dup_claims,
        Algorithm::RS256,
        &encoding_key(Algorithm::RS256),
    );
    assert_eq!(err(&t), Reason::Malformed("the payload repeats a claim"));
    let t = sign_raw(
        r#"{"alg":"RS256","kid":"rsa-1","alg":"none"}"#,
        &claims,
        Algorithm::RS256,
        &encoding_key(Algorithm::RS256),
    );
    assert_eq!(err(&t), Reason::Malformed("the header repeats a member"));
}

#[test]
fn classification_signals() {
    // ID token by aud = client id.
    assert_eq!(err(&id_token(json!({"nonce": null}))), Reason::IdToken);
    // ID token by nonce even with the API audience.
    assert_eq!(err(&id_token(json!({"aud": API}))), Reason::IdToken);
    // by at_hash / c_hash.
    assert_eq!(err(&id_token(json!({"aud": API, "nonce": null, "at_hash": "x"}))), Reason::IdToken);
    assert_eq!(err(&id_token(json!({"aud": API, "nonce": null, "c_hash": "x"}))), Reason::IdToken);
    // Keycloak: payload typ ID.
    assert_eq!(err(&id_token(json!({"aud": API, "nonce": null, "typ": "ID"}))), Reason::IdToken);
    // Header typ at+jwt wins over every other signal.
    let t = sign(
        Algorithm::RS256,
        access_header(Algorithm::RS256),
        json!({"iss": ISS, "aud": API, "exp": NOW + 10, "nonce": "n"}),
    );
    assert!(check(json!({}), &t, NOW).is_ok());
    let t = sign(
        Algorithm::RS256,
        json!({"alg": "RS256", "kid": "rsa-1", "typ": "application/AT+JWT"}),
        json!({"iss": ISS, "aud": API, "exp": NOW + 10, "nonce": "n"}),
    );
    assert!(check(json!({}), &t, NOW).is_ok(), "typ compares case-insensitively, application/ optional");
    // Without id_token_audiences, an aud mismatch is an audience error.
    assert_eq!(
        check(json!({"id_token_audiences": [], "id_token_claims": []}), &id_token(json!({"nonce": null})), NOW)
            .unwrap_err(),
        Reason::Audience
    );
    // An aud naming both client and API is not an ID token by audience.
    assert!(check(json!({}), &access_token(json!({"aud": [API, CLIENT]})), NOW).is_ok());
    // Custom id_token_claims replace the default list.
    assert!(check(json!({"id_token_claims": ["email"]}), &access_token(json!({"nonce": "x"})), NOW).is_ok());
    let mut c = access_claims();
    merge(&mut c, json!({"email": "x"}));
    let untyped = sign(Algorithm::RS256, json!({"alg": "RS256", "kid": "rsa-1"}), c);
    assert_eq!(check(json!({"id_token_claims": ["email"]}), &untyped, NOW).unwrap_err(), Reason::IdToken);
}

#[test]
fn id_token_is_only_named_after_the_signature_checks_out() {
    let t = id_token(json!({}));
    let (head, _) = t.rsplit_once('.').unwrap();
    let forged = format!("{head}.{}", crate::token::base64url::encode(&[7u8; 256]));
    assert_eq!(err(&forged), Reason::BadSignature);
}

#[test]
fn require_typ() {
    let p = json!({"require_typ": "at+jwt"});
    assert!(check(p.clone(), &access_token(json!({})), NOW).is_ok());
    let t = sign(Algorithm::RS256, json!({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"}), access_claims());
    assert_eq!(check(p.clone(), &t, NOW).unwrap_err(), Reason::Typ);
    let t = sign(Algorithm::RS256, json!({"alg": "RS256", "kid": "rsa-1"}), access_claims());
    assert_eq!(check(p, &t, NOW).unwrap_err(), Reason::Typ);
}

#[test]
fn allowed_client_ids_use_client_id_then_azp() {
    let p = json!({"allowed_client_ids": [CLIENT]});
    assert!(check(p.clone(), &access_token(json!({})), NOW).is_ok());
    assert!(check(p.clone(), &access_token(json!({"azp": null, "client_id": CLIENT})), NOW).is_ok());
    assert_eq!(check(p.clone(), &access_token(json!({"client_id": "other"})), NOW).unwrap_err(), Reason::Client);
    assert_eq!(check(p.clone(), &access_token(json!({"azp": "other"})), NOW).unwrap_err(), Reason::Client);
    assert_eq!(check(p, &access_token(json!({"azp": null})), NOW).unwrap_err(), Reason::Client);
}

#[test]
fn scopes_come_from_scope_scp_and_permissions() {
    let claims = json!({"scope": "a b", "scp": ["c", "a"], "permissions": ["d"]});
    assert_eq!(scopes(claims.as_object().unwrap()), vec!["a", "b", "c", "d"]);
    let claims = json!({"scp": "e f"});
    assert_eq!(scopes(claims.as_object().unwrap()), vec!["e", "f"]);
}

#[test]
fn claim_headers_forward_scalars_and_lists_only() {
    let p = json!({"claim_to_headers": [
        {"header_name": "x-sub", "claim_name": "sub"},
        {"header_name": "x-n", "claim_name": "n"},
        {"header_name": "x-b", "claim_name": "b"},
        {"header_name": "x-list", "claim_name": "roles"},
        {"header_name": "x-nested", "claim_name": "org.id"},
        {"header_name": "x-obj", "claim_name": "org"},
        {"header_name": "x-evil", "claim_name": "evil"},
        {"header_name": "x-absent", "claim_name": "nope"}]});
    let t =
        access_token(json!({"n": 5, "b": true, "roles": ["a", "b"], "org": {"id": "o1"}, "evil": "a\r\nx-admin: 1"}));
    let v = check(p, &t, NOW).unwrap();
    assert_eq!(
        v.claim_headers,
        vec![
            ("x-sub".to_string(), "user-1".to_string()),
            ("x-n".to_string(), "5".to_string()),
            ("x-b".to_string(), "true".to_string()),
            ("x-list".to_string(), "a,b".to_string()),
            ("x-nested".to_string(), "o1".to_string()),
        ]
    );
}

#[test]
fn non_canonical_base64_is_malformed() {
    let t = access_token(json!({}));
    let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
    parts[2].push('=');
    assert!(matches!(err(&parts.join(".")), Reason::Malformed(_)));
    let t = access_token(json!({}));
    let padded_header = format!("{}=", t.split('.').next().unwrap());
    let rest: Vec<&str> = t.split('.').skip(1).collect();
    assert!(matches!(err(&format!("{padded_header}.{}", rest.join("."))), Reason::Malformed(_)));
}

#[test]
fn long_claim_values_are_not_forwarded() {
    let p = json!({"claim_to_headers": [{"header_name": "x-name", "claim_name": "name"}]});
    let long = "n".repeat(crate::authn::MAX_CLAIM_HEADER_BYTES + 1);
    let t = access_token(json!({"name": long}));
    assert!(check(p.clone(), &t, NOW).unwrap().claim_headers.is_empty());
    let t = access_token(json!({"name": "short"}));
    assert_eq!(check(p, &t, NOW).unwrap().claim_headers.len(), 1);
}

#[test]
fn expiry_is_one_rule_with_the_skew() {
    use crate::authn::expired;
    assert!(!expired(100, 99, 0));
    assert!(expired(100, 100, 0), "exp is the first instant the token is invalid");
    assert!(!expired(100, 159, 60));
    assert!(expired(100, 160, 60));
    assert!(!expired(u64::MAX, u64::MAX - 1, 60), "no overflow");
}

/// RFC 9864: `Ed25519` is the fully specified name, `EdDSA` the older polymorphic one. Both are
/// allowed by default; a list or a key pinned to one name takes that name only.
#[test]
fn ed25519_and_eddsa_are_two_names_for_ed25519_keys() {
    let ed_token = |name: &str| {
        let mut header = access_header(Algorithm::EdDSA);
        header["alg"] = json!(name);
        sign(Algorithm::EdDSA, header, access_claims())
    };
    let jwks_with = |pin: Option<&str>| {
        let mut jwks: serde_json::Value = serde_json::from_str(JWKS).unwrap();
        for k in jwks["keys"].as_array_mut().unwrap() {
            if k["kty"] == "OKP" {
                match pin {
                    Some(p) => k["alg"] = json!(p),
                    None => drop(k.as_object_mut().unwrap().remove("alg")),
                }
            }
        }
        json!({"inline_string": jwks.to_string()})
    };
    let (ed25519, eddsa) = (ed_token("Ed25519"), ed_token("EdDSA"));
    // Default allow-list, key without alg: both names.
    let unpinned = json!({"local_jwks": jwks_with(None)});
    assert!(check(unpinned.clone(), &ed25519, NOW).is_ok());
    assert!(check(unpinned, &eddsa, NOW).is_ok());
    // A key pinned to one name takes tokens under that name only.
    let pinned_new = json!({"local_jwks": jwks_with(Some("Ed25519"))});
    assert!(check(pinned_new.clone(), &ed25519, NOW).is_ok());
    assert_eq!(check(pinned_new, &eddsa, NOW).unwrap_err(), Reason::NoCompatibleKey);
    let pinned_old = json!({"local_jwks": jwks_with(Some("EdDSA"))});
    assert!(check(pinned_old.clone(), &eddsa, NOW).is_ok());
    assert_eq!(check(pinned_old, &ed25519, NOW).unwrap_err(), Reason::NoCompatibleKey);
    // `algorithms` names one or the other.
    let only_new = json!({"algorithms": ["Ed25519"], "local_jwks": jwks_with(None)});
    assert!(check(only_new.clone(), &ed25519, NOW).is_ok());
    assert_eq!(check(only_new, &eddsa, NOW).unwrap_err(), Reason::Algorithm);
    let only_old = json!({"algorithms": ["EdDSA"], "local_jwks": jwks_with(None)});
    assert_eq!(check(only_old, &ed25519, NOW).unwrap_err(), Reason::Algorithm);
    // An `Ed25519` token is never checked by another family's key.
    let mut header = access_header(Algorithm::RS256);
    header["alg"] = json!("Ed25519");
    let rsa_signed = sign(Algorithm::RS256, header, access_claims());
    assert!(check(json!({}), &rsa_signed, NOW).is_err());
}
