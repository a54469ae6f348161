//! Host micro-benchmark of the core: time per verification, per algorithm, cold (signature
//! checked) and cached (engine with a warm cache), plus where a cold verify spends its time.
//! `cargo bench --bench core`. Native timings: inside V8 everything is several times slower,
//! but the proportions are what a change is judged by. `make bench-core` also runs this same
//! benchmark built for wasm32-wasip1 inside V8 (Node.js), when `node` is installed.

// Bench code: a panic is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey};
use jwt_guard::authn::authenticate;
use jwt_guard::decision::{no_peer_certificate, Engine, Request};
use jwt_guard::jwks::KeySet;
use jwt_guard::jwks::{KeyState, KidRefetch};
use jwt_guard::policy::{Config, KeySource};
use jwt_guard::token::{self, base64url};
use serde_json::json;

use jwt_guard::testkit::JWKS;

/// Counts live heap bytes, to measure what a cache entry costs.
struct Counting;

static LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn sign(alg: Algorithm, kid: &str, key: &EncodingKey) -> String {
    sign_for("user-1", alg, kid, key)
}

fn sign_for(sub: &str, alg: Algorithm, kid: &str, key: &EncodingKey) -> String {
    let header = json!({"alg": format!("{alg:?}"), "kid": kid, "typ": "at+jwt"}).to_string();
    let claims = json!({"iss": "https://issuer.test/", "aud": "https://api.test", "sub": sub, "azp": "client-1",
                        "iat": 1_800_000_000u64, "exp": 4_000_000_000u64, "scope": "read:items write:items"})
    .to_string();
    let input = format!("{}.{}", base64url::encode(header.as_bytes()), base64url::encode(claims.as_bytes()));
    format!("{input}.{}", jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap())
}

/// Time per call: the fastest of 5 batches of at least 60 ms each (this machine's neighbours
/// make single runs noisy; the fastest batch is the code's own cost).
fn time<F: FnMut()>(name: &str, mut f: F) -> Duration {
    for _ in 0..20 {
        f();
    }
    let mut iters = 1u32;
    loop {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        if start.elapsed() > Duration::from_millis(60) {
            break;
        }
        iters *= 2;
    }
    let best = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed() / iters
        })
        .min()
        .unwrap_or_default();
    println!("{name:<44} {:>10.2} µs", best.as_secs_f64() * 1e6);
    best
}

fn main() {
    let cfg = json!({"providers": {"p": {"issuer": "https://issuer.test/", "audiences": ["https://api.test"],
                     "local_jwks": {"inline_string": JWKS}}}});
    let config = Config::parse(cfg.to_string().as_bytes()).unwrap();
    let provider = config.providers[0].clone();
    let KeySource::Local(keys) = &provider.keys else { unreachable!() };
    let keys: KeySet = keys.clone();
    let now = 1_800_000_100;
    let cases = [
        (
            "RS256",
            sign(
                Algorithm::RS256,
                "rsa-1",
                &EncodingKey::from_rsa_der(include_bytes!("../src/testdata/rsa_private_pkcs1.der")),
            ),
        ),
        (
            "PS256",
            sign(
                Algorithm::PS256,
                "rsa-ps",
                &EncodingKey::from_rsa_der(include_bytes!("../src/testdata/rsa_private_pkcs1.der")),
            ),
        ),
        (
            "ES256",
            sign(
                Algorithm::ES256,
                "ec-1",
                &EncodingKey::from_ec_der(include_bytes!("../src/testdata/ec_private_pkcs8.der")),
            ),
        ),
        (
            "ES384",
            sign(
                Algorithm::ES384,
                "ec384-1",
                &EncodingKey::from_ec_der(include_bytes!("../src/testdata/ec384_private_pkcs8.der")),
            ),
        ),
        (
            "EdDSA",
            sign(
                Algorithm::EdDSA,
                "ed-1",
                &EncodingKey::from_ed_der(include_bytes!("../src/testdata/ed_private_pkcs8.der")),
            ),
        ),
    ];
    println!("jwt-guard core, native host timings per operation");
    for (name, tok) in &cases {
        assert!(authenticate(&provider, &keys, tok, now).is_ok(), "{name}");
        time(&format!("{name} cold: authenticate (all checks + signature)"), || {
            black_box(authenticate(&provider, &keys, black_box(tok), now).unwrap());
        });
    }
    let (_, rs) = &cases[0];
    time("RS256 parse only (shape, base64url, JSON, claims)", || {
        black_box(token::parse(black_box(rs)).unwrap());
    });
    let jwt = token::parse(rs).unwrap();
    time("RS256 signature only", || {
        jwt_guard::authn::signature::verify_signature(black_box(&jwt), Algorithm::RS256, &keys).unwrap();
    });
    // The RSA public operation on each engine (crypto::rsa_montgomery is the one wasm SIMD
    // builds use; natively its column sums are scalar and crypto-bigint is faster).
    for (bits, der) in [
        (2048, &include_bytes!("../src/testdata/rsa_private_pkcs1.der")[..]),
        (3072, &include_bytes!("../src/testdata/rsa3072_private_pkcs1.der")[..]),
        (4096, &include_bytes!("../src/testdata/rsa4096_private_pkcs1.der")[..]),
    ] {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;
        let public = rsa::RsaPrivateKey::from_pkcs1_der(der).unwrap().to_public_key();
        let (n, e) = (public.n().to_bytes_be(), public.e().to_bytes_be());
        let sig = base64url::decode(
            jsonwebtoken::crypto::sign(b"message", &EncodingKey::from_rsa_der(der), Algorithm::RS256)
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        use jwt_guard::crypto::rsa::PublicKey;
        let ours = PublicKey::with_montgomery28(&n, &e).unwrap();
        let bigint = PublicKey::with_crypto_bigint(&n, &e).unwrap();
        assert!(ours.verify(Algorithm::RS256, b"message", &sig) && bigint.verify(Algorithm::RS256, b"message", &sig));
        time(&format!("RSA-{bits} s^e mod n, rsa_montgomery"), || {
            black_box(ours.public_op(black_box(&sig)).unwrap());
        });
        time(&format!("RSA-{bits} s^e mod n, crypto-bigint"), || {
            black_box(bigint.public_op(black_box(&sig)).unwrap());
        });
        time(&format!("RSA-{bits} key setup, rsa_montgomery"), || {
            black_box(PublicKey::with_montgomery28(black_box(&n), &e).unwrap());
        });
        time(&format!("RSA-{bits} key setup, crypto-bigint"), || {
            black_box(PublicKey::with_crypto_bigint(black_box(&n), &e).unwrap());
        });
    }
    let ec_point = [
        &[4u8][..],
        &base64url::decode(b"evaiEcvSj7xAfy7HfdnGNi4phgT_KKspKOafzeCKsGQ").unwrap(),
        &base64url::decode(b"nmLi8CYP6W65VxmfOHw2ulG564zqjpn_KmzDhzXzsTE").unwrap(),
    ]
    .concat();
    time("ES256 key setup (its table of multiples, once per key)", || {
        black_box(jwt_guard::crypto::ecdsa::es256::PublicKey::from_sec1_bytes(black_box(&ec_point)).unwrap());
    });
    let p384_point: Vec<u8> = {
        let jwks: serde_json::Value = serde_json::from_str(JWKS).unwrap();
        let k = jwks["keys"].as_array().unwrap().iter().find(|k| k["crv"] == "P-384").unwrap();
        let c = |n: &str| base64url::decode(k[n].as_str().unwrap().as_bytes()).unwrap();
        [vec![4u8], c("x"), c("y")].concat()
    };
    time("ES384 key setup (its table of multiples, once per key)", || {
        black_box(jwt_guard::crypto::ecdsa::es384::PublicKey::from_sec1_bytes(black_box(&p384_point)).unwrap());
    });
    // A DPoP proof as a client sends one: its key is new to us (no table of multiples), so
    // this is the proof's whole cost on a request whose token is already cached.
    for alg in [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA, Algorithm::RS256, Algorithm::PS256] {
        use jwt_guard::authn::client_keys::ClientKeys;
        use jwt_guard::authn::dpop::{check_proof, ProofRequest};
        use jwt_guard::testkit::{dpop_claims, dpop_proof, kid_for, public_jwk};
        let (htu, bound) = ("https://api.test/items", "a.bound.token");
        let proof = dpop_proof(alg, public_jwk(kid_for(alg)), json!({}), dpop_claims("j-1", "GET", htu, bound));
        let jkt = jwt_guard::jwks::jwk_thumbprint(public_jwk(kid_for(alg)).as_object().unwrap()).unwrap();
        let req = ProofRequest {
            method: "GET",
            htu,
            token: bound,
            jkt: &jkt,
            now: jwt_guard::testkit::NOW,
            nonce_secret: None,
        };
        let dpop = jwt_guard::policy::Dpop { algorithms: vec![alg.into()], ..Default::default() };
        assert!(check_proof(proof.as_bytes(), &req, &dpop, 60, &mut ClientKeys::new(0)).is_ok(), "{alg:?}");
        time(&format!("DPoP proof {alg:?}: check_proof, a new client"), || {
            black_box(check_proof(black_box(proof.as_bytes()), &req, &dpop, 60, &mut ClientKeys::new(0)).unwrap());
        });
        // A returning client: its key was prepared on its second proof.
        let mut returning = ClientKeys::default();
        for _ in 0..2 {
            check_proof(proof.as_bytes(), &req, &dpop, 60, &mut returning).unwrap();
        }
        time(&format!("DPoP proof {alg:?}: check_proof, a returning client"), || {
            black_box(check_proof(black_box(proof.as_bytes()), &req, &dpop, 60, &mut returning).unwrap());
        });
    }
    let forged = format!("{}AAAA", &rs[..rs.len() - 4]);
    time("RS256 forged, cold (no negative cache)", || {
        black_box(authenticate(&provider, &keys, black_box(&forged), now).unwrap_err());
    });

    let engine = Engine::new(config);
    let mut caches = engine.new_caches();
    let states = [KeyState::Ready(&keys, KidRefetch::Exhausted)];
    for (name, tok) in &cases {
        let auth = format!("Bearer {tok}");
        let headers: Vec<(&str, &[u8])> =
            vec![(":method", b"GET"), (":path", b"/api/items"), ("authorization", auth.as_bytes())];
        let req =
            Request { method: "GET", path: "/api/items", headers: &headers, peer_certificate: &no_peer_certificate };
        time(&format!("{name} cached: engine decision, warm cache"), || {
            black_box(engine.decide(&req, &states, now, &mut caches));
        });
    }

    // Claim rules: one route with 5 entries against the same route without them, on a cached
    // token that satisfies all 5 (the whole list is read). The difference is their cost.
    let rsa_key = EncodingKey::from_rsa_der(include_bytes!("../src/testdata/rsa_private_pkcs1.der"));
    let header = json!({"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"}).to_string();
    let claims =
        json!({"iss": "https://issuer.test/", "aud": "https://api.test", "sub": "user-1", "iat": 1_800_000_000u64,
                        "exp": 4_000_000_000u64, "scope": "read:items write:items", "tid": "t-1",
                        "groups": ["eng", "oncall", "admins"], "realm_access": {"roles": ["viewer", "editor"]},
                        "https://example.com/roles": ["billing"]})
        .to_string();
    let input = format!("{}.{}", base64url::encode(header.as_bytes()), base64url::encode(claims.as_bytes()));
    let rich =
        format!("Bearer {input}.{}", jsonwebtoken::crypto::sign(input.as_bytes(), &rsa_key, Algorithm::RS256).unwrap());
    let five = json!([{"name": "groups", "values": ["admins", "owners"]}, {"name": "realm_access.roles", "values": ["edit*"]},
                      {"name": "tid", "values": ["t-1"]}, {"name": "scope", "values": ["write:items"]},
                      {"path": ["https://example.com/roles"], "not_values": ["suspended"]}]);
    for (label, claim_rules) in [("no claim rules", json!([])), ("5 claim entries", five)] {
        let mut cfg = cfg.clone();
        cfg["rules"] = json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}, "claims": claim_rules}]);
        let engine = Engine::new(Config::parse(cfg.to_string().as_bytes()).unwrap());
        let mut caches = engine.new_caches();
        let headers: Vec<(&str, &[u8])> =
            vec![(":method", b"GET"), (":path", b"/api/items"), ("authorization", rich.as_bytes())];
        let req =
            Request { method: "GET", path: "/api/items", headers: &headers, peer_certificate: &no_peer_certificate };
        assert!(matches!(engine.decide(&req, &states, now, &mut caches), jwt_guard::decision::Outcome::Allow { .. }));
        time(&format!("RS256 cached, a rule with {label}: engine decision"), || {
            black_box(engine.decide(&req, &states, now, &mut caches));
        });
    }

    // Request and principal conditions (issue 27): header, host and principal conditions on one
    // rule, and two unmet `allow` rules before the one that allows, each against a plain rule.
    let conditions = json!({"headers": [{"name": "x-env", "exact_match": "prod"}, {"name": ":authority", "suffix_match": ".example.com"}],
                            "hosts": ["api.example.com", "api.example.com:*"], "not_hosts": ["*.internal"]});
    let plain = json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]);
    let mut with_conditions = plain.clone();
    with_conditions[0]["match"].as_object_mut().unwrap().extend(conditions.as_object().unwrap().clone());
    with_conditions[0]["principals"] = json!(["https://issuer.test//user-*"]);
    with_conditions[0]["not_principals"] = json!(["*/banned"]);
    let allow = |p: &str| json!({"match": {"prefix": "/"}, "action": "allow", "requires": {"provider_name": "p"}, "principals": [p]});
    let fall_through = json!([allow("https://issuer.test//admin"), allow("https://issuer.test//ops"), allow("*")]);
    for (label, rules) in [
        ("a plain rule", plain),
        ("header, host and principal conditions", with_conditions),
        ("two unmet allow rules before it", fall_through),
    ] {
        let mut cfg = cfg.clone();
        cfg["rules"] = rules;
        let engine = Engine::new(Config::parse(cfg.to_string().as_bytes()).unwrap());
        let mut caches = engine.new_caches();
        let headers: Vec<(&str, &[u8])> = vec![
            (":method", b"GET"),
            (":path", b"/api/items"),
            (":authority", b"api.example.com"),
            ("x-env", b"prod"),
            ("authorization", rich.as_bytes()),
        ];
        let req =
            Request { method: "GET", path: "/api/items", headers: &headers, peer_certificate: &no_peer_certificate };
        assert!(matches!(engine.decide(&req, &states, now, &mut caches), jwt_guard::decision::Outcome::Allow { .. }));
        time(&format!("RS256 cached, {label}: engine decision"), || {
            black_box(engine.decide(&req, &states, now, &mut caches));
        });
    }

    // What one verified-token cache entry costs: fill a cache of the default size with
    // distinct users' tokens and count the live heap bytes it grew by.
    let entries = jwt_guard::policy::DEFAULT_JWT_CACHE_SIZE;
    let rsa = EncodingKey::from_rsa_der(include_bytes!("../src/testdata/rsa_private_pkcs1.der"));
    let tokens: Vec<String> = (0..entries)
        .map(|i| format!("Bearer {}", sign_for(&format!("auth0|{i:024x}"), Algorithm::RS256, "rsa-1", &rsa)))
        .collect();
    let mut caches = engine.new_caches();
    let before = LIVE.load(std::sync::atomic::Ordering::Relaxed);
    for auth in &tokens {
        let headers: Vec<(&str, &[u8])> =
            vec![(":method", b"GET"), (":path", b"/api/items"), ("authorization", auth.as_bytes())];
        let req =
            Request { method: "GET", path: "/api/items", headers: &headers, peer_certificate: &no_peer_certificate };
        black_box(engine.decide(&req, &states, now, &mut caches));
    }
    let grown = LIVE.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(before);
    println!(
        "verified-token cache: {entries} entries (RS256 tokens of {} chars) take {grown} bytes: {} bytes per entry",
        tokens[0].len() - "Bearer ".len(),
        grown / entries
    );
}
