//! Sender-constrained tokens through the whole decision: DPoP proofs (RFC 9449) and
//! certificate-bound tokens (RFC 8705), every refusal with its reason and challenge.

use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::authn::dpop::{check_proof, normalize_htu, normalize_path, request_htu, ProofRequest};
use crate::decision::sender::parse_hex_digest;
use crate::decision::token_cache::TokenCache;
use crate::decision::*;
use crate::deny::Reason;
use crate::jwks::{jwk_thumbprint, KeySet};
use crate::jwks::{KeyState, KidRefetch};
use crate::policy::{Config, Dpop, DpopMode};
use crate::testkit::*;
use crate::token::base64url;

mod certificates;
mod client_keys;
mod nonces;

const HTU: &str = DPOP_HTU;

struct World {
    engine: Engine,
    keys: Vec<KeySet>,
    caches: Vec<TokenCache>,
    now: u64,
    peer_certificate: Option<Vec<u8>>,
}

impl World {
    fn new(config: Config) -> World {
        let keys = config.providers.iter().map(keys_of).collect();
        let engine = Engine::new(config);
        let caches = engine.new_caches();
        World { engine, keys, caches, now: NOW, peer_certificate: None }
    }

    fn with_dpop(dpop: Value) -> World {
        World::new(config_with(json!({"dpop": dpop}), json!({})))
    }

    fn send(&mut self, method: &str, authorization: &str, proofs: &[&str]) -> Outcome {
        let mut h: Vec<(&str, &[u8])> = vec![
            (":method", method.as_bytes()),
            (":scheme", b"https"),
            (":authority", b"API.test:443"),
            (":path", b"/items?page=2"),
            ("authorization", authorization.as_bytes()),
        ];
        for p in proofs {
            h.push(("dpop", p.as_bytes()));
        }
        let cert = self.peer_certificate.clone();
        let peer_certificate = move || cert.clone();
        let req = Request { method, path: "/items?page=2", headers: &h, peer_certificate: &peer_certificate };
        let states: Vec<KeyState<'_>> = self.keys.iter().map(|k| KeyState::Ready(k, KidRefetch::Exhausted)).collect();
        self.engine.decide(&req, &states, self.now, &mut self.caches)
    }
}

fn proof_with(token: &str, claims: Value) -> String {
    let mut c = dpop_claims("j-1", "GET", HTU, token);
    merge(&mut c, claims);
    dpop_proof(Algorithm::ES256, public_jwk("ec-1"), json!({}), c)
}

fn denied(o: &Outcome) -> (Reason, String) {
    match o {
        Outcome::Deny(d) => {
            let c = d.response.headers.iter().find(|(k, _)| k == "www-authenticate").map(|(_, v)| v.clone());
            (d.reason.clone(), c.unwrap_or_default())
        }
        other => panic!("expected a denial, got {other:?}"),
    }
}

fn allowed(o: &Outcome) -> bool {
    matches!(o, Outcome::Allow { .. })
}

#[test]
fn a_bound_token_with_its_proof_passes() {
    let mut w = World::with_dpop(json!({}));
    let t = bound_token();
    assert!(allowed(&w.send("GET", &format!("DPoP {t}"), &[&proof_for(&t, "a")])));
    // The token is cached; a new proof per request still passes, with the proof checked again.
    assert!(allowed(&w.send("GET", &format!("DPoP {t}"), &[&proof_for(&t, "b")])));
}

#[test]
fn neither_the_token_nor_the_proof_reaches_the_upstream_unless_forwarded() {
    let t = bound_token();
    for (forward, stripped) in [(false, true), (true, false)] {
        let mut w = World::new(config_with(json!({"forward": forward}), json!({})));
        match w.send("GET", &format!("DPoP {t}"), &[&proof_for(&t, "a")]) {
            Outcome::Allow { mutations, .. } => {
                let removed = |h: &str| mutations.remove_headers.iter().any(|r| r == h);
                assert_eq!((removed("authorization"), removed("dpop")), (stripped, stripped), "forward: {forward}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn every_proof_algorithm_and_key_type_is_checked() {
    for (alg, kid) in [
        (Algorithm::ES256, "ec-1"),
        (Algorithm::ES384, "ec384-1"),
        (Algorithm::EdDSA, "ed-1"),
        (Algorithm::PS256, "rsa-ps"),
        (Algorithm::RS256, "rsa-1"),
    ] {
        let jwk = public_jwk(kid);
        let t = access_token(json!({"cnf": {"jkt": jwk_thumbprint(jwk.as_object().unwrap()).unwrap()}}));
        let proof = dpop_proof(alg, jwk, json!({}), dpop_claims("x", "GET", HTU, &t));
        let mut w = World::with_dpop(json!({}));
        assert!(allowed(&w.send("GET", &format!("DPoP {t}"), &[&proof])), "{alg:?}");
        // The same proof with one signature byte changed (a fresh jti, so not a replay).
        let proof = dpop_proof(alg, public_jwk(kid), json!({}), dpop_claims("y", "GET", HTU, &t));
        let (input, sig) = proof.rsplit_once('.').unwrap();
        let mut sig = base64url::decode(sig.as_bytes()).unwrap();
        let middle = sig.len() / 2;
        sig[middle] ^= 0x01;
        let forged = format!("{input}.{}", base64url::encode(&sig));
        let (r, _) = denied(&w.send("GET", &format!("DPoP {t}"), &[&forged]));
        assert_eq!(r, Reason::DpopProof("its signature does not verify with its `jwk`"), "{alg:?}");
    }
}

#[test]
fn a_replayed_proof_is_refused() {
    let mut w = World::with_dpop(json!({}));
    let t = bound_token();
    let p = proof_for(&t, "once");
    assert!(allowed(&w.send("GET", &format!("DPoP {t}"), &[&p])));
    let (r, c) = denied(&w.send("GET", &format!("DPoP {t}"), &[&p]));
    assert_eq!(r, Reason::DpopReplay);
    assert!(c.starts_with("DPoP realm=\"jwt-guard\", algs=\"ES256 ES384 RS256 PS256 PS384 PS512 EdDSA Ed25519\", error=\"invalid_dpop_proof\""), "{c}");
}

#[test]
fn the_binding_is_never_dropped() {
    let mut w = World::with_dpop(json!({}));
    let t = bound_token();
    let (r, c) = denied(&w.send("GET", &format!("Bearer {t}"), &[]));
    assert_eq!(r, Reason::DpopDowngrade);
    assert!(c.starts_with("DPoP realm=\"jwt-guard\", algs=") && c.contains("error=\"invalid_token\""), "{c}");
    // With a proof too: the scheme is what the binding needs.
    assert_eq!(denied(&w.send("GET", &format!("Bearer {t}"), &[&proof_for(&t, "z")])).0, Reason::DpopDowngrade);
    // DPoP switched off: still never a bearer token.
    let mut off = World::with_dpop(json!({"mode": "disabled"}));
    let (r, c) = denied(&off.send("GET", &format!("Bearer {t}"), &[]));
    assert_eq!(r, Reason::DpopDowngrade);
    assert!(c.starts_with("Bearer realm="), "no DPoP challenge where DPoP is off: {c}");
    // ... and `Authorization: DPoP` is not read at all.
    assert_eq!(denied(&off.send("GET", &format!("DPoP {t}"), &[&proof_for(&t, "y")])).0, Reason::Missing);
}

#[test]
fn an_unbound_token_cannot_use_the_dpop_scheme_and_bearer_stays_bearer() {
    let mut w = World::with_dpop(json!({}));
    let t = access_token(json!({}));
    assert_eq!(denied(&w.send("GET", &format!("DPoP {t}"), &[&proof_for(&t, "a")])).0, Reason::DpopUnbound);
    assert!(allowed(&w.send("GET", &format!("Bearer {t}"), &[])));
    let (r, c) = denied(&w.send("GET", "Bearer nope", &[]));
    assert_eq!(r, Reason::Opaque);
    assert!(c.starts_with("Bearer realm="), "a bearer client sees a Bearer challenge: {c}");
}

#[test]
fn required_mode_takes_dpop_only() {
    let mut w = World::with_dpop(json!({"mode": "required", "algorithms": ["ES256"]}));
    let (r, c) = denied(&w.send("GET", &format!("Bearer {}", access_token(json!({}))), &[]));
    assert_eq!(r, Reason::DpopRequired);
    assert!(c.starts_with("DPoP realm=\"jwt-guard\", algs=\"ES256\", error=\"invalid_token\""), "{c}");
    let (r, c) = denied(&w.send("GET", "", &[]));
    assert_eq!(r, Reason::Missing);
    assert_eq!(c, "DPoP realm=\"jwt-guard\", algs=\"ES256\"");
    let t = bound_token();
    assert!(allowed(&w.send("GET", &format!("DPoP {t}"), &[&proof_for(&t, "a")])));
}

#[test]
fn proof_presence_is_checked() {
    let mut w = World::with_dpop(json!({}));
    let t = bound_token();
    let auth = format!("DPoP {t}");
    assert_eq!(denied(&w.send("GET", &auth, &[])).0, Reason::DpopProof("the request has no `DPoP` proof header"));
    let (a, b) = (proof_for(&t, "1"), proof_for(&t, "2"));
    assert_eq!(
        denied(&w.send("GET", &auth, &[&a, &b])).0,
        Reason::DpopProof("the request has more than one `DPoP` header")
    );
    assert_eq!(denied(&w.send("GET", &auth, &["not-a-jws"])).0, Reason::DpopProof("the proof is not a compact JWS"));
    let big = "a".repeat(9000);
    assert_eq!(denied(&w.send("GET", &auth, &[&big])).0, Reason::DpopProof("the proof is larger than 8 KiB"));
    // Header bytes that are not text (the host may pass any): refused, never decoded.
    let req = ProofRequest { method: "GET", htu: HTU, token: &t, jkt: &ec_jkt(), now: NOW, nonce_secret: None };
    assert_eq!(
        check_proof(b"e30.\xff\xfe.sig", &req, &Dpop::default(), 60, &mut Default::default()),
        Err(Reason::DpopProof("the `DPoP` header is not valid UTF-8"))
    );
}

#[test]
fn each_proof_check_refuses_with_its_reason() {
    let t = bound_token();
    let jwk = public_jwk("ec-1");
    let claims = || dpop_claims("j", "GET", HTU, &t);
    let ec = |header: Value, c: Value| dpop_proof(Algorithm::ES256, jwk.clone(), header, c);
    let mut private = jwk.clone();
    private["d"] = json!("AAAA");
    let cases: Vec<(String, Reason)> = vec![
        (ec(json!({"typ": "JWT"}), claims()), Reason::DpopProof("its `typ` is not `dpop+jwt`")),
        (ec(json!({"typ": null}), claims()), Reason::DpopProof("its `typ` is not `dpop+jwt`")),
        (ec(json!({"jwk": null}), claims()), Reason::DpopProof("its header has no `jwk` object")),
        (ec(json!({"jwk": private}), claims()), Reason::DpopProof("its `jwk` holds private key members")),
        (ec(json!({"crit": ["exp"]}), claims()), Reason::DpopProof("it lists a `crit` extension")),
        (
            dpop_proof(
                Algorithm::HS256,
                json!({"kty": "oct", "k": base64url::encode(HMAC_SECRET)}),
                json!({}),
                claims(),
            ),
            Reason::DpopProof("its `alg` is not one this API accepts for proofs"),
        ),
        (proof_with(&t, json!({"jti": null})), Reason::DpopProof("it has no `jti` string of at most 256 bytes")),
        (
            proof_with(&t, json!({"jti": "x".repeat(257)})),
            Reason::DpopProof("it has no `jti` string of at most 256 bytes"),
        ),
        (proof_with(&t, json!({"htm": "POST"})), Reason::DpopMismatch("`htm` is not this request's method")),
        (proof_with(&t, json!({"htm": null})), Reason::DpopProof("it has no `htm` string")),
        (
            proof_with(&t, json!({"htu": "https://api.test/other"})),
            Reason::DpopMismatch("`htu` is not this request's URL"),
        ),
        (
            proof_with(&t, json!({"htu": "http://api.test/items"})),
            Reason::DpopMismatch("`htu` is not this request's URL"),
        ),
        (proof_with(&t, json!({"htu": null})), Reason::DpopProof("it has no `htu` string")),
        (proof_with(&t, json!({"iat": null})), Reason::DpopProof("it has no `iat`")),
        (proof_with(&t, json!({"iat": NOW - 61})), Reason::DpopStale),
        (proof_with(&t, json!({"iat": NOW + 61})), Reason::DpopStale),
        (proof_with(&t, json!({"ath": null})), Reason::DpopProof("it has no `ath` (the hash of the access token)")),
        (
            proof_with(&t, json!({"ath": "bm90LXRoZS1oYXNo"})),
            Reason::DpopMismatch("`ath` is not the hash of this access token"),
        ),
    ];
    let mut cases: Vec<(String, String, Reason)> = cases.into_iter().map(|(p, r)| (t.clone(), p, r)).collect();
    // A proof by another key than the token's is refused before anything about that key is
    // checked, its signature included: the thief of a token pays a hash, not a signature check.
    let other = dpop_proof(Algorithm::EdDSA, public_jwk("ed-1"), json!({}), claims());
    cases.push((t.clone(), other.clone(), Reason::DpopKey));
    let (input, _) = other.rsplit_once('.').unwrap();
    cases.push((t.clone(), format!("{input}.AAAA"), Reason::DpopKey));
    // What is checked of the key itself, on tokens bound to that key's thumbprint.
    let another_p256 = json!({"kty": "EC", "crv": "P-256", "x": "gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0", "y": "SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps"});
    for (header, want) in [
        (
            json!({"jwk": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}}),
            Reason::DpopProof("its `jwk` is not a usable public key"),
        ),
        (json!({"jwk": public_jwk("ed-1")}), Reason::DpopProof("its `alg` does not fit its `jwk`")),
        (json!({"jwk": public_jwk("ec384-1"), "alg": "ES256"}), Reason::DpopProof("its `alg` does not fit its `jwk`")),
        // Signed by the P-256 test key, but naming another P-256 public key.
        (json!({"jwk": another_p256}), Reason::DpopProof("its signature does not verify with its `jwk`")),
    ] {
        let named = jwk_thumbprint(header["jwk"].as_object().unwrap()).unwrap();
        let bound = access_token(json!({"cnf": {"jkt": named}}));
        let proof = ec(header, dpop_claims("j", "GET", HTU, &bound));
        cases.push((bound, proof, want));
    }
    for (token, proof, want) in cases {
        let mut w = World::with_dpop(json!({}));
        let (r, c) = denied(&w.send("GET", &format!("DPoP {token}"), &[&proof]));
        assert_eq!(r, want);
        assert!(c.starts_with("DPoP realm=") && c.contains("error=\"invalid_dpop_proof\""), "{want:?}: {c}");
    }
}

#[test]
fn the_proof_age_window_is_configurable_and_inclusive() {
    let t = bound_token();
    let mut w = World::with_dpop(json!({"max_proof_age": "300s"}));
    assert!(allowed(&w.send("GET", &format!("DPoP {t}"), &[&proof_with(&t, json!({"iat": NOW - 300}))])));
    assert_eq!(
        denied(&w.send("GET", &format!("DPoP {t}"), &[&proof_with(&t, json!({"iat": NOW - 301, "jti": "2"}))])).0,
        Reason::DpopStale
    );
    // The future side is the provider's clock skew (60 s by default).
    assert!(allowed(&w.send("GET", &format!("DPoP {t}"), &[&proof_with(&t, json!({"iat": NOW + 60, "jti": "3"}))])));
}

#[test]
fn paths_compare_after_rfc_3986_normalization_and_no_further() {
    // §6.2.2.2: percent-encoded unreserved characters are decoded.
    assert_eq!(normalize_path("/items/%7Euser").as_deref(), Some("/items/~user"));
    assert_eq!(normalize_path("/%41%62%2d%2E%5F%30").as_deref(), Some("/Ab-._0"));
    // §6.2.2.1: the hex digits of the others are upper-cased, and they stay encoded.
    assert_eq!(normalize_path("/a%2fb%3a").as_deref(), Some("/a%2Fb%3A"));
    assert_ne!(normalize_path("/a%2Fb"), normalize_path("/a/b"), "%2F is not a slash");
    assert_ne!(normalize_path("/a%20b"), normalize_path("/a+b"));
    // §6.2.2.3: dot segments go (RFC 3986 §5.2.4's examples among them).
    for (raw, want) in [
        ("/a/b/c/./../../g", "/a/g"),
        ("/./x", "/x"),
        ("/x/..", "/"),
        ("/x/.", "/x/"),
        ("/../../a", "/a"),
        ("/a/%2E%2E/b", "/b"),
        ("/a/.../b", "/a/.../b"),
        ("/a//b", "/a//b"),
    ] {
        assert_eq!(normalize_path(raw).as_deref(), Some(want), "{raw}");
    }
    // Case of the path itself is significant; broken escapes are refused.
    assert_ne!(normalize_path("/Items"), normalize_path("/items"));
    assert_eq!(normalize_path("/a%zz"), None);
    assert_eq!(normalize_path("/a%4"), None);
    assert_eq!(
        normalize_path("/caf\u{e9}/%C3%A9").as_deref(),
        Some("/caf\u{e9}/%C3%A9"),
        "only ASCII unreserved decode"
    );
    // Both sides: a client signing %7E matches Envoy's decoded ~, and the reverse.
    let d = Dpop::default();
    let signed = normalize_htu("https://api.test/items/%7euser").unwrap();
    assert_eq!(request_htu(&d, "https", "api.test", "/items/~user").as_deref(), Some(signed.as_str()));
    let signed = normalize_htu("https://api.test/items/~user").unwrap();
    assert_eq!(request_htu(&d, "https", "api.test", "/items/%7Euser").as_deref(), Some(signed.as_str()));
    let ext = Dpop { external_origin: Some("https://api.example.com".into()), ..Dpop::default() };
    assert_eq!(request_htu(&ext, "http", "x", "/a/./b/%7e").as_deref(), Some("https://api.example.com/a/b/~"));
}

#[test]
fn htu_compares_normalized_without_query_or_fragment() {
    assert_eq!(normalize_htu("HTTPS://API.test:443/items?x=1#f").as_deref(), Some("https://api.test/items"));
    assert_eq!(normalize_htu("http://api.test:80").as_deref(), Some("http://api.test/"));
    assert_eq!(normalize_htu("https://api.test:8443/a").as_deref(), Some("https://api.test:8443/a"));
    assert_eq!(normalize_htu("ftp://api.test/"), None);
    assert_eq!(normalize_htu("https://user@api.test/"), None);
    let d = Dpop::default();
    assert_eq!(request_htu(&d, "https", "API.test:443", "/items?page=2").as_deref(), Some("https://api.test/items"));
    assert_eq!(request_htu(&d, "https", "", "/items"), None);
    // Behind TLS termination Envoy sees http; the external origin says what clients see.
    let ext = Dpop { external_origin: Some("https://api.example.com".into()), ..Dpop::default() };
    assert_eq!(request_htu(&ext, "http", "10.0.0.7:8080", "/items").as_deref(), Some("https://api.example.com/items"));
    let t = bound_token();
    let mut w = World::with_dpop(json!({}));
    let p = proof_with(&t, json!({"htu": "https://API.TEST:443/items?other=1#x"}));
    assert!(allowed(&w.send("GET", &format!("DPoP {t}"), &[&p])));
    let mut w = World::with_dpop(json!({"external_origin": "https://gateway.example.com/"}));
    let p = proof_with(&t, json!({"htu": "https://gateway.example.com/items"}));
    assert!(allowed(&w.send("GET", &format!("DPoP {t}"), &[&p])));
    assert_eq!(
        denied(&w.send("GET", &format!("DPoP {t}"), &[&proof_for(&t, "k")])).0,
        Reason::DpopMismatch("`htu` is not this request's URL")
    );
}

#[test]
fn dpop_configuration_is_validated() {
    let bad = |dpop: Value| {
        let mut p = provider_json();
        merge(&mut p, json!({"dpop": dpop}));
        Config::parse(json!({"providers": {"p": p}}).to_string().as_bytes()).unwrap_err().to_string()
    };
    assert!(bad(json!({"mode": "on"})).contains("providers.p.dpop.mode"));
    assert!(bad(json!({"algorithms": ["HS256"]})).contains("HS* is never allowed"));
    assert!(bad(json!({"algorithms": []})).contains("providers.p.dpop.algorithms"));
    assert!(bad(json!({"max_proof_age": "0.5s"})).contains("at least 1s"));
    assert!(bad(json!({"external_origin": "https://api.example.com/v1"})).contains("external_origin"));
    assert!(bad(json!({"replay_cache_size": 0})).contains("replay_cache_size"));
    assert!(bad(json!({"unknown": 1})).contains("unknown field"));
    let mut p = provider_json();
    merge(&mut p, json!({"dpop": {"mode": "required"}, "from_headers": [{"name": "x-token"}]}));
    let e = Config::parse(json!({"providers": {"p": p}}).to_string().as_bytes()).unwrap_err().to_string();
    assert!(e.contains("`required` needs the Authorization header"), "{e}");
    let c = config_with(
        json!({"dpop": {"mode": "required", "max_proof_age": "120s", "external_origin": "HTTPS://Api.Example.com:443"}}),
        json!({}),
    );
    let d = &c.providers[0].dpop;
    assert_eq!(
        (d.mode, d.max_proof_age_seconds, d.external_origin.as_deref()),
        (DpopMode::Required, 120, Some("https://api.example.com"))
    );
}

#[test]
fn proofs_are_remembered_per_provider_within_the_configured_size() {
    let w = World::with_dpop(json!({"replay_cache_size": 3}));
    let mut c = w.engine.new_caches().remove(0);
    for j in ["a", "b", "c", "d"] {
        assert!(c.first_use_of_proof("k", j, NOW + 60, NOW));
    }
    assert_eq!(c.proofs_len(), 3);
    let off = World::with_dpop(json!({"mode": "disabled"}));
    assert_eq!(off.engine.new_caches()[0].proofs_len(), 0);
}

#[test]
fn a_proof_is_checked_once_however_many_rules_judge_the_request() {
    // Two `allow` rules fall through before the third allows: the proof is not a replay of itself.
    let allow = |p: &str| json!({"match": {"prefix": "/"}, "action": "allow", "requires": {"provider_name": "p"}, "principals": [p]});
    let rules = json!([allow("*/nobody"), allow("*/no-one"), allow("*")]);
    let mut w = World::new(config_with(json!({"dpop": {}}), json!({"rules": rules})));
    let t = bound_token();
    assert!(allowed(&w.send("GET", &format!("DPoP {t}"), &[&proof_for(&t, "one-use")])));
    assert_eq!(denied(&w.send("GET", &format!("DPoP {t}"), &[&proof_for(&t, "one-use")])).0, Reason::DpopReplay);
}
