//! A token through the whole verifier: parse, classify, check and verify against a fixed
//! JWKS (RSA, EC, Ed25519 and an HMAC key), plus the log summary.
#![no_main]
use std::sync::OnceLock;

use jwt_guard::authn::authenticate;
use jwt_guard::jwks::KeySet;
use jwt_guard::policy::{Config, Provider};
use jwt_guard::token;
use libfuzzer_sys::fuzz_target;

fn setup() -> &'static (Provider, KeySet) {
    static SETUP: OnceLock<(Provider, KeySet)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let mut jwks: serde_json::Value = serde_json::from_str(include_str!("../../src/testdata/jwks.json")).unwrap();
        jwks["keys"].as_array_mut().unwrap().push(serde_json::json!({"kty": "oct", "kid": "hs-1",
            "k": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVm"}));
        let cfg = serde_json::json!({"providers": {"p": {"issuer": "https://issuer.test/", "audiences": ["https://api.test"],
            "id_token_audiences": ["client-1"], "max_lifetime": "86400s", "allowed_client_ids": ["client-1"],
            "algorithms": ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA", "HS256"],
            "local_jwks": {"inline_string": jwks.to_string()}}}});
        let provider = Config::parse(cfg.to_string().as_bytes()).unwrap().providers.remove(0);
        let keys = KeySet::parse(jwks.to_string().as_bytes()).unwrap();
        (provider, keys)
    })
}

fuzz_target!(|data: &[u8]| {
    let (provider, keys) = setup();
    let text = String::from_utf8_lossy(data);
    let _ = authenticate(provider, keys, &text, 1_800_000_000);
    let _ = token::summarize(&text);
    if let Ok(jwt) = token::parse(&text) {
        let _ = jwt_guard::authn::token_kind::classify(provider, &jwt.header, &jwt.claims);
    }
});
