//! Rule conditions on the request (jwt_authn's header matchers, Istio's hosts and paths), on the
//! verified token's principal (Istio's requestPrincipals forms), tokens without `aud`, and the
//! traps check-config catches.

use serde_json::{json, Value};

use crate::authn::authenticate;
use crate::decision::route::matching_rules;
use crate::decision::token_cache::TokenCache;
use crate::decision::{no_peer_certificate, Engine, Outcome, Request};
use crate::deny::Reason;
use crate::jwks::{KeySet, KeyState, KidRefetch};
use crate::policy::{Config, ConfigError, Pattern, PrincipalPattern};
use crate::testkit::*;

fn config(rules: Value) -> Result<Config, ConfigError> {
    let mut c = json!({"providers": {"p": provider_json()}});
    c["rules"] = rules;
    Config::parse(c.to_string().as_bytes())
}

/// The index of the rule that applies to `method path` with `headers`, if any.
fn route(rules: Value, method: &str, path: &str, headers: &[(&str, &str)]) -> Option<usize> {
    let c = config(rules).unwrap();
    let rules = c.rules.unwrap();
    let h: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    let first = matching_rules(&rules, method, path, &h).next();
    first.map(|r| rules.iter().position(|x| std::ptr::eq(x, r)).unwrap())
}

fn one(matcher: Value) -> Value {
    json!([{"match": matcher}])
}

#[test]
fn header_matchers_as_envoy_evaluates_them() {
    let m = |h: Value| one(json!({"prefix": "/", "headers": [h]}));
    let hit = |h: Value, headers: &[(&str, &str)]| route(m(h), "GET", "/x", headers).is_some();
    assert!(hit(json!({"name": "x-env", "exact_match": "prod"}), &[("x-env", "prod")]));
    assert!(!hit(json!({"name": "x-env", "exact_match": "prod"}), &[("x-env", "production")]));
    assert!(hit(json!({"name": "X-Env", "prefix_match": "pro"}), &[("x-env", "production")]));
    assert!(hit(json!({"name": "x-env", "suffix_match": "tion"}), &[("x-env", "production")]));
    assert!(hit(json!({"name": "x-env", "contains_match": "duc"}), &[("x-env", "production")]));
    assert!(!hit(json!({"name": "x-env", "contains_match": "xyz"}), &[("x-env", "production")]));
    assert!(hit(json!({"name": "x-env", "present_match": true}), &[("x-env", "")]));
    assert!(!hit(json!({"name": "x-env", "present_match": true}), &[]));
    assert!(hit(json!({"name": "x-env", "present_match": false}), &[]));
    assert!(!hit(json!({"name": "x-env", "present_match": false}), &[("x-env", "a")]));
    // invert_match inverts a present header's result; an absent header matches only an
    // inverted present_match: true (Envoy's HeaderUtility).
    assert!(hit(json!({"name": "x-env", "exact_match": "prod", "invert_match": true}), &[("x-env", "dev")]));
    assert!(!hit(json!({"name": "x-env", "exact_match": "prod", "invert_match": true}), &[("x-env", "prod")]));
    assert!(!hit(json!({"name": "x-env", "exact_match": "prod", "invert_match": true}), &[]));
    assert!(hit(json!({"name": "x-env", "present_match": true, "invert_match": true}), &[]));
    // Repeated headers are joined with `,`, as Envoy joins them.
    assert!(hit(json!({"name": "x-env", "exact_match": "a,b"}), &[("x-env", "a"), ("x-env", "b")]));
    // Pseudo-headers.
    assert!(hit(json!({"name": ":method", "exact_match": "GET"}), &[(":method", "GET")]));
    assert!(hit(json!({"name": ":authority", "suffix_match": ".example.com"}), &[(":authority", "api.example.com")]));
    // All conditions must hold.
    let both = one(
        json!({"prefix": "/", "headers": [{"name": "a", "present_match": true}, {"name": "b", "exact_match": "1"}]}),
    );
    assert!(route(both.clone(), "GET", "/", &[("a", "x"), ("b", "1")]).is_some());
    assert!(route(both, "GET", "/", &[("a", "x"), ("b", "2")]).is_none());
}

#[test]
fn hosts_match_the_whole_authority_case_insensitively() {
    let rules = |hosts: Value| one(json!({"prefix": "/", "hosts": hosts}));
    let hit = |hosts: Value, authority: &str| route(rules(hosts), "GET", "/", &[(":authority", authority)]).is_some();
    assert!(hit(json!(["api.example.com"]), "API.Example.com"));
    assert!(!hit(json!(["api.example.com"]), "api.example.com:8080"), "a port is part of the authority");
    assert!(hit(json!(["api.example.com:*"]), "api.example.com:8080"));
    assert!(hit(json!(["*.example.com"]), "a.example.com"));
    assert!(!hit(json!(["*.example.com"]), "example.com"));
    assert!(hit(json!(["api.*"]), "api.internal"));
    assert!(hit(json!(["*"]), "anything"));
    assert!(!hit(json!(["*"]), ""));
    let not = one(json!({"prefix": "/", "not_hosts": ["admin.example.com", "*.internal"]}));
    assert!(route(not.clone(), "GET", "/", &[(":authority", "api.example.com")]).is_some());
    assert!(route(not.clone(), "GET", "/", &[(":authority", "ADMIN.example.com")]).is_none());
    assert!(route(not.clone(), "GET", "/", &[(":authority", "db.internal")]).is_none());
    assert!(route(not, "GET", "/", &[]).is_some(), "no authority is not one of the not_hosts");
}

#[test]
fn path_forms_of_jwt_authn_and_istio() {
    let sep = one(json!({"path_separated_prefix": "/api"}));
    for (path, hit) in [("/api", true), ("/api/x", true), ("/api?q=1", true), ("/apix", false), ("/ap", false)] {
        assert_eq!(route(sep.clone(), "GET", path, &[]).is_some(), hit, "{path}");
    }
    let suffix = one(json!({"suffix": "/presenter"}));
    assert!(route(suffix.clone(), "GET", "/a/b/presenter?x=1", &[]).is_some());
    assert!(route(suffix, "GET", "/a/presenters", &[]).is_none());
    // First match wins, as before.
    let rules = json!([{"match": {"suffix": ".json"}}, {"match": {"prefix": "/"}}]);
    assert_eq!(route(rules.clone(), "GET", "/a.json", &[]), Some(0));
    assert_eq!(route(rules, "GET", "/a.xml", &[]), Some(1));
}

#[test]
fn malformed_conditions_name_their_field() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (one(json!({"path_separated_prefix": "/api/"})), "rules[0].match.path_separated_prefix", "not end"),
        (one(json!({"path_separated_prefix": "api"})), "rules[0].match.path_separated_prefix", "start with"),
        (one(json!({"suffix": ""})), "rules[0].match.suffix", "non-empty"),
        (one(json!({"prefix": "/", "suffix": "x"})), "rules[0].match", "exactly one of prefix, path"),
        (
            one(json!({"prefix": "/", "headers": [{"name": "a"}]})),
            "rules[0].match.headers[0]",
            "exactly one of exact_match",
        ),
        (
            one(json!({"prefix": "/", "headers": [{"name": "a", "exact_match": "x", "prefix_match": "y"}]})),
            "rules[0].match.headers[0]",
            "exactly one",
        ),
        (
            one(json!({"prefix": "/", "headers": [{"name": "a", "prefix_match": ""}]})),
            "rules[0].match.headers[0]",
            "empty",
        ),
        (
            one(json!({"prefix": "/", "headers": [{"name": "a b", "present_match": true}]})),
            "rules[0].match.headers[0].name",
            "header name",
        ),
        (
            one(json!({"prefix": "/", "headers": [{"name": "a", "safe_regex_match": {"regex": ".*"}}]})),
            "rules[0].match.headers[0]",
            "unknown field `safe_regex_match`",
        ),
        (one(json!({"prefix": "/", "hosts": ["a*b"]})), "rules[0].match.hosts[0]", "one `*`"),
        (one(json!({"prefix": "/", "not_hosts": ["a b"]})), "rules[0].match.not_hosts[0]", "must be a host"),
        (json!([{"match": {"prefix": "/"}, "principals": ["*"]}]), "rules[0].principals", "need a `requires`"),
        (
            json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}, "not_principals": [""]}]),
            "rules[0].not_principals[0]",
            "1 to 512",
        ),
    ];
    for (rules, field, needle) in cases {
        let e = config(rules.clone()).unwrap_err();
        assert_eq!(e.field, field, "{rules}: {e}");
        assert!(e.message.contains(needle), "{rules}: {e}");
    }
}

#[test]
fn principal_forms_split_at_the_last_slash_as_istio_does() {
    let p = |v: &str| PrincipalPattern::parse(v).unwrap();
    let exact = |s: &str| Pattern::Exact(s.into());
    assert_eq!(
        p("https://issuer.test//alice"),
        PrincipalPattern { iss: exact("https://issuer.test/"), sub: exact("alice") }
    );
    assert_eq!(p("*"), PrincipalPattern { iss: Pattern::Present, sub: Pattern::Present });
    assert_eq!(p("*/alice"), PrincipalPattern { iss: Pattern::Present, sub: exact("alice") });
    assert_eq!(p("*.test//alice"), PrincipalPattern { iss: Pattern::Suffix(".test/".into()), sub: exact("alice") });
    assert_eq!(
        p("https://issuer.test//*"),
        PrincipalPattern { iss: exact("https://issuer.test/"), sub: Pattern::Present }
    );
    assert_eq!(
        p("https://issuer.test//svc-*"),
        PrincipalPattern { iss: exact("https://issuer.test/"), sub: Pattern::Prefix("svc-".into()) }
    );
    assert_eq!(p("*alice"), PrincipalPattern { iss: Pattern::Present, sub: Pattern::Suffix("alice".into()) });
    assert_eq!(p("https:*"), PrincipalPattern { iss: Pattern::Prefix("https:".into()), sub: Pattern::Present });
    assert_eq!(p("plain"), PrincipalPattern { iss: exact("plain"), sub: exact("") });
    assert!(p("*").matches(Some("i"), Some("s")));
    assert!(!p("*").matches(Some("i"), None), "no sub, no principal");
    assert!(!p("*").matches(Some("i"), Some("")));
}

/// A request to `/x` through a rule with `extra` fields, with `token`.
fn decide(extra: Value, provider: Value, token: &str) -> Outcome {
    let mut p = provider_json();
    merge(&mut p, provider);
    let mut rule = json!({"match": {"prefix": "/"}, "requires": {"provider_name": "p"}});
    merge(&mut rule, extra);
    let c = json!({"providers": {"p": p}, "rules": [rule]});
    let config = Config::parse(c.to_string().as_bytes()).unwrap();
    let keys: Vec<KeySet> = config.providers.iter().map(keys_of).collect();
    let engine = Engine::new(config);
    let mut caches: Vec<TokenCache> = engine.new_caches();
    let auth = format!("Bearer {token}");
    let headers: Vec<(&str, &[u8])> = vec![("authorization", auth.as_bytes())];
    let req = Request { method: "GET", path: "/x", headers: &headers, peer_certificate: &no_peer_certificate };
    let states: Vec<KeyState<'_>> = keys.iter().map(|k| KeyState::Ready(k, KidRefetch::Exhausted)).collect();
    engine.decide(&req, &states, NOW, &mut caches)
}

fn reason(o: &Outcome) -> Option<Reason> {
    match o {
        Outcome::Deny(d) => Some(d.reason.clone()),
        _ => None,
    }
}

#[test]
fn principals_and_not_principals_of_a_rule() {
    let alice = access_token(json!({"sub": "alice"}));
    let bob = access_token(json!({"sub": "bob"}));
    let only_alice = json!({"principals": [format!("{ISS}/alice")]});
    assert_eq!(reason(&decide(only_alice.clone(), json!({}), &alice)), None);
    let refused = decide(only_alice, json!({}), &bob);
    assert_eq!(reason(&refused), Some(Reason::Principal));
    let Outcome::Deny(d) = refused else { unreachable!() };
    assert_eq!(d.response.status, 403);
    assert!(!d.response.body.contains("alice"), "the expected principal is never named");
    let not_bob = json!({"not_principals": ["*/bob"]});
    assert_eq!(reason(&decide(not_bob.clone(), json!({}), &alice)), None);
    assert_eq!(reason(&decide(not_bob, json!({}), &bob)), Some(Reason::Principal));
    // `*` needs a subject.
    let no_sub = access_token(json!({"sub": null}));
    assert_eq!(reason(&decide(json!({"principals": ["*"]}), json!({}), &no_sub)), Some(Reason::Principal));
    assert_eq!(Reason::Principal.as_str(), "principal");
}

#[test]
fn tokens_without_aud_only_with_allow_any_audience() {
    let p = provider_with(json!({"audiences": null, "allow_any_audience": true}));
    assert!(p.audiences.is_empty() && p.allow_any_audience);
    let keys = keys_of(&p);
    assert!(authenticate(&p, &keys, &access_token(json!({"aud": null})), NOW).is_ok());
    assert!(authenticate(&p, &keys, &access_token(json!({"aud": "anything"})), NOW).is_ok());
    // ID tokens are still refused: by their claims, their client audience, their typ.
    assert_eq!(authenticate(&p, &keys, &id_token(json!({})), NOW).unwrap_err(), Reason::IdToken);
    let c = config_with(json!({"audiences": null, "allow_any_audience": true}), json!({}));
    assert!(c.warnings().is_empty(), "id_token_audiences is set: {:?}", c.warnings());
    let bare =
        config_with(json!({"audiences": null, "allow_any_audience": true, "id_token_audiences": null}), json!({}));
    let w = bare.warnings();
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("providers.p") && w[0].contains("nonce, at_hash, c_hash"), "{w:?}");
    let typed = config_with(
        json!({"audiences": null, "allow_any_audience": true, "id_token_audiences": null, "require_typ": "at+jwt"}),
        json!({}),
    );
    assert!(typed.warnings().is_empty());
}

#[test]
fn check_config_catches_the_audience_traps() {
    let err = |patch: Value| {
        let mut p = provider_json();
        merge(&mut p, patch);
        Config::parse(json!({"providers": {"p": p}}).to_string().as_bytes()).unwrap_err()
    };
    let e = err(json!({"audiences": null}));
    assert_eq!(e.field, "providers.p.audiences");
    assert!(e.message.contains("allow_any_audience"), "{e}");
    let e = err(json!({"audiences": [API], "allow_any_audience": true}));
    assert_eq!(e.field, "providers.p.allow_any_audience");
    for trap in ["*", "api://*", "https://{tenant}.example.com"] {
        let e = err(json!({"audiences": [API, trap]}));
        assert_eq!(e.field, "providers.p.audiences[1]", "{trap}");
        assert!(e.message.contains("allow_any_audience"), "{e}");
    }
}

#[test]
fn provider_and_audiences_replaces_the_audiences_for_its_rule_only() {
    let pa = |auds: Value| json!({"provider_and_audiences": {"provider_name": "p", "audiences": auds}});
    let c = json!({"providers": {"p": provider_json()}, "rules": [
        {"match": {"prefix": "/orders"}, "requires": pa(json!(["orders-api"]))},
        {"match": {"prefix": "/billing"}, "requires": {"requires_any": {"requirements": [pa(json!(["orders-api"])), {"allow_missing": {}}]}}},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]});
    let config = Config::parse(c.to_string().as_bytes()).unwrap();
    assert_eq!(config.audience_variants.len(), 1, "the same provider and audiences share one verifier");
    assert_eq!(config.verifier(1), (0, &["orders-api".to_string()][..]));
    let keys: Vec<KeySet> = config.providers.iter().map(keys_of).collect();
    let engine = Engine::new(config);
    let mut caches = engine.new_caches();
    assert_eq!(caches.len(), 2);
    let mut at = |path: &str, token: &str| {
        let auth = format!("Bearer {token}");
        let headers: Vec<(&str, &[u8])> = vec![("authorization", auth.as_bytes())];
        let req = Request { method: "GET", path, headers: &headers, peer_certificate: &no_peer_certificate };
        let states: Vec<KeyState<'_>> = keys.iter().map(|k| KeyState::Ready(k, KidRefetch::Exhausted)).collect();
        engine.decide(&req, &states, NOW, &mut caches)
    };
    let orders = access_token(json!({"aud": "orders-api"}));
    let api = access_token(json!({}));
    // Each twice: a verdict cached for one audience list never answers for the other.
    for _ in 0..2 {
        assert!(matches!(at("/orders/1", &orders), Outcome::Allow { ref verified, .. } if verified[0].0 == 0));
        assert_eq!(reason(&at("/x", &orders)), Some(Reason::Audience));
        assert!(matches!(at("/x", &api), Outcome::Allow { .. }));
        match at("/orders/1", &api) {
            Outcome::Deny(d) => {
                assert_eq!((d.reason, d.provider), (Reason::Audience, Some(0)));
                assert!(d.response.body.contains("orders-api"), "names the rule's audience: {}", d.response.body);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(at("/billing", &orders), Outcome::Allow { .. }));
    }
}

#[test]
fn provider_and_audiences_errors_name_their_field() {
    let bad = |inner: Value, field: &str, needle: &str| {
        let c = json!({"providers": {"p": provider_json()},
                       "rules": [{"match": {"prefix": "/"}, "requires": {"provider_and_audiences": inner}}]});
        let e = Config::parse(c.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.field, field, "{e}");
        assert!(e.message.contains(needle), "{e}");
    };
    let f = "rules[0].requires.provider_and_audiences";
    bad(json!({"provider_name": "q", "audiences": ["a"]}), &format!("{f}.provider_name"), "unknown provider");
    bad(json!({"provider_name": "p"}), &format!("{f}.audiences"), "must be a list");
    bad(json!({"provider_name": "p", "audiences": []}), &format!("{f}.audiences"), "at least one");
    bad(json!({"provider_name": "p", "audiences": ["api://*"]}), &format!("{f}.audiences[0]"), "compared exactly");
    bad(json!({"provider_name": "p", "audiences": ["a"], "x": 1}), f, "unknown field `x`");
}
