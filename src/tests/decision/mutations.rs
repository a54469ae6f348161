//! What an allowed request carries upstream: tokens stripped or kept, claim headers set, and
//! headers a client may not send dropped, on every kind of route.

use serde_json::json;

use super::*;

#[test]
fn mutations_strip_token_and_set_claims() {
    let mut w = World::new(two_providers(Value::Null));
    let a = access_token(json!({}));
    let spoofed = [("x-sub", "admin"), ("x-other-sub", "admin"), ("x-payload", "e30"), ("x-jwt-guard-payload", "AA==")];
    match w.decide("GET", &format!("/x?access_token={a}&k=v"), &spoofed) {
        Outcome::Allow { mutations, verified, preflight } => {
            assert!(!preflight);
            assert_eq!(mutations.path.as_deref(), Some("/x?k=v"));
            for (h, _) in spoofed {
                assert!(mutations.remove_headers.contains(&h.to_string()), "{h}");
            }
            assert!(mutations.set_headers.contains(&("x-sub".to_string(), "user-1".to_string())));
            assert!(mutations
                .set_headers
                .contains(&("x-payload".to_string(), a.split('.').nth(1).unwrap().to_string())));
            assert_eq!(verified.len(), 1);
            assert_eq!(verified[0].0, 0);
        }
        other => panic!("{other:?}"),
    }
    // Headers the client did not send cost no removal.
    match w.decide("GET", &format!("/x?access_token={a}"), &[]) {
        Outcome::Allow { mutations, .. } => assert!(mutations.remove_headers.is_empty(), "{mutations:?}"),
        other => panic!("{other:?}"),
    }
    match w.decide("GET", "/x", &[("authorization", &bearer(&a))]) {
        Outcome::Allow { mutations, .. } => {
            assert!(mutations.remove_headers.contains(&"authorization".to_string()));
            assert_eq!(mutations.path, None);
        }
        other => panic!("{other:?}"),
    }
    match w.decide("GET", "/x", &[("cookie", &format!("z=1; other={}", b_token()))]) {
        Outcome::Allow { mutations, .. } => {
            assert!(mutations.set_headers.contains(&("cookie".to_string(), "z=1".to_string())))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn forward_true_keeps_the_token() {
    let mut w = World::new(config_with(json!({"forward": true}), json!({})));
    match w.decide("GET", "/x", &[("authorization", &bearer(&access_token(json!({}))))]) {
        Outcome::Allow { mutations, .. } => assert!(!mutations.remove_headers.contains(&"authorization".to_string())),
        other => panic!("{other:?}"),
    }
}

fn allowed_mutations(o: Outcome) -> Mutations {
    match o {
        Outcome::Allow { mutations, .. } => mutations,
        other => panic!("expected Allow, got {other:?}"),
    }
}

#[test]
fn underscore_spellings_of_claim_headers_are_dropped_on_every_route() {
    let rules =
        json!([{"match": {"prefix": "/healthz"}}, {"match": {"prefix": "/"}, "requires": {"provider_name": "a"}}]);
    let mut w = World::new(two_providers(rules));
    let a = access_token(json!({}));
    let spoofed = [("x_sub", "attacker"), ("x_payload", "e30"), ("x-other_sub", "svc"), ("x_unrelated", "ok")];
    for (path, auth) in [("/healthz", None), ("/api", Some(bearer(&a)))] {
        let mut headers: Vec<(&str, &str)> = spoofed.to_vec();
        if let Some(auth) = &auth {
            headers.push(("authorization", auth));
        }
        let m = allowed_mutations(w.decide("GET", path, &headers));
        for name in ["x_sub", "x_payload", "x-other_sub"] {
            assert!(m.remove_headers.iter().any(|h| h == name), "{path}: {name} kept: {:?}", m.remove_headers);
        }
        assert!(!m.remove_headers.iter().any(|h| h == "x_unrelated"), "{path}");
    }
}

#[test]
fn forward_false_strips_tokens_on_routes_without_requires() {
    let rules = json!([{"match": {"prefix": "/healthz"}}]);
    let mut w = World::new(two_providers(rules.clone()));
    let a = access_token(json!({}));
    let out = w.decide("GET", &format!("/healthz?access_token={a}&k=v"), &[]);
    assert!(matches!(out, Outcome::Allow { preflight: false, .. }), "a public route is not a preflight: {out:?}");
    let m = allowed_mutations(out);
    assert_eq!(m.path.as_deref(), Some("/healthz?k=v"));
    let m = allowed_mutations(w.decide("GET", "/healthz", &[("authorization", &bearer(&a))]));
    assert!(m.remove_headers.contains(&"authorization".to_string()), "{m:?}");
    let m = allowed_mutations(w.decide("GET", "/healthz", &[("cookie", &format!("z=1; other={}", b_token()))]));
    assert!(m.set_headers.contains(&("cookie".to_string(), "z=1".to_string())), "{m:?}");
    // Two Authorization headers do not extract; both go.
    let m =
        allowed_mutations(w.decide("GET", "/healthz", &[("authorization", "Bearer x"), ("authorization", "Bearer y")]));
    assert!(m.remove_headers.contains(&"authorization".to_string()), "{m:?}");
    // Another scheme is not ours to touch, and with forward: true nothing is stripped.
    let m = allowed_mutations(w.decide("GET", "/healthz", &[("authorization", "Basic dTpw")]));
    assert!(!m.remove_headers.contains(&"authorization".to_string()), "{m:?}");
    let mut cfg = config_with(json!({"forward": true}), json!({"rules": rules}));
    cfg.protected_headers.clear();
    let mut w = World::new(cfg);
    let m = allowed_mutations(w.decide("GET", "/healthz", &[("authorization", &bearer(&a))]));
    assert!(m.remove_headers.is_empty(), "{m:?}");
}

// ---- CORS preflights (bypass_cors_preflight) ----
