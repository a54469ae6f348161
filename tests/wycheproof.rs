//! Google's Wycheproof vectors (vendored in tests/vectors/wycheproof, see vendor.py there) on
//! every signature path jwt-guard has: each key goes through `KeySet::parse` as a JWK, as a
//! JWKS would bring it, and each signature is checked through the prepared fast verifier
//! (`crypto::rsa` on both engines, `crypto::ecdsa`) and without a prepared key (per-call setup,
//! ed25519-dalek for EdDSA), both through `crypto::verify`, and through jsonwebtoken's own
//! rust_crypto verifier as a reference.
//!
//! `make test` runs this natively and, built for wasm32-wasip1, inside node's V8, where the
//! fast RSA path is rsa_montgomery's SIMD code. Each signature also goes through
//! `crypto::verify_once`, the path of keys used once (DPoP proofs).
//!
//! Expected: "valid" verifies; "invalid" does not; "acceptable" (only RSA PKCS#1 v1.5
//! signatures whose DigestInfo omits the NULL parameters) does not either: JWS verification is
//! strict there, as `rsa` and Envoy's jwt_authn (BoringSSL) are. A key that `KeySet::parse`
//! refuses verifies nothing, so all of its tests must be invalid ones.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
use jsonwebtoken::Algorithm;
use jwt_guard::crypto::{self, rsa::PublicKey};
use jwt_guard::jwks::KeySet;
use jwt_guard::token::base64url;
use serde_json::{json, Value};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

fn b64(bytes: &[u8]) -> String {
    base64url::encode(bytes)
}

/// The group's key as a JWK, pinned to `alg`.
fn jwk(alg: Algorithm, key: &Value) -> Value {
    let field = |k: &str| hex(key[k].as_str().unwrap());
    match alg {
        Algorithm::ES256 | Algorithm::ES384 => {
            let point = field("point");
            let (crv, len) = if alg == Algorithm::ES256 { ("P-256", 32) } else { ("P-384", 48) };
            if point.len() != 1 + 2 * len || point[0] != 4 {
                // Not an uncompressed point of this curve: no JWK can carry it.
                return json!({"kty": "EC", "crv": crv, "alg": format!("{alg:?}"), "x": "", "y": ""});
            }
            json!({"kty": "EC", "crv": crv, "alg": format!("{alg:?}"), "x": b64(&point[1..1 + len]), "y": b64(&point[1 + len..])})
        }
        Algorithm::EdDSA => json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "x": b64(&field("pk"))}),
        _ => json!({"kty": "RSA", "alg": format!("{alg:?}"), "n": b64(&field("n")), "e": b64(&field("e"))}),
    }
}

struct Counts {
    tests: usize,
    valid: usize,
    checks: usize,
    refused_keys: usize,
}

fn run(alg: Algorithm, text: &str) -> Counts {
    let vectors: Value = serde_json::from_str(text).unwrap();
    let mut c = Counts { tests: 0, valid: 0, checks: 0, refused_keys: 0 };
    for group in vectors["groups"].as_array().unwrap() {
        let jwks = json!({"keys": [jwk(alg, &group["key"])]}).to_string();
        let tests = group["tests"].as_array().unwrap();
        let keys = KeySet::parse(jwks.as_bytes()).ok().filter(|k| !k.is_empty());
        let Some(keys) = keys else {
            for t in tests {
                assert_eq!(t["result"], "invalid", "{alg:?} {} tcId {}: key refused", group["file"], t["tcId"]);
            }
            c.refused_keys += 1;
            c.tests += tests.len();
            continue;
        };
        let key = &keys.keys()[0];
        let rsa_engines = match alg {
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
                let k = &group["key"];
                let (n, e) = (hex(k["n"].as_str().unwrap()), hex(k["e"].as_str().unwrap()));
                vec![PublicKey::with_montgomery28(&n, &e), PublicKey::with_crypto_bigint(&n, &e)]
            }
            _ => vec![],
        };
        if !rsa_engines.is_empty() {
            assert!(rsa_engines.iter().all(Option::is_some) && key.prepared.is_some(), "{alg:?}: RSA key prepared");
        }
        if matches!(alg, Algorithm::ES256 | Algorithm::ES384) {
            assert!(key.prepared.is_some(), "{alg:?}: EC key prepared");
        }
        for t in tests {
            let (msg, sig) = (hex(t["msg"].as_str().unwrap()), hex(t["sig"].as_str().unwrap()));
            let want = t["result"] == "valid";
            let what = format!("{alg:?} {} tcId {} ({}, {})", group["file"], t["tcId"], t["comment"], t["flags"]);
            let fast = crypto::verify(&msg, &sig, &key.decoding, key.prepared.as_deref(), alg).unwrap_or(false);
            assert_eq!(fast, want, "{what}: prepared path");
            let fallback = crypto::verify(&msg, &sig, &key.decoding, None, alg).unwrap_or(false);
            assert_eq!(fallback, want, "{what}: unprepared path");
            // jsonwebtoken's own rust_crypto verifier, which the unprepared path replaced.
            let reference = (DEFAULT_PROVIDER.verifier_factory)(&alg, &key.decoding)
                .is_ok_and(|v| v.verify(&msg, &sig.clone()).is_ok());
            assert_eq!(reference, want, "{what}: jsonwebtoken's verifier");
            let once = crypto::verify_once(&msg, &sig, &key.decoding, alg).unwrap_or(false);
            assert_eq!(once, want, "{what}: one-shot path (a DPoP proof's key)");
            c.checks += 4;
            for engine in rsa_engines.iter().flatten() {
                assert_eq!(engine.verify(alg, &msg, &sig), want, "{what}: an RSA engine");
                c.checks += 1;
            }
            c.tests += 1;
            c.valid += usize::from(want);
        }
    }
    c
}

macro_rules! wycheproof {
    ($name:ident, $alg:ident, $min_tests:expr) => {
        #[test]
        fn $name() {
            let c = run(Algorithm::$alg, include_str!(concat!("vectors/wycheproof/", stringify!($alg), ".json")));
            println!(
                "{}: {} Wycheproof tests ({} valid), {} verifications, {} keys refused by KeySet::parse, all as expected",
                stringify!($alg),
                c.tests,
                c.valid,
                c.checks,
                c.refused_keys
            );
            assert!(c.tests >= $min_tests && c.valid > 0);
        }
    };
}

wycheproof!(rs256, RS256, 776);
wycheproof!(rs384, RS384, 776);
wycheproof!(rs512, RS512, 778);
wycheproof!(ps256, PS256, 324);
wycheproof!(ps384, PS384, 282);
wycheproof!(ps512, PS512, 179);
wycheproof!(es256, ES256, 262);
wycheproof!(es384, ES384, 280);
wycheproof!(eddsa, EdDSA, 151);
