//! The decision for one request through the engine: rules, requirements, key states, the
//! verified-token cache, CORS preflights and gRPC refusals.

use serde_json::{json, Value};

use crate::decision::token_cache::TokenCache;
use crate::decision::*;
use crate::deny::{Protocol, Reason};
use crate::jwks::KeySet;
use crate::jwks::{KeyState, KidRefetch};
use crate::policy::Config;
use crate::testkit::*;

mod mutations;

struct World {
    engine: Engine,
    keys: Vec<KeySet>,
    caches: Vec<TokenCache>,
    /// What the host reports as the client certificate's SHA-256.
    peer_certificate: Option<Vec<u8>>,
}

impl World {
    fn new(config: Config) -> World {
        let keys = config.providers.iter().map(keys_of).collect();
        let engine = Engine::new(config);
        let caches = engine.new_caches();
        World { engine, keys, caches, peer_certificate: None }
    }

    fn decide_with(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        states: Option<Vec<KeyState<'_>>>,
    ) -> Outcome {
        let mut h: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        h.push((":path", path.as_bytes()));
        let cert = self.peer_certificate.clone();
        let peer_certificate = move || cert.clone();
        let req = Request { method, path, headers: &h, peer_certificate: &peer_certificate };
        let ready: Vec<KeyState<'_>> = self.keys.iter().map(|k| KeyState::Ready(k, KidRefetch::Exhausted)).collect();
        let states = states.unwrap_or(ready);
        self.engine.decide(&req, &states, NOW, &mut self.caches)
    }

    fn decide(&mut self, method: &str, path: &str, headers: &[(&str, &str)]) -> Outcome {
        let keys = std::mem::take(&mut self.keys);
        let ready: Vec<KeyState<'_>> = keys.iter().map(|k| KeyState::Ready(k, KidRefetch::Exhausted)).collect();
        let out = {
            let mut h: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
            h.push((":path", path.as_bytes()));
            let cert = self.peer_certificate.clone();
            let peer_certificate = move || cert.clone();
            let req = Request { method, path, headers: &h, peer_certificate: &peer_certificate };
            self.engine.decide(&req, &ready, NOW, &mut self.caches)
        };
        self.keys = keys;
        out
    }
}

fn two_providers(rules: Value) -> Config {
    let mut p = provider_json();
    merge(
        &mut p,
        json!({"claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}],
                         "forward_payload_header": "x-payload", "from_params": ["access_token"]}),
    );
    let mut q = provider_json();
    merge(
        &mut q,
        json!({"issuer": "https://other.test", "audiences": ["other-api"], "from_headers": [{"name": "x-other"}],
                         "from_cookies": ["other"], "claim_to_headers": [{"header_name": "x-other-sub", "claim_name": "sub"}]}),
    );
    let mut c = json!({"realm": "api", "providers": {"a": p, "b": q}});
    if !rules.is_null() {
        c["rules"] = rules;
    }
    Config::parse(c.to_string().as_bytes()).unwrap()
}

fn b_token() -> String {
    let mut c = access_claims();
    merge(&mut c, json!({"iss": "https://other.test", "aud": "other-api", "sub": "svc"}));
    sign(jsonwebtoken::Algorithm::RS256, access_header(jsonwebtoken::Algorithm::RS256), c)
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn status(o: &Outcome) -> u32 {
    match o {
        Outcome::Allow { .. } => 200,
        Outcome::Deny(d) => d.response.status,
        Outcome::Wait { .. } => 0,
    }
}

fn reason(o: &Outcome) -> Reason {
    match o {
        Outcome::Deny(d) => d.reason.clone(),
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[test]
fn no_rules_means_any_provider() {
    let mut w = World::new(two_providers(Value::Null));
    let a = access_token(json!({}));
    assert_eq!(status(&w.decide("GET", "/x", &[("authorization", &bearer(&a))])), 200);
    assert_eq!(status(&w.decide("GET", "/x", &[("x-other", &b_token())])), 200);
    assert_eq!(reason(&w.decide("GET", "/x", &[])), Reason::Missing);
}

#[test]
fn most_specific_failure_is_reported() {
    let mut w = World::new(two_providers(Value::Null));
    // Provider b sees no token (missing), a sees an ID token: the ID token is what matters.
    let o = w.decide("GET", "/x", &[("authorization", &bearer(&id_token(json!({}))))]);
    assert_eq!(reason(&o), Reason::IdToken);
    match o {
        Outcome::Deny(d) => {
            assert_eq!(d.provider, Some(0));
            assert!(d.token.is_some(), "the judged token travels with the denial for logging");
        }
        _ => unreachable!(),
    }
}

#[test]
fn rules_first_match_wins_and_unmatched_is_denied() {
    let rules = json!([
        {"match": {"prefix": "/open"}},
        {"match": {"path": "/admin", "methods": ["POST"]}, "requires": {"provider_name": "a"}, "scopes": ["admin"]},
        {"match": {"prefix": "/api"}, "requires": {"provider_name": "a"}},
    ]);
    let mut w = World::new(two_providers(rules));
    assert_eq!(status(&w.decide("GET", "/open/x?y=1", &[])), 200);
    assert_eq!(reason(&w.decide("GET", "/nothing", &[])), Reason::NoRoute);
    assert_eq!(reason(&w.decide("GET", "/admin", &[])), Reason::NoRoute, "method must match");
    assert_eq!(reason(&w.decide("GET", "/api/x", &[])), Reason::Missing);
    assert_eq!(reason(&w.decide("GET", "/api?x=/open", &[])), Reason::Missing, "the query is not the path");
    let weak = access_token(json!({}));
    assert_eq!(
        reason(&w.decide("POST", "/admin", &[("authorization", &bearer(&weak))])),
        Reason::Scope("admin".into())
    );
    let strong = access_token(json!({"permissions": ["admin"]}));
    assert_eq!(status(&w.decide("POST", "/admin", &[("authorization", &bearer(&strong))])), 200);
    let scp = access_token(json!({"scope": null, "scp": ["admin"]}));
    assert_eq!(status(&w.decide("POST", "/admin", &[("authorization", &bearer(&scp))])), 200);
}

#[test]
fn requirement_forms() {
    let rules = json!([
        {"match": {"prefix": "/any"}, "requires": {"requires_any": {"requirements": [{"provider_name": "a"}, {"provider_name": "b"}]}}},
        {"match": {"prefix": "/all"}, "requires": {"requires_all": {"requirements": [{"provider_name": "a"}, {"provider_name": "b"}]}}},
        {"match": {"prefix": "/missing"}, "requires": {"allow_missing": {}}},
        {"match": {"prefix": "/failed"}, "requires": {"allow_missing_or_failed": {}}},
        {"match": {"prefix": "/a-or-missing"}, "requires": {"requires_any": {"requirements": [{"provider_name": "a"}, {"allow_missing": {}}]}}},
    ]);
    let mut w = World::new(two_providers(rules));
    let a = bearer(&access_token(json!({})));
    let b = b_token();
    let bad = bearer(&access_token(json!({"exp": NOW - 1000})));
    assert_eq!(status(&w.decide("GET", "/any", &[("authorization", &a)])), 200);
    assert_eq!(status(&w.decide("GET", "/any", &[("x-other", &b)])), 200);
    assert_eq!(reason(&w.decide("GET", "/any", &[])), Reason::Missing);
    assert_eq!(status(&w.decide("GET", "/all", &[("authorization", &a), ("x-other", &b)])), 200);
    assert_eq!(reason(&w.decide("GET", "/all", &[("authorization", &a)])), Reason::Missing);
    assert_eq!(reason(&w.decide("GET", "/all", &[("authorization", &bad), ("x-other", &b)])), Reason::Expired);
    assert_eq!(status(&w.decide("GET", "/missing", &[])), 200);
    assert_eq!(status(&w.decide("GET", "/missing", &[("authorization", &a)])), 200);
    assert_eq!(reason(&w.decide("GET", "/missing", &[("authorization", &bad)])), Reason::Expired, "Envoy PR #15194");
    assert_eq!(status(&w.decide("GET", "/failed", &[("authorization", &bad)])), 200);
    assert_eq!(status(&w.decide("GET", "/failed", &[])), 200);
    assert_eq!(status(&w.decide("GET", "/a-or-missing", &[])), 200);
    assert_eq!(reason(&w.decide("GET", "/a-or-missing", &[("authorization", &bad)])), Reason::Expired);
}

#[test]
fn key_states() {
    let mut w = World::new(config_with(json!({}), json!({})));
    let a = bearer(&access_token(json!({})));
    assert_eq!(
        w.decide_with("GET", "/", &[("authorization", &a)], Some(vec![KeyState::Loading])),
        Outcome::Wait { refetch: vec![], introspect: vec![], protocol: Protocol::Http }
    );
    assert_eq!(
        reason(&w.decide_with("GET", "/", &[("authorization", &a)], Some(vec![KeyState::Unavailable]))),
        Reason::KeysUnavailable
    );
    // No token: no need to wait for keys.
    assert_eq!(reason(&w.decide_with("GET", "/", &[], Some(vec![KeyState::Loading]))), Reason::Missing);
    assert_eq!(status(&w.decide_with("GET", "/", &[("authorization", &a)], Some(vec![KeyState::Unavailable]))), 503);
}

#[test]
fn any_waits_only_if_nothing_succeeded() {
    let mut w = World::new(two_providers(Value::Null));
    let a = bearer(&access_token(json!({})));
    let b = b_token();
    let keys = w.keys.clone();
    let states = vec![KeyState::Ready(&keys[0], KidRefetch::Exhausted), KeyState::Loading];
    assert_eq!(status(&w.decide_with("GET", "/", &[("authorization", &a), ("x-other", &b)], Some(states))), 200);
    let states = vec![KeyState::Loading, KeyState::Ready(&keys[1], KidRefetch::Exhausted)];
    assert_eq!(
        w.decide_with("GET", "/", &[("authorization", &a)], Some(states)),
        Outcome::Wait { refetch: vec![], introspect: vec![], protocol: Protocol::Http }
    );
}

#[test]
fn cache_serves_repeat_tokens_and_respects_exp_and_size() {
    let mut w = World::new(config_with(json!({"jwt_cache_config": {"jwt_cache_size": 2}}), json!({})));
    let a = bearer(&access_token(json!({})));
    assert_eq!(status(&w.decide("GET", "/", &[("authorization", &a)])), 200);
    assert_eq!(status(&w.decide("GET", "/", &[("authorization", &a)])), 200);
    assert_eq!((w.caches[0].hits, w.caches[0].misses), (1, 1));
    for i in 0..5 {
        let t = bearer(&access_token(json!({"jti": format!("t{i}")})));
        w.decide("GET", "/", &[("authorization", &t)]);
    }
    assert_eq!(w.caches[0].len(), 2, "bounded by jwt_cache_size");
    // Replayed forged tokens are answered from the negative cache.
    let forged = {
        let t = access_token(json!({}));
        format!("{}AAAA", &t[..t.len() - 4])
    };
    let f = bearer(&forged);
    let (h, m) = (w.caches[0].hits, w.caches[0].misses);
    assert_eq!(reason(&w.decide("GET", "/", &[("authorization", &f)])), Reason::BadSignature);
    assert_eq!(reason(&w.decide("GET", "/", &[("authorization", &f)])), Reason::BadSignature);
    assert_eq!((w.caches[0].hits - h, w.caches[0].misses - m), (1, 1));
}

#[test]
fn bad_requests_are_400() {
    let mut w = World::new(config_with(json!({"from_params": ["access_token"]}), json!({})));
    let a = access_token(json!({}));
    let o = w.decide("GET", &format!("/?access_token={a}"), &[("authorization", &bearer(&a))]);
    assert_eq!(status(&o), 400);
    assert_eq!(status(&w.decide("GET", "/", &[("authorization", "Bearer ")])), 400);
}

#[test]
fn unknown_kid_waits_for_one_refetch_when_allowed() {
    let mut w = World::new(config_with(json!({}), json!({})));
    let t = sign(jsonwebtoken::Algorithm::RS256, json!({"alg": "RS256", "kid": "new-key"}), access_claims());
    let a = bearer(&t);
    let keys = w.keys.clone();
    let o =
        w.decide_with("GET", "/", &[("authorization", &a)], Some(vec![KeyState::Ready(&keys[0], KidRefetch::Allowed)]));
    assert_eq!(o, Outcome::Wait { refetch: vec![0], introspect: vec![], protocol: Protocol::Http });
    // A gRPC request that waits is refused in gRPC terms if it cannot wait.
    let grpc = [("authorization", a.as_str()), ("content-type", "application/grpc")];
    let o = w.decide_with("POST", "/", &grpc, Some(vec![KeyState::Ready(&keys[0], KidRefetch::Allowed)]));
    assert_eq!(o, Outcome::Wait { refetch: vec![0], introspect: vec![], protocol: Protocol::Grpc });
    let o =
        w.decide_with("GET", "/", &[("authorization", &a)], Some(vec![KeyState::Ready(&keys[0], KidRefetch::Pending)]));
    assert_eq!(o, Outcome::Wait { refetch: vec![], introspect: vec![], protocol: Protocol::Http });
    let o = w.decide_with(
        "GET",
        "/",
        &[("authorization", &a)],
        Some(vec![KeyState::Ready(&keys[0], KidRefetch::Exhausted)]),
    );
    assert_eq!(reason(&o), Reason::UnknownKid);
    // Other failures never wait.
    let bad = bearer(&access_token(json!({"exp": NOW - 1000})));
    let o = w.decide_with(
        "GET",
        "/",
        &[("authorization", &bad)],
        Some(vec![KeyState::Ready(&keys[0], KidRefetch::Allowed)]),
    );
    assert_eq!(reason(&o), Reason::Expired);
}

/// The b64token check of a header token runs after the cache lookup (a verified token passes
/// it by construction); every other path must still answer 400 as extraction would.
#[test]
fn header_token_characters_are_checked_on_every_path_but_a_verified_hit() {
    let bad = "Bearer a!b.c.d";
    let mut w = World::new(config_with(json!({"from_cookies": ["session"]}), json!({})));
    let invalid = Reason::InvalidRequest(
        "the credential header must be the scheme, one space and the token, without other whitespace",
    );
    // Keys ready, loading or unavailable: 400, not a wait or a 503.
    assert_eq!(reason(&w.decide("GET", "/", &[("authorization", bad)])), invalid);
    assert_eq!(reason(&w.decide_with("GET", "/", &[("authorization", bad)], Some(vec![KeyState::Loading]))), invalid);
    assert_eq!(
        reason(&w.decide_with("GET", "/", &[("authorization", bad)], Some(vec![KeyState::Unavailable]))),
        invalid
    );
    // The same string in a cookie (no character rule there) is judged and negatively cached;
    // in the Authorization header it is still a 400, not the cached 401.
    assert_eq!(status(&w.decide("GET", "/", &[("cookie", "session=a!b.c.d")])), 401);
    assert_eq!(w.caches[0].rejected_len(), 1);
    assert_eq!(reason(&w.decide("GET", "/", &[("authorization", bad)])), invalid);
    // A verified token is served from the cache, through the same extraction.
    let a = bearer(&access_token(json!({})));
    assert_eq!(status(&w.decide("GET", "/", &[("authorization", &a)])), 200);
    let hits = w.caches[0].hits;
    assert_eq!(status(&w.decide("GET", "/", &[("authorization", &a)])), 200);
    assert_eq!(w.caches[0].hits, hits + 1);
}

fn preflight_world(bypass: Option<bool>) -> World {
    let top = match bypass {
        Some(b) => json!({"bypass_cors_preflight": b}),
        None => json!({}),
    };
    World::new(config_with(json!({}), top))
}

const PREFLIGHT: [(&str, &str); 2] = [("origin", "https://app.example.com"), ("access-control-request-method", "GET")];

#[test]
fn a_cors_preflight_passes_untouched_by_default() {
    let mut w = preflight_world(None);
    assert!(w.engine.config.bypass_cors_preflight, "on by default, as Istio ships it");
    let out = w.decide("OPTIONS", "/api/items", &PREFLIGHT);
    assert!(matches!(out, Outcome::Allow { ref verified, preflight: true, .. } if verified.is_empty()), "{out:?}");
}

#[test]
fn only_a_real_preflight_is_bypassed() {
    let mut w = preflight_world(None);
    // OPTIONS without Origin, or without Access-Control-Request-Method, is an ordinary request.
    for headers in [&PREFLIGHT[..1], &PREFLIGHT[1..], &[]] {
        let out = w.decide("OPTIONS", "/api/items", headers);
        assert!(matches!(out, Outcome::Deny(ref d) if d.reason == Reason::Missing), "{headers:?}: {out:?}");
    }
    // Another method with the preflight's headers is judged as usual.
    let out = w.decide("GET", "/api/items", &PREFLIGHT);
    assert!(matches!(out, Outcome::Deny(ref d) if d.reason == Reason::Missing), "{out:?}");
}

#[test]
fn bypass_cors_preflight_false_judges_preflights() {
    let mut w = preflight_world(Some(false));
    let out = w.decide("OPTIONS", "/api/items", &PREFLIGHT);
    assert!(matches!(out, Outcome::Deny(ref d) if d.reason == Reason::Missing), "{out:?}");
}

// ---- gRPC refusals ----

#[test]
fn a_grpc_request_is_refused_in_grpc_terms() {
    let mut w = World::new(config_with(json!({}), json!({})));
    for (ct, grpc) in [
        ("application/grpc", true),
        ("application/grpc+proto", true),
        ("application/grpc;charset=utf-8", true),
        ("application/json", false),
        ("application/grpcx", false),
    ] {
        let out = w.decide("POST", "/pkg.Svc/Method", &[("content-type", ct)]);
        let Outcome::Deny(d) = out else { panic!("{ct}: {out:?}") };
        assert_eq!(d.response.status, 401);
        if grpc {
            assert_eq!(d.response.grpc_status, Some(16), "{ct}");
            assert_eq!(d.response.body, d.reason.description(&w.engine.config.providers[0].audiences));
        } else {
            assert_eq!(d.response.grpc_status, None, "{ct}");
            assert!(d.response.body.starts_with('{'), "{ct}: JSON");
        }
        assert!(d.response.headers.iter().any(|(k, _)| k == "www-authenticate"), "{ct}: the challenge is kept");
    }
    let id = bearer(&id_token(json!({})));
    let out = w.decide("POST", "/pkg.Svc/Method", &[("content-type", "application/grpc"), ("authorization", &id)]);
    let Outcome::Deny(d) = out else { panic!("{out:?}") };
    assert_eq!((d.reason, d.response.grpc_status), (Reason::IdToken, Some(16)));
    assert!(d.response.body.contains("ID token"), "{}", d.response.body);
}
