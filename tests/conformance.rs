//! Peer test vectors (Google's jwt_verify_lib and Envoy's jwt_authn, see
//! tests/vectors/conformance/README.md) run through jwt-guard's core verifier.
//!
//! Every case must agree with its expected outcome, except the deliberate differences listed
//! in `DIFFERENCES`, each with its reason. A listed case that starts agreeing fails the test
//! too, so the list never goes stale.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::Algorithm;
use jwt_guard::authn::{authenticate, check_time};
use jwt_guard::deny::Reason;
use jwt_guard::jwks::KeySet;
use jwt_guard::policy::{Config, Issuers, KeySource, Provider, DEFAULT_ALGORITHMS};
use jwt_guard::token;
use jwt_guard::token::vocabulary::parse_algorithm;
use serde_json::Value;

fn dir() -> PathBuf {
    match std::env::var_os("JWT_GUARD_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/conformance"),
    }
}

fn load(name: &str) -> Vec<Value> {
    let path = dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set JWT_GUARD_CONFORMANCE_DIR)", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn wall_clock() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A provider with jwt_verify_lib's policy: every algorithm we implement, no issuer or
/// audience unless the case sets one, `exp` optional, and no ID-token classification.
fn base_provider() -> Provider {
    let cfg = r#"{"providers":{"c":{"issuer":"x","audiences":["x"],"local_jwks":{"inline_string":"{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}"}}}}"#;
    let mut p = Config::parse(cfg.as_bytes()).unwrap().providers.remove(0);
    p.issuers = None;
    p.audiences = vec![];
    p.require_expiration = false;
    p.id_token_claims = vec![];
    p.id_token_audiences = vec![];
    p.max_token_size = 1 << 20;
    let mut algs = DEFAULT_ALGORITHMS.to_vec();
    algs.extend([Algorithm::HS256, Algorithm::HS384, Algorithm::HS512].map(jwt_guard::token::vocabulary::JoseAlg::of));
    p.algorithms = algs;
    p.keys = KeySource::Local(KeySet::default());
    p
}

/// What jwt-guard says about one case: Ok, or the stable reason string.
fn verdict(case: &Value) -> Result<(), String> {
    let stage = case["stage"].as_str().unwrap();
    let tok = case["token"].as_str().unwrap_or("");
    if stage == "parse" || stage == "time" {
        // Parse stage: jwt_verify_lib's `Jwt::parseFromString`, which also knows the algorithms.
        return match token::shape(tok) {
            token::Shape::Jws => token::parse(tok)
                .map_err(|r| r.as_str().to_string())
                .and_then(|jwt| parse_algorithm(&jwt.header.alg).map(|_| ()).map_err(|_| "algorithm".to_string())),
            _ => Err("malformed".into()),
        };
    }
    let keys = match case["key_format"].as_str().unwrap() {
        "jwks" | "pem" | "x509_map" if !case["jwks"].is_null() => KeySet::parse(case["jwks"].to_string().as_bytes()),
        "jwks_text" => KeySet::parse(case["jwks_text"].as_str().unwrap().as_bytes()),
        _ => return Err("no_keys".into()),
    }
    .map_err(|e| format!("jwks: {e}"))?;
    let mut p = base_provider();
    if let Some(iss) = case["issuer"].as_str() {
        p.issuers = Some(Issuers::single(iss));
    }
    if let Some(auds) = case["audiences"].as_array() {
        p.audiences = auds.iter().map(|a| a.as_str().unwrap().to_string()).collect();
    }
    let prov = &case["provider"];
    if let Some(skew) = prov["clock_skew_seconds"].as_u64() {
        p.clock_skew_seconds = skew;
    }
    if let Some(max) = prov["max_lifetime_seconds"].as_u64() {
        p.max_lifetime_seconds = Some(max);
    }
    if prov["require_expiration"].as_bool() == Some(true) {
        p.require_expiration = true;
    }
    let now = match &case["now"] {
        Value::Number(n) => n.as_u64().unwrap(),
        _ => wall_clock(),
    };
    authenticate(&p, &keys, tok, now).map(|_| ()).map_err(|r| r.as_str().to_string())
}

/// Does our reason name the same cause as the suite's status? A reject for another reason
/// would be an agreement by coincidence, which hides a gap.
fn same_cause(theirs: &str, ours: &str) -> bool {
    match theirs {
        // Envoy also reports its lifetime policy as JwtVerificationFail.
        "JwtVerificationFail" => ours == "bad_signature" || ours == "lifetime",
        "JwtEd25519SignatureWrongLength" => ours == "bad_signature",
        "JwksKidAlgMismatch" => ours == "unknown_kid",
        "JwtAudienceNotAllowed" => ours == "audience",
        "JwtUnknownIssuer" => ours == "issuer",
        "JwtExpired" => ours == "expired",
        "JwtNotYetValid" => ours == "not_yet_valid",
        "JwtBadFormat" => ours == "malformed" || ours == "opaque",
        "JwtHeaderBadAlg" | "JwtHeaderNotImplementedAlg" => ours == "algorithm" || ours == "malformed",
        t if t.starts_with("Jwks") => ours.starts_with("jwks:"),
        t if t.starts_with("Jwt") => ours == "malformed",
        _ => false,
    }
}

/// Deliberate differences: case id → why jwt-guard answers otherwise.
/// A derived case (`base~mutation`) shares its base case's entry.
fn differences() -> BTreeMap<&'static str, &'static str> {
    const ES512: &str = "ES512 is not supported: jsonwebtoken has no P-521, so ES512 tokens are refused as `algorithm`";
    const X509: &str = "keys come from JWKS only; Google's {kid: certificate} x509 map is not accepted";
    const PEM_ONLY: &str =
        "PEM-only case whose key attributes were set in memory; the data set has no JWKS form, so no keys";
    BTreeMap::from([
        ("ec-es512-kid", ES512),
        ("ec-envoy-es512veryshort", ES512),
        ("pem-ec-es512", ES512),
        ("corpus-pem", "P-521 (ES512) key: unsupported, see ES512"),
        ("x509-rs256-nokid", X509),
        ("x509-rs256-real", X509),
        ("corpus-x509", X509),
        ("pem-ec-es256-key-alg-es512", PEM_ONLY),
        ("pem-okp-key-alg-rs256", PEM_ONLY),
        ("aud-not-allowed", "an audience-only case with no key material; the audience rule itself is covered by the unit tests"),
        ("pem-ec-es256-token-p384-key", "an ES256 token with only a P-384 key: we refuse before crypto because no key can check ES256 \
                                         (reason unknown_kid: no compatible key), the library tries and fails the signature"),
        ("time-nbf-exp", "its signature is non-canonical base64url (non-zero trailing bits); jwt-guard accepts only canonical \
                          base64url so a token has exactly one spelling"),
        ("envoy-require-exp-ok", "the recorded provider issuer (https://spiffe.example.com) differs from the token's iss \
                                  (https://example.com); jwt-guard always checks iss"),
        ("envoy-require-exp-reject", "rejected, but for the issuer mismatch above before the missing exp"),
        ("envoy-subject-prefix-reject", "rejected, but for an issuer mismatch: jwt-guard has no `subjects` matcher \
                                         (use allowed_client_ids and scopes)"),
    ])
}

fn difference_for<'a>(diffs: &'a BTreeMap<&'static str, &'static str>, id: &str) -> Option<&'a &'static str> {
    diffs.get(id).or_else(|| diffs.get(id.split('~').next().unwrap_or(id)))
}

fn run(file: &str) -> (usize, usize) {
    let cases = load(file);
    let diffs = differences();
    let mut agree = 0;
    let mut listed = 0;
    let mut failures = Vec::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let expect_ok = case["expect"] == "ok";
        let got = verdict(case);
        let agrees = match &got {
            Ok(()) => expect_ok,
            Err(ours) => !expect_ok && same_cause(case["reason"].as_str().unwrap(), ours),
        };
        match (agrees, difference_for(&diffs, id)) {
            (true, None) => agree += 1,
            (false, Some(_)) => listed += 1,
            (true, Some(why)) => failures.push(format!("{id}: listed as a difference ({why}) but now agrees")),
            (false, None) => failures
                .push(format!("{id}: expected {} ({}), jwt-guard says {:?}", case["expect"], case["reason"], got)),
        }
    }
    println!("{file}: {} cases, {agree} agree, {listed} deliberate differences", cases.len());
    assert!(failures.is_empty(), "{} unexplained disagreements:\n{}", failures.len(), failures.join("\n"));
    (agree, listed)
}

#[test]
fn jwt_verify_lib_vectors() {
    let (agree, listed) = run("jwt_verify_lib.json");
    assert_eq!(agree + listed, 181);
}

#[test]
fn envoy_jwt_authn_vectors() {
    let (agree, listed) = run("envoy_jwt_authn.json");
    assert_eq!(agree + listed, 24);
}

#[test]
fn time_constraint_vectors() {
    let cases = load("jwt_verify_lib.json");
    let mut checked = 0;
    for case in cases.iter().filter(|c| c["stage"] == "time") {
        // Only the claims matter here (the signature is non-canonical base64url, see above).
        let claims = token::parse_claims(case["token"].as_str().unwrap().split('.').nth(1).unwrap()).unwrap();
        for tc in case["time_checks"].as_array().unwrap() {
            let mut p = base_provider();
            p.clock_skew_seconds = tc["clock_skew"].as_u64().unwrap();
            let got = check_time(&p, claims.exp, claims.nbf, tc["now"].as_u64().unwrap());
            let want = tc["reason"].as_str().unwrap();
            let got_name = match got {
                Ok(()) => "Ok",
                Err(r) if r.as_str() == "expired" => "JwtExpired",
                Err(r) if r.as_str() == "not_yet_valid" => "JwtNotYetValid",
                Err(_) => "other",
            };
            assert_eq!(got_name, want, "{tc}");
            checked += 1;
        }
    }
    println!("time constraints: {checked} checks agree");
    assert_eq!(checked, 8);
}

/// jwt_verify_lib ignores an `http(s)://` prefix and a trailing `/` when matching audiences;
/// jwt-guard matches exactly (so `http://api` never stands in for `https://api`). Each check
/// runs through the product: an HS256 token with the case's `aud`, authenticated by a provider
/// whose audiences are the case's. Every disagreement must be explained by exact matching.
#[test]
fn audience_vectors() {
    fn normalize(a: &str) -> &str {
        let a = a.strip_prefix("https://").or_else(|| a.strip_prefix("http://")).unwrap_or(a);
        a.strip_suffix('/').unwrap_or(a)
    }
    let secret = [0u8; 32];
    let keys = KeySet::parse(br#"{"keys":[{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}"#).unwrap();
    let now = wall_clock();
    let cases = load("audience_checks.json");
    let (mut agree, mut by_rule) = (0, 0);
    for c in &cases {
        let allowed: Vec<String> =
            c["allowed"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        let aud: Vec<&str> = c["token_aud"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let mut provider = base_provider();
        provider.audiences = allowed.clone();
        let claims = serde_json::json!({"aud": aud, "exp": now + 3600});
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .unwrap();
        let ours = match authenticate(&provider, &keys, &token, now) {
            Ok(_) => true,
            Err(Reason::Audience) => false,
            Err(other) => panic!("{c}: refused for {other:?}, not the audience"),
        };
        let theirs = c["expect_allowed"].as_bool().unwrap();
        if ours == theirs {
            agree += 1;
        } else {
            let normalized = aud.iter().any(|a| allowed.iter().any(|b| normalize(b) == normalize(a)));
            assert!(theirs && normalized, "unexplained audience disagreement: {c}");
            by_rule += 1;
        }
    }
    println!("audience_checks.json: {} checks, {agree} agree, {by_rule} differ only by exact matching", cases.len());
    assert_eq!(agree + by_rule, 40);
}
