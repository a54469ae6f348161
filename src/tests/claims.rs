//! Claim rules: every value form, lists, words, nested and dotted names, `not_values`, bounds
//! and malformed entries with their field paths, and the decision they give.

use serde_json::{json, Map, Value};

use crate::decision::claim_match::{first_unmet, holds};
use crate::decision::token_cache::TokenCache;
use crate::decision::{no_peer_certificate, Engine, Outcome, Request};
use crate::deny::Reason;
use crate::jwks::{KeySet, KeyState, KidRefetch};
use crate::policy::{ClaimRule, Config, ConfigError, Pattern};
use crate::testkit::*;

fn rule(entry: Value) -> ClaimRule {
    rules_of(json!([entry])).remove(0)
}

/// The compiled `claims` of one rule.
fn rules_of(claims: Value) -> Vec<ClaimRule> {
    parse_rules(claims).unwrap().rules.unwrap().remove(0).claims
}

fn parse_rules(claims: Value) -> Result<Config, ConfigError> {
    let mut c = json!({"providers": {"p": provider_json()}});
    c["rules"] = json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}, "claims": claims}]);
    Config::parse(c.to_string().as_bytes())
}

fn claims(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn holds_for(entry: Value, token: Value) -> bool {
    holds(&rule(entry), &claims(token), &[])
}

#[test]
fn value_forms_as_in_istio() {
    assert_eq!(Pattern::parse("admin"), Ok(Pattern::Exact("admin".into())));
    assert_eq!(Pattern::parse("team-*"), Ok(Pattern::Prefix("team-".into())));
    assert_eq!(Pattern::parse("*@example.com"), Ok(Pattern::Suffix("@example.com".into())));
    assert_eq!(Pattern::parse("*"), Ok(Pattern::Present));
    let t = json!({"g": "team-a"});
    assert!(holds_for(json!({"name": "g", "values": ["team-a"]}), t.clone()));
    assert!(!holds_for(json!({"name": "g", "values": ["team-"]}), t.clone()));
    assert!(holds_for(json!({"name": "g", "values": ["team-*"]}), t.clone()));
    assert!(!holds_for(json!({"name": "g", "values": ["ops-*"]}), t.clone()));
    assert!(holds_for(json!({"name": "g", "values": ["*-a"]}), t.clone()));
    assert!(!holds_for(json!({"name": "g", "values": ["*-b"]}), t.clone()));
    assert!(holds_for(json!({"name": "g", "values": ["*"]}), t.clone()));
    // `*` means present and non-empty.
    assert!(!holds_for(json!({"name": "g", "values": ["*"]}), json!({"g": ""})));
    assert!(!holds_for(json!({"name": "g", "values": ["*"]}), json!({})));
    // Any listed value may match.
    assert!(holds_for(json!({"name": "g", "values": ["x", "y", "team-a"]}), t));
}

#[test]
fn lists_match_when_an_element_does_and_types_match_their_json_text() {
    let t = json!({"groups": ["eng", "admins"], "n": 42, "ok": true, "f": 1.5, "o": {"a": "x"}, "z": null,
                   "mixed": [{"a": "x"}, 7, null, ["admins"]]});
    assert!(holds_for(json!({"name": "groups", "values": ["admins"]}), t.clone()));
    assert!(!holds_for(json!({"name": "groups", "values": ["ops"]}), t.clone()));
    assert!(holds_for(json!({"name": "n", "values": ["42"]}), t.clone()));
    assert!(holds_for(json!({"name": "ok", "values": ["true"]}), t.clone()));
    assert!(!holds_for(json!({"name": "ok", "values": ["false"]}), t.clone()));
    assert!(holds_for(json!({"name": "f", "values": ["1.5"]}), t.clone()));
    // Objects and nulls never match, not even `*`; nested lists are not searched.
    assert!(!holds_for(json!({"name": "o", "values": ["*"]}), t.clone()));
    assert!(!holds_for(json!({"name": "z", "values": ["*"]}), t.clone()));
    assert!(holds_for(json!({"name": "mixed", "values": ["7"]}), t.clone()));
    assert!(!holds_for(json!({"name": "mixed", "values": ["admins"]}), t));
}

#[test]
fn scope_and_permission_and_listed_claims_match_word_by_word() {
    let t = json!({"scope": "read write", "permission": "a b", "roles": "x y", "other": "x y"});
    assert!(holds_for(json!({"name": "scope", "values": ["read"]}), t.clone()));
    assert!(!holds_for(json!({"name": "scope", "values": ["read write"]}), t.clone()));
    assert!(holds_for(json!({"name": "permission", "values": ["b"]}), t.clone()));
    // Another claim is one value, unless the provider lists it as space-delimited.
    assert!(!holds_for(json!({"name": "roles", "values": ["x"]}), t.clone()));
    assert!(holds(&rule(json!({"name": "roles", "values": ["x"]})), &claims(t.clone()), &["roles".into()]));
    assert!(holds_for(json!({"name": "other", "values": ["x y"]}), t));
}

#[test]
fn nested_names_and_literal_paths() {
    let t = json!({"realm_access": {"roles": ["admin"]}, "https://example.com/roles": ["editor"],
                   "a": {"b.c": "v"}});
    assert!(holds_for(json!({"name": "realm_access.roles", "values": ["admin"]}), t.clone()));
    assert!(!holds_for(json!({"name": "realm_access.groups", "values": ["*"]}), t.clone()));
    assert!(holds_for(json!({"path": ["https://example.com/roles"], "values": ["editor"]}), t.clone()));
    // Dotted, the namespaced claim is a path through objects, which the token does not have.
    assert!(!holds_for(json!({"name": "https://example.com/roles", "values": ["editor"]}), t.clone()));
    assert!(holds_for(json!({"path": ["a", "b.c"], "values": ["v"]}), t.clone()));
    // A path through a non-object finds nothing.
    assert!(!holds_for(json!({"name": "realm_access.roles.x", "values": ["*"]}), t));
}

#[test]
fn not_values_exclude_and_hold_when_the_claim_is_missing() {
    let t = json!({"groups": ["eng", "contractors"]});
    assert!(!holds_for(json!({"name": "groups", "not_values": ["contractors"]}), t.clone()));
    assert!(holds_for(json!({"name": "groups", "not_values": ["interns"]}), t.clone()));
    assert!(holds_for(json!({"name": "missing", "not_values": ["x"]}), t.clone()));
    // Both: one of `values` and none of `not_values`.
    assert!(!holds_for(json!({"name": "groups", "values": ["eng"], "not_values": ["contr*"]}), t.clone()));
    assert!(holds_for(json!({"name": "groups", "values": ["eng"], "not_values": ["x"]}), t.clone()));
    // With `values`, a missing claim fails.
    assert!(!holds_for(json!({"name": "missing", "values": ["x"], "not_values": ["y"]}), t));
}

#[test]
fn every_entry_must_hold_and_the_first_unmet_is_named() {
    let rules = rules_of(json!([{"name": "tid", "values": ["t1"]}, {"name": "groups", "values": ["admins"]}]));
    let t = claims(json!({"tid": "t1", "groups": ["eng"]}));
    assert_eq!(first_unmet(&rules, &t, &[]).map(ClaimRule::display_name), Some("groups".to_string()));
    let t = claims(json!({"tid": "t1", "groups": ["admins"]}));
    assert_eq!(first_unmet(&rules, &t, &[]), None);
}

#[test]
fn malformed_entries_are_refused_with_their_field_path() {
    let long = "x".repeat(257);
    let deep: Vec<String> = (0..9).map(|i| format!("s{i}")).collect();
    let many_values: Vec<String> = (0..65).map(|i| format!("v{i}")).collect();
    let many_entries: Vec<Value> = (0..17).map(|_| json!({"name": "a", "values": ["b"]})).collect();
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!([{"values": ["a"]}]), "rules[0].claims[0]", "exactly one of name and path"),
        (json!([{"name": "a", "path": ["a"], "values": ["a"]}]), "rules[0].claims[0]", "exactly one"),
        (json!([{"name": "a"}]), "rules[0].claims[0]", "needs `values`, `not_values`"),
        (json!([{"name": "a..b", "values": ["x"]}]), "rules[0].claims[0].name", "dotted"),
        (json!([{"path": [], "values": ["x"]}]), "rules[0].claims[0].path", "one or more"),
        (json!([{"path": [""], "values": ["x"]}]), "rules[0].claims[0].path", "non-empty"),
        (json!([{"name": "a", "values": []}]), "rules[0].claims[0].values", "1 to 64"),
        (json!([{"name": "a", "values": many_values}]), "rules[0].claims[0].values", "1 to 64"),
        (json!([{"name": "a", "values": ["ok", ""]}]), "rules[0].claims[0].values[1]", "empty"),
        (json!([{"name": "a", "values": [long]}]), "rules[0].claims[0].values[0]", "256"),
        (json!([{"name": "a", "values": ["a*b"]}]), "rules[0].claims[0].values[0]", "one `*`"),
        (json!([{"name": "a", "not_values": ["**"]}]), "rules[0].claims[0].not_values[0]", "one `*`"),
        (json!([{"path": deep, "values": ["x"]}]), "rules[0].claims[0]", "at most 8"),
        (json!(many_entries), "rules[0].claims", "at most 16"),
        (json!([{"name": "a", "value": ["x"]}]), "rules[0].claims[0]", "unknown field `value`"),
        (json!([{"name": "a\"b", "values": ["x"]}]), "rules[0].claims[0]", "printable"),
    ];
    for (claims, field, needle) in cases {
        let e = parse_rules(claims.clone()).unwrap_err();
        assert_eq!(e.field, field, "{claims}: {e}");
        assert!(e.message.contains(needle), "{claims}: {e}");
    }
    // Claims, like scopes, need a requirement.
    let c = json!({"providers": {"p": provider_json()},
                   "rules": [{"match": {"prefix": "/"}, "claims": [{"name": "a", "values": ["b"]}]}]});
    let e = Config::parse(c.to_string().as_bytes()).unwrap_err();
    assert_eq!(e.field, "rules[0].claims");
}

#[test]
fn bounds_at_the_limit_are_accepted() {
    let at_limit: Vec<Value> = (0..16).map(|_| json!({"name": "a", "values": ["b"]})).collect();
    assert_eq!(rules_of(json!(at_limit)).len(), 16);
    let path: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
    let values: Vec<String> = (0..64).map(|i| format!("v{i}")).collect();
    let r = rule(json!({"path": path, "values": values, "not_values": ["x".repeat(256)]}));
    assert_eq!((r.path.len(), r.values.len()), (8, 64));
}

/// One request through the engine: a rule on `/admin` with `claims`.
fn decide(claims: Value, token: &str) -> Outcome {
    let mut c = json!({"providers": {"p": provider_json()}});
    c["rules"] = json!([{"match": {"prefix": "/admin"}, "requires": {"provider_name": "p"}, "claims": claims},
                        {"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]);
    let config = Config::parse(c.to_string().as_bytes()).unwrap();
    assert!(config.providers[0].keep_claims, "a rule reads claims, so verified tokens keep them");
    let keys: Vec<KeySet> = config.providers.iter().map(keys_of).collect();
    let engine = Engine::new(config);
    let mut caches: Vec<TokenCache> = engine.new_caches();
    let auth = format!("Bearer {token}");
    let headers: Vec<(&str, &[u8])> = vec![("authorization", auth.as_bytes()), (":path", b"/admin/x")];
    let req = Request { method: "GET", path: "/admin/x", headers: &headers, peer_certificate: &no_peer_certificate };
    let states: Vec<KeyState<'_>> = keys.iter().map(|k| KeyState::Ready(k, KidRefetch::Exhausted)).collect();
    // Twice: the second decision comes from the verified-token cache.
    let first = engine.decide(&req, &states, NOW, &mut caches);
    let second = engine.decide(&req, &states, NOW, &mut caches);
    assert_eq!(format!("{first:?}"), format!("{second:?}"));
    second
}

#[test]
fn a_refused_claim_is_403_insufficient_scope_naming_the_claim_never_the_values() {
    let rule = json!([{"name": "groups", "values": ["secret-admins"]}]);
    match decide(rule.clone(), &access_token(json!({"groups": ["eng"]}))) {
        Outcome::Deny(d) => {
            assert_eq!(d.reason, Reason::Claim("groups".into()));
            assert_eq!(d.reason.as_str(), "claim");
            assert_eq!(d.response.status, 403);
            let challenge = &d.response.headers.iter().find(|(k, _)| k == "www-authenticate").unwrap().1;
            assert!(challenge.contains("error=\"insufficient_scope\""), "{challenge}");
            assert!(challenge.contains("`groups`"), "{challenge}");
            assert!(!challenge.contains("scope=\""), "{challenge}");
            assert!(!challenge.contains("secret-admins") && !d.response.body.contains("secret-admins"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(decide(rule, &access_token(json!({"groups": ["secret-admins"]}))), Outcome::Allow { .. }));
}

#[test]
fn claims_without_rules_reading_them_are_not_kept() {
    let config = config_with(json!({}), json!({}));
    assert!(!config.providers[0].keep_claims);
}
