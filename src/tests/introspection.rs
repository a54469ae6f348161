//! RFC 7662 introspection in the core: its configuration, the checks on an answer, and how a
//! request with an opaque token waits for, uses and caches an answer.

use std::rc::Rc;

use serde_json::{json, Map, Value};

use crate::authn::introspection::check_answer;
use crate::decision::introspected::{answer_until, token_hash, Answer, Answers};
use crate::decision::token_cache::TokenCache;
use crate::decision::{no_peer_certificate, Engine, Outcome, Request, Shared};
use crate::deny::Reason;
use crate::jwks::{KeySet, KeyState, KidRefetch};
use crate::policy::{ClientSecret, Config, Provider};
use crate::testkit::*;

const OPAQUE: &str = "o9sK2v1yJq8dE3pX7nL0";

fn intro_json() -> Value {
    json!({"http_uri": {"uri": "https://issuer.test/token/introspection", "cluster": "idp", "timeout": "2s"},
           "client_id": "api", "client_secret_env": "JWT_GUARD_SECRET"})
}

fn config(patch: Value, top: Value) -> Config {
    let mut p = json!({"introspection": intro_json()});
    merge(&mut p, patch);
    config_with(p, top)
}

fn parse_err(c: Value) -> String {
    Config::parse(c.to_string().as_bytes()).unwrap_err().to_string()
}

fn active(patch: Value) -> Map<String, Value> {
    let mut a = json!({"active": true, "iss": ISS, "aud": API, "sub": "alice", "client_id": "spa",
                       "scope": "read write", "exp": NOW + 600, "iat": NOW - 10, "token_type": "Bearer"});
    merge(&mut a, patch);
    a.as_object().unwrap().clone()
}

fn provider(patch: Value) -> Provider {
    config(patch, json!({})).providers.remove(0)
}

fn check(p: &Provider, answer: Map<String, Value>) -> Result<(), Reason> {
    check_answer(p, &p.audiences, &answer, NOW).map(|_| ())
}

#[test]
fn configuration_fields_are_checked_and_named() {
    let p = provider(json!({}));
    let i = p.introspection.as_ref().unwrap();
    assert_eq!((i.authority.as_str(), i.path.as_str(), i.timeout_ms), ("issuer.test", "/token/introspection", 2000));
    assert_eq!((i.cache_seconds, i.negative_cache_seconds, i.cache_size, i.max_in_flight), (300, 30, 10_000, 32));
    assert_eq!(i.secret, ClientSecret::Env("JWT_GUARD_SECRET".into()));
    let with = |patch: Value| {
        let mut intro = intro_json();
        merge(&mut intro, patch);
        let mut p = provider_json();
        merge(&mut p, json!({"introspection": intro}));
        parse_err(json!({"providers": {"p": p}}))
    };
    assert!(with(json!({"client_secret": "x"})).contains("exactly one of client_secret_env"));
    assert!(with(json!({"client_secret_env": null})).contains("exactly one of client_secret_env"));
    assert!(with(json!({"auth_method": "private_key_jwt"})).contains("introspection.auth_method"));
    assert!(with(json!({"http_uri": {"uri": "ftp://x/y", "cluster": "c"}})).contains("introspection.http_uri.uri"));
    assert!(with(json!({"http_uri": {"uri": "https://x/y"}})).contains("introspection.http_uri.cluster"));
    assert!(with(json!({"cache_size": 0})).contains("introspection.cache_size"));
    assert!(with(json!({"max_in_flight": 0})).contains("introspection.max_in_flight"));
    assert!(with(json!({"client_id": ""})).contains("introspection.client_id"));
    assert!(with(json!({"cache_duration": "soon"})).contains("introspection.cache_duration"));
    assert!(with(json!({"token_endpoint": "x"})).contains("unknown field"));
}

#[test]
fn the_endpoint_comes_from_discovery_when_it_is_not_configured() {
    let mut intro = intro_json();
    merge(&mut intro, json!({"http_uri": null}));
    let discovery = json!({"http_uri": {"uri": "https://issuer.test/.well-known/openid-configuration",
                                        "cluster": "idp", "timeout": "3s"}});
    let p = config_with(json!({"local_jwks": null, "discovery": discovery, "introspection": intro.clone()}), json!({}))
        .providers
        .remove(0);
    let i = p.introspection.unwrap();
    assert!(i.discovered);
    assert_eq!(
        (i.uri.as_str(), i.cluster.as_str(), i.timeout_ms),
        ("https://issuer.test/.well-known/openid-configuration", "idp", 3000)
    );
    let mut p = provider_json();
    merge(&mut p, json!({"introspection": intro}));
    let e = parse_err(json!({"providers": {"p": p}}));
    assert!(e.contains("introspection.http_uri: is required unless the provider uses `discovery`"), "{e}");
    assert!(!provider(json!({})).introspection.unwrap().discovered);
}

#[test]
fn an_env_secret_is_read_from_the_vm_environment_and_an_inline_one_warned_about() {
    let mut c = config(json!({}), json!({}));
    let missing = c.resolve_secrets(|_| None).unwrap_err().to_string();
    assert!(missing.contains("providers.p.introspection.client_secret_env") && missing.contains("JWT_GUARD_SECRET"));
    c.resolve_secrets(|k| (k == "JWT_GUARD_SECRET").then(|| "s3cret".to_string())).unwrap();
    let secret = &c.providers[0].introspection.as_ref().unwrap().secret;
    assert_eq!(secret.value(), Some("s3cret"));
    assert!(!format!("{secret:?}").contains("s3cret"), "Debug never shows a secret");
    let mut inline = intro_json();
    merge(&mut inline, json!({"client_secret_env": null, "client_secret": "dev"}));
    let c = config_with(json!({"introspection": inline}), json!({}));
    assert!(c.warnings().iter().any(|w| w.contains("client_secret is inline")));
    assert!(config(json!({}), json!({})).warnings().is_empty());
}

/// Provider `p` introspecting at issuer.test and `q` at other.test.
fn two_endpoints() -> (Value, Value) {
    let mut other = provider_json();
    let mut intro2 = intro_json();
    merge(&mut intro2, json!({"http_uri": {"uri": "https://other.test/introspect", "cluster": "other"}}));
    merge(&mut other, json!({"issuer": "https://other.test/", "introspection": intro2}));
    let mut p = provider_json();
    merge(&mut p, json!({"introspection": intro_json()}));
    (p, other)
}

#[test]
fn one_requirement_never_shows_a_token_to_two_endpoints() {
    let (p, other) = two_endpoints();
    let any = json!({"requires_any": {"requirements": [{"provider_name": "p"}, {"provider_name": "q"}]}});
    // No rules: every provider may be asked about every token.
    let e = parse_err(json!({"providers": {"p": p, "q": other}}));
    assert!(e.contains("two introspection endpoints"), "{e}");
    let e =
        parse_err(json!({"providers": {"p": p, "q": other}, "rules": [{"match": {"prefix": "/"}, "requires": any}]}));
    assert!(e.contains("rules[0].requires"), "{e}");
    // Each its own rule: accepted.
    let rules = json!([{"match": {"prefix": "/a"}, "requires": {"provider_name": "p"}},
                       {"match": {"prefix": "/b"}, "requires": {"provider_name": "q"}}]);
    assert!(Config::parse(json!({"providers": {"p": p, "q": other}, "rules": rules}).to_string().as_bytes()).is_ok());
    // One introspecting provider beside a JWT-only one: accepted.
    assert!(Config::parse(json!({"providers": {"p": p, "q": provider_json()}}).to_string().as_bytes()).is_ok());
}

#[test]
fn an_active_answer_passes_every_check_it_has_fields_for() {
    let p = provider(json!({"claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}]}));
    let v = check_answer(&p, &p.audiences, &active(json!({})), NOW).unwrap();
    assert_eq!(v.principal.as_deref(), Some(format!("{ISS}/alice").as_str()));
    assert_eq!(v.scopes, vec!["read", "write"]);
    assert_eq!(v.claim_headers, vec![("x-sub".to_string(), "alice".to_string())]);
    assert_eq!(v.exp, Some(NOW + 600));
    // RFC 7662 makes every field but `active` optional: absent, not checked.
    let bare = json!({"active": true, "aud": API}).as_object().unwrap().clone();
    assert_eq!(check(&p, bare), Ok(()));
}

#[test]
fn every_check_refuses_with_its_own_reason() {
    let p = provider(json!({}));
    let cases: [(Value, Reason); 14] = [
        (json!({"active": false}), Reason::Inactive),
        (json!({"active": "true"}), Reason::IntrospectionResponse),
        (json!({"active": null}), Reason::IntrospectionResponse),
        (json!({"exp": NOW - 61}), Reason::Expired),
        (json!({"exp": "later"}), Reason::IntrospectionResponse),
        (json!({"nbf": NOW + 61}), Reason::NotYetValid),
        (json!({"iat": NOW + 61}), Reason::NotYetValid),
        (json!({"iss": "https://evil.test/"}), Reason::Issuer),
        (json!({"aud": "https://other.api"}), Reason::Audience),
        (json!({"aud": null}), Reason::Audience),
        (json!({"aud": [1, 2]}), Reason::IntrospectionResponse),
        (json!({"token_type": "refresh_token"}), Reason::RefreshToken),
        (json!({"token_type": "urn:ietf:params:oauth:token-type:refresh_token"}), Reason::RefreshToken),
        (json!({"cnf": {"jwk": {}}}), Reason::Malformed("`cnf` names a confirmation method this API does not support")),
    ];
    for (patch, want) in cases {
        assert_eq!(check(&p, active(patch.clone())), Err(want), "{patch}");
    }
    assert_eq!(check(&p, active(json!({"exp": NOW - 59}))), Ok(()), "the clock skew applies");
    assert_eq!(check(&p, active(json!({"aud": ["x", API]}))), Ok(()), "a list naming this API");
    let clients = provider(json!({"allowed_client_ids": ["spa"]}));
    assert_eq!(check(&clients, active(json!({}))), Ok(()));
    assert_eq!(check(&clients, active(json!({"client_id": "cli"}))), Err(Reason::Client));
    assert_eq!(check(&clients, active(json!({"client_id": null}))), Err(Reason::Client));
    let any = provider(json!({"audiences": [], "allow_any_audience": true}));
    assert_eq!(check(&any, active(json!({"aud": null}))), Ok(()), "allow_any_audience: the one switch");
    let lifetime = provider(json!({"max_lifetime": "300s"}));
    assert!(matches!(check(&lifetime, active(json!({}))), Err(Reason::Lifetime(_))));
}

#[test]
fn an_answer_is_kept_until_exp_or_cache_duration_and_a_negative_one_briefly() {
    assert_eq!(answer_until(&active(json!({})), NOW, 300, 30), NOW + 300);
    assert_eq!(answer_until(&active(json!({"exp": NOW + 100})), NOW, 300, 30), NOW + 100);
    assert_eq!(answer_until(&active(json!({"exp": null})), NOW, 300, 30), NOW + 300);
    assert_eq!(answer_until(&active(json!({"active": false})), NOW, 300, 30), NOW + 30);
}

/// An engine over `config` (one provider, `p`), its caches, and answers.
struct World {
    engine: Engine,
    keys: KeySet,
    caches: Vec<TokenCache>,
    answers: Vec<Answers>,
}

impl World {
    fn new(config: Config) -> World {
        let keys = keys_of(&config.providers[0]);
        let answers = config.providers.iter().map(|_| Answers::default()).collect();
        let engine = Engine::new(config);
        let caches = engine.new_caches();
        World { engine, keys, caches, answers }
    }

    fn decide(&mut self, token: &str, now: u64) -> Outcome {
        let auth = format!("Bearer {token}");
        let headers: Vec<(&str, &[u8])> = vec![("authorization", auth.as_bytes())];
        let req = Request { method: "GET", path: "/x", headers: &headers, peer_certificate: &no_peer_certificate };
        let states = vec![KeyState::Ready(&self.keys, KidRefetch::Exhausted)];
        self.engine.decide_with(
            &req,
            &states,
            now,
            &mut self.caches,
            Shared { answers: &self.answers, proofs: None, nonce_secret: None },
        )
    }

    fn answer(&mut self, token: &str, fields: Map<String, Value>, until: u64) {
        self.answers[0].put(token_hash(token), Answer::Fields(Rc::new(fields)), until);
    }
}

fn reason(o: Outcome) -> Option<Reason> {
    match o {
        Outcome::Allow { .. } => None,
        Outcome::Deny(d) => Some(d.reason),
        Outcome::Wait { .. } => panic!("waits"),
    }
}

#[test]
fn an_opaque_token_waits_for_an_answer_then_is_decided_on_it_and_cached() {
    let mut w = World::new(config(json!({}), json!({})));
    match w.decide(OPAQUE, NOW) {
        Outcome::Wait { introspect, refetch, .. } => {
            assert_eq!(introspect, vec![(0, OPAQUE.to_string())]);
            assert!(refetch.is_empty());
        }
        o => panic!("{o:?}"),
    }
    w.answer(OPAQUE, active(json!({})), NOW + 300);
    assert_eq!(reason(w.decide(OPAQUE, NOW)), None);
    // The verdict is cached with the answer's time: gone from the answers, still allowed...
    w.answers[0] = Answers::default();
    assert_eq!(reason(w.decide(OPAQUE, NOW + 299)), None);
    // ...until it ends: then the endpoint is asked again.
    assert!(matches!(w.decide(OPAQUE, NOW + 300), Outcome::Wait { .. }));
    // JWTs keep their path; an opaque token without introspection is refused as before.
    assert_eq!(reason(w.decide(&access_token(json!({})), NOW)), None);
    let mut plain = World::new(config_with(json!({}), json!({})));
    assert_eq!(reason(plain.decide(OPAQUE, NOW)), Some(Reason::Opaque));
}

#[test]
fn refusals_from_answers_and_failures() {
    let mut w = World::new(config(json!({}), json!({})));
    w.answer("revoked-token-1", active(json!({"active": false})), NOW + 30);
    assert_eq!(reason(w.decide("revoked-token-1", NOW)), Some(Reason::Inactive));
    w.answer("wrong-aud-token", active(json!({"aud": "https://other"})), NOW + 300);
    assert_eq!(reason(w.decide("wrong-aud-token", NOW)), Some(Reason::Audience));
    w.answers[0].put(token_hash("down-token"), Answer::Unavailable, NOW + 1);
    let o = w.decide("down-token", NOW);
    assert_eq!(reason(o.clone()), Some(Reason::IntrospectionUnavailable));
    if let Outcome::Deny(d) = o {
        assert_eq!(d.response.status, 503);
        assert!(d.response.headers.iter().any(|(k, _)| k == "retry-after"));
    }
    assert!(
        matches!(w.decide("down-token", NOW + 1), Outcome::Wait { .. }),
        "a failure is not remembered past its hold"
    );
    w.answers[0].put(token_hash("html-token"), Answer::Unreadable, NOW + 30);
    assert_eq!(reason(w.decide("html-token", NOW)), Some(Reason::IntrospectionResponse));
    let big = "x".repeat(9000);
    assert_eq!(reason(w.decide(&big, NOW)), Some(Reason::TooLarge), "never sent anywhere");
}

#[test]
fn rules_read_the_answers_fields() {
    let rules = json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}, "scopes": ["admin"]}]);
    let mut w = World::new(config(json!({}), json!({"rules": rules})));
    w.answer(OPAQUE, active(json!({})), NOW + 300);
    assert_eq!(reason(w.decide(OPAQUE, NOW)), Some(Reason::Scope("admin".into())));
    w.answer("admin-token-xyz", active(json!({"scope": "admin"})), NOW + 300);
    assert_eq!(reason(w.decide("admin-token-xyz", NOW)), None);
}

#[test]
fn a_token_shown_to_one_endpoint_is_never_shown_to_a_second_in_the_same_request() {
    let (p, other) = two_endpoints();
    // An unmet allow rule hands the request on to a rule whose provider asks elsewhere.
    let rules = json!([
        {"match": {"prefix": "/"}, "action": "allow", "requires": {"provider_name": "p"}, "scopes": ["admin"]},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "q"}},
    ]);
    let c = Config::parse(json!({"providers": {"p": p, "q": other}, "rules": rules}).to_string().as_bytes()).unwrap();
    let mut w = World::new(c);
    w.answer(OPAQUE, active(json!({})), NOW + 300);
    assert_eq!(reason(w.decide(OPAQUE, NOW)), Some(Reason::Issuer), "q's endpoint is not asked");
}
