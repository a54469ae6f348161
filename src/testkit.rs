//! Test helpers: fixed keys (generated once, in `testdata/`), configs and token minting with
//! arbitrary headers and claims. Unit tests use it directly; tests/ and benches/ through the
//! `testkit` feature, so test constants are defined once.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};

use crate::jwks::KeySet;
use crate::policy::{Config, KeySource, Provider};
use crate::token::base64url;

pub const JWKS: &str = include_str!("testdata/jwks.json");
pub const JWKS_ROTATED: &str = include_str!("testdata/jwks_rotated.json");
pub const ISS: &str = "https://issuer.test/";
pub const API: &str = "https://api.test";
pub const CLIENT: &str = "client-1";
pub const NOW: u64 = 1_800_000_000;
pub const HMAC_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub fn provider_json() -> Value {
    json!({
        "issuer": ISS,
        "audiences": [API],
        "id_token_audiences": [CLIENT],
        "local_jwks": {"inline_string": JWKS},
    })
}

/// A config with one provider `p` built from `provider_json()` plus `patch`, and `top`
/// merged at the top level.
pub fn config_with(patch: Value, top: Value) -> Config {
    let mut p = provider_json();
    merge(&mut p, patch);
    let mut c = json!({"providers": {"p": p}});
    merge(&mut c, top);
    Config::parse(c.to_string().as_bytes()).unwrap()
}

pub fn merge(base: &mut Value, patch: Value) {
    if let (Some(b), Value::Object(p)) = (base.as_object_mut(), patch) {
        for (k, v) in p {
            if v.is_null() {
                b.remove(&k);
            } else {
                b.insert(k, v);
            }
        }
    }
}

pub fn provider_with(patch: Value) -> Provider {
    config_with(patch, json!({})).providers.remove(0)
}

pub fn keys_of(p: &Provider) -> KeySet {
    match &p.keys {
        KeySource::Local(k) => k.clone(),
        KeySource::Remote(_) => KeySet::parse(JWKS.as_bytes()).unwrap(),
    }
}

pub fn encoding_key(alg: Algorithm) -> EncodingKey {
    match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => EncodingKey::from_rsa_der(include_bytes!("testdata/rsa_private_pkcs1.der")),
        Algorithm::ES256 => EncodingKey::from_ec_der(include_bytes!("testdata/ec_private_pkcs8.der")),
        Algorithm::ES384 => EncodingKey::from_ec_der(include_bytes!("testdata/ec384_private_pkcs8.der")),
        Algorithm::EdDSA => EncodingKey::from_ed_der(include_bytes!("testdata/ed_private_pkcs8.der")),
        _ => EncodingKey::from_secret(HMAC_SECRET),
    }
}

pub fn rotated_key() -> EncodingKey {
    EncodingKey::from_rsa_der(include_bytes!("testdata/rsa2_private_pkcs1.der"))
}

/// Signs exactly the given header and claims JSON (so tests can craft odd headers).
pub fn sign_raw(header: &str, claims: &str, alg: Algorithm, key: &EncodingKey) -> String {
    let input = format!("{}.{}", base64url::encode(header.as_bytes()), base64url::encode(claims.as_bytes()));
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap();
    format!("{input}.{sig}")
}

pub fn kid_for(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512 => "rsa-ps",
        Algorithm::ES256 => "ec-1",
        Algorithm::ES384 => "ec384-1",
        Algorithm::EdDSA => "ed-1",
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => "hs-1",
        _ => "rsa-1",
    }
}

pub fn sign(alg: Algorithm, header: Value, claims: Value) -> String {
    sign_raw(&header.to_string(), &claims.to_string(), alg, &encoding_key(alg))
}

pub fn access_claims() -> Value {
    json!({"iss": ISS, "aud": API, "sub": "user-1", "azp": CLIENT, "iat": NOW - 10, "exp": NOW + 3600,
           "scope": "read:items write:items"})
}

pub fn access_header(alg: Algorithm) -> Value {
    json!({"alg": format!("{alg:?}"), "kid": kid_for(alg), "typ": "at+jwt"})
}

/// A valid RS256 access token with `patch` applied to its claims.
pub fn access_token(patch: Value) -> String {
    let mut c = access_claims();
    merge(&mut c, patch);
    sign(Algorithm::RS256, access_header(Algorithm::RS256), c)
}

pub fn id_token(patch: Value) -> String {
    let mut c = json!({"iss": ISS, "aud": CLIENT, "sub": "user-1", "iat": NOW - 10, "exp": NOW + 3600,
                       "nonce": "abc", "email": "u@example.com"});
    merge(&mut c, patch);
    sign(Algorithm::RS256, json!({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"}), c)
}

/// The public JWK of a key in `JWKS` (`ec-1`, `ed-1`, `rsa-1`...), without `kid`, `alg`,
/// `use` and `key_ops`: what a DPoP client puts in its proof header.
pub fn public_jwk(kid: &str) -> Value {
    let doc: Value = serde_json::from_str(JWKS).unwrap();
    let mut jwk = doc["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).unwrap().clone();
    for m in ["kid", "alg", "use", "key_ops"] {
        jwk.as_object_mut().unwrap().remove(m);
    }
    jwk
}

/// The claims of a valid DPoP proof for `method` `htu` and `token`, issued at `NOW`.
pub fn dpop_claims(jti: &str, method: &str, htu: &str, token: &str) -> Value {
    json!({"jti": jti, "htm": method, "htu": htu, "iat": NOW, "ath": crate::authn::dpop::access_token_hash(token)})
}

/// The URL the DPoP tests' requests address (`https`, `api.test`, `/items`).
pub const DPOP_HTU: &str = "https://api.test/items";

/// The thumbprint of the `ec-1` test key, which DPoP tests' clients sign their proofs with.
pub fn ec_jkt() -> String {
    crate::jwks::jwk_thumbprint(public_jwk("ec-1").as_object().unwrap()).unwrap()
}

/// An access token bound to the `ec-1` key (`cnf.jkt`).
pub fn bound_token() -> String {
    access_token(json!({"cnf": {"jkt": ec_jkt()}}))
}

/// A fresh ES256 proof by `ec-1` for GET `DPOP_HTU` with `token`.
pub fn proof_for(token: &str, jti: &str) -> String {
    dpop_proof(Algorithm::ES256, public_jwk("ec-1"), json!({}), dpop_claims(jti, "GET", DPOP_HTU, token))
}

/// A DPoP proof signed by `alg`'s test key, carrying `jwk`, with `header` and `claims` patches.
pub fn dpop_proof(alg: Algorithm, jwk: Value, header: Value, claims: Value) -> String {
    let mut h = json!({"typ": "dpop+jwt", "alg": format!("{alg:?}"), "jwk": jwk});
    merge(&mut h, header);
    sign_raw(&h.to_string(), &claims.to_string(), alg, &encoding_key(alg))
}
