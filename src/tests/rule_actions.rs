//! Rule actions: `require` (the first matching rule decides), `allow` (unmet: the next
//! matching rule decides) and `deny` (its conditions hold: refused), which carry Istio's
//! ALLOW and DENY policies and RBAC's OR of policies.

use serde_json::{json, Value};

use crate::decision::token_cache::TokenCache;
use crate::decision::{no_peer_certificate, Engine, Outcome, Request};
use crate::deny::Reason;
use crate::jwks::{KeySet, KeyState, KidRefetch};
use crate::policy::Config;
use crate::testkit::*;

/// What GET `path` with `token` (as a bearer token) gets under configuration `c`.
fn outcome(c: Value, path: &str, token: Option<&str>) -> Outcome {
    let config = Config::parse(c.to_string().as_bytes()).unwrap();
    let keys: Vec<KeySet> = config.providers.iter().map(keys_of).collect();
    let engine = Engine::new(config);
    let mut caches: Vec<TokenCache> = engine.new_caches();
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &[u8])> = auth.iter().map(|a| ("authorization", a.as_bytes())).collect();
    let req = Request { method: "GET", path, headers: &headers, peer_certificate: &no_peer_certificate };
    let states: Vec<KeyState<'_>> = keys.iter().map(|k| KeyState::Ready(k, KidRefetch::Exhausted)).collect();
    engine.decide(&req, &states, NOW, &mut caches)
}

/// `None`: allowed; otherwise the refusal's reason (one provider, `p`).
fn verdict(rules: &Value, path: &str, token: Option<&str>) -> Option<Reason> {
    match outcome(json!({"providers": {"p": provider_json()}, "rules": rules}), path, token) {
        Outcome::Allow { .. } => None,
        Outcome::Deny(d) => Some(d.reason),
        Outcome::Wait { .. } => panic!("keys are ready"),
    }
}

fn token(sub: &str, groups: Value) -> String {
    access_token(json!({"sub": sub, "groups": groups}))
}

const OPTIONAL: &str = r#"{"requires_any": {"requirements": [{"provider_name": "p"}, {"allow_missing": {}}]}}"#;

fn optional() -> Value {
    serde_json::from_str(OPTIONAL).unwrap()
}

#[test]
fn allow_rules_are_alternatives_like_rbac_policies() {
    // Two ALLOW policies over overlapping paths: admins anywhere under /admin, alice anywhere.
    let rules = json!([
        {"match": {"prefix": "/admin"}, "action": "allow", "requires": {"provider_name": "p"},
         "claims": [{"name": "groups", "values": ["admins"]}]},
        {"match": {"prefix": "/"}, "action": "allow", "requires": {"provider_name": "p"},
         "principals": [format!("{ISS}/alice")]},
    ]);
    assert_eq!(verdict(&rules, "/admin/x", Some(&token("bob", json!(["admins"])))), None);
    assert_eq!(verdict(&rules, "/admin/x", Some(&token("alice", json!([])))), None, "the second rule allows");
    assert_eq!(verdict(&rules, "/other", Some(&token("alice", json!([])))), None);
    // Neither: the first unmet rule's refusal is the answer.
    assert_eq!(
        verdict(&rules, "/admin/x", Some(&token("bob", json!(["eng"])))),
        Some(Reason::Claim("groups".to_string()))
    );
    assert_eq!(verdict(&rules, "/other", Some(&token("bob", json!(["admins"])))), Some(Reason::Principal));
    // `requires` authenticates whatever the action: a bad token is refused at the first rule.
    assert_eq!(verdict(&rules, "/admin/x", Some("not-a-jwt")), Some(Reason::Opaque));
    assert_eq!(verdict(&rules, "/admin/x", None), Some(Reason::Missing));
}

#[test]
fn a_require_rule_decides_even_when_a_later_rule_would_allow() {
    let rules = json!([
        {"match": {"prefix": "/admin"}, "requires": {"provider_name": "p"},
         "claims": [{"name": "groups", "values": ["admins"]}]},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "p"}},
    ]);
    assert_eq!(
        verdict(&rules, "/admin/x", Some(&token("alice", json!([])))),
        Some(Reason::Claim("groups".to_string()))
    );
    let explicit = json!([{"match": {"prefix": "/"}, "action": "require", "requires": {"provider_name": "p"},
                           "principals": [format!("{ISS}/alice")]},
                          {"match": {"prefix": "/"}}]);
    assert_eq!(verdict(&explicit, "/x", Some(&token("bob", json!([])))), Some(Reason::Principal));
}

#[test]
fn deny_rules_refuse_when_their_conditions_hold_as_istio_deny_policies() {
    let rules = json!([
        // DENY requests without a principal, except on /healthz.
        {"match": {"prefix": "/healthz"}, "requires": optional()},
        {"match": {"prefix": "/"}, "action": "deny", "requires": optional(), "not_principals": ["*"]},
        // DENY bob, and anyone in group "blocked".
        {"match": {"prefix": "/"}, "action": "deny", "requires": optional(), "principals": ["*/bob"]},
        {"match": {"prefix": "/"}, "action": "deny", "requires": optional(),
         "claims": [{"name": "groups", "values": ["blocked"]}]},
        {"match": {"prefix": "/"}, "requires": optional()},
    ]);
    assert_eq!(verdict(&rules, "/healthz", None), None);
    assert_eq!(verdict(&rules, "/x", None), Some(Reason::Denied), "no principal: notRequestPrincipals * holds");
    assert_eq!(verdict(&rules, "/x", Some(&token("alice", json!([])))), None);
    assert_eq!(verdict(&rules, "/x", Some(&token("bob", json!([])))), Some(Reason::Denied));
    assert_eq!(verdict(&rules, "/x", Some(&token("carol", json!(["blocked"])))), Some(Reason::Denied));
    // A token that does not verify is refused as such, never judged by a deny rule's conditions.
    assert_eq!(verdict(&rules, "/x", Some("not-a-jwt")), Some(Reason::Opaque));
    assert_eq!(Reason::Denied.as_str(), "denied");
    assert_eq!(Reason::Denied.status(), 403);
}

#[test]
fn deny_conditions_without_a_token_only_hold_when_negative() {
    let deny = |cond: Value| {
        let mut rule = json!({"match": {"prefix": "/"}, "action": "deny", "requires": optional()});
        merge(&mut rule, cond);
        json!([rule, {"match": {"prefix": "/"}, "requires": optional()}])
    };
    // Positive conditions need a token to hold: the request goes on to the next rule.
    for c in [
        json!({"principals": ["*"]}),
        json!({"claims": [{"name": "groups", "values": ["*"]}]}),
        json!({"scopes": ["read"]}),
    ] {
        assert_eq!(verdict(&deny(c.clone()), "/x", None), None, "{c}");
    }
    // Negative ones hold without a token (Istio: no principal, no claim).
    for c in [json!({"not_principals": ["*/bob"]}), json!({"claims": [{"name": "groups", "not_values": ["ops"]}]})] {
        assert_eq!(verdict(&deny(c.clone()), "/x", None), Some(Reason::Denied), "{c}");
    }
    // All conditions must hold: bob is not denied by a rule that also wants group "ops".
    let both = deny(json!({"principals": ["*/bob"], "claims": [{"name": "groups", "values": ["ops"]}]}));
    assert_eq!(verdict(&both, "/x", Some(&token("bob", json!(["eng"])))), None);
    assert_eq!(verdict(&both, "/x", Some(&token("bob", json!(["ops"])))), Some(Reason::Denied));
}

#[test]
fn a_deny_rule_without_conditions_refuses_everything_it_matches() {
    let rules = json!([{"match": {"prefix": "/internal"}, "action": "deny"}, {"match": {"prefix": "/"}}]);
    assert_eq!(verdict(&rules, "/internal/x", Some(&token("alice", json!([])))), Some(Reason::Denied));
    assert_eq!(verdict(&rules, "/internal", None), Some(Reason::Denied));
    assert_eq!(verdict(&rules, "/x", None), None);
    // Unmet allow rules and no rule left: the first refusal, or no_route when none was unmet.
    let only_allow = json!([{"match": {"prefix": "/a"}, "action": "allow", "requires": {"provider_name": "p"},
                             "principals": ["*/alice"]}]);
    assert_eq!(verdict(&only_allow, "/a", Some(&token("bob", json!([])))), Some(Reason::Principal));
    assert_eq!(verdict(&only_allow, "/b", Some(&token("alice", json!([])))), Some(Reason::NoRoute));
}

#[test]
fn an_unknown_action_names_its_field() {
    let c = json!({"providers": {"p": provider_json()}, "rules": [{"match": {"prefix": "/"}, "action": "audit"}]});
    let e = Config::parse(c.to_string().as_bytes()).err().unwrap().to_string();
    assert!(e.contains("rules[0].action: unknown action \"audit\""), "{e}");
}

#[test]
fn an_allow_rule_without_a_token_holds_only_on_negative_conditions() {
    // Istio: notRequestPrincipals matches a request without a principal, so it is allowed.
    let rules = json!([
        {"match": {"prefix": "/token3"}, "action": "allow", "requires": optional(), "not_principals": [format!("{ISS}/bob")]},
        {"match": {"prefix": "/mine"}, "action": "allow", "requires": optional(), "principals": ["*"]},
    ]);
    assert_eq!(verdict(&rules, "/token3", None), None);
    assert_eq!(verdict(&rules, "/token3", Some(&token("alice", json!([])))), None);
    assert_eq!(verdict(&rules, "/token3", Some(&token("bob", json!([])))), Some(Reason::Principal));
    assert_eq!(verdict(&rules, "/mine", None), Some(Reason::Missing), "a positive condition needs a token");
    // `require` keeps its meaning: a rule with conditions needs a token.
    let require = json!([{"match": {"prefix": "/"}, "requires": optional(), "not_principals": ["*/bob"]}]);
    assert_eq!(verdict(&require, "/x", None), Some(Reason::Missing));
}

#[test]
fn a_token_verified_for_an_earlier_rule_only_counts_where_a_rule_asks_for_its_provider() {
    // p and r trust the same issuer; only p forwards a claim header. The first rule (p) is unmet,
    // the second (r) allows: what goes upstream is r's doing, never p's.
    let mut p = provider_json();
    p["claim_to_headers"] = json!([{"header_name": "x-from-p", "claim_name": "sub"}]);
    let c = json!({"providers": {"p": p, "r": provider_json()},
                   "rules": [{"match": {"prefix": "/"}, "action": "allow", "requires": {"provider_name": "p"}, "principals": ["*/admin"]},
                             {"match": {"prefix": "/"}, "action": "allow", "requires": {"provider_name": "r"}, "principals": ["*"]}]});
    let Outcome::Allow { mutations, verified, .. } = outcome(c, "/x", Some(&token("alice", json!([])))) else {
        panic!("the second rule allows")
    };
    assert_eq!(verified.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1]);
    assert!(!mutations.set_headers.iter().any(|(h, _)| h == "x-from-p"), "{mutations:?}");
}

#[test]
fn allow_missing_and_allow_missing_or_failed_forward_a_valid_tokens_claims() {
    // They judge every provider's token, so a valid one's claims still go upstream.
    let mut p = provider_json();
    p["claim_to_headers"] = json!([{"header_name": "x-sub", "claim_name": "sub"}]);
    for requires in [json!({"allow_missing_or_failed": {}}), json!({"allow_missing": {}})] {
        let c = json!({"providers": {"p": p.clone()}, "rules": [{"match": {"prefix": "/"}, "requires": requires}]});
        let Outcome::Allow { mutations, .. } = outcome(c, "/x", Some(&token("alice", json!([])))) else {
            panic!("{requires}")
        };
        assert!(
            mutations.set_headers.contains(&("x-sub".to_string(), "alice".to_string())),
            "{requires}: {mutations:?}"
        );
    }
}
