//! The importer's translations, form by form, and the narrower choice wherever a condition
//! cannot be carried. The e2e corpus (tests/e2e/test_import.py) runs the results in Envoy.

use serde_json::{json, Value};

use super::import_documents;
use super::notes::Notes;

/// RFC 7517's example RSA key (A.1), which Envoy's jwt_authn docs use too.
const JWKS: &str = r#"{"keys": [{"kty": "RSA", "kid": "2011-04-29", "alg": "RS256", "e": "AQAB", "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}]}"#;

fn envoy(providers: Value, rules: Value, rbac: Option<Value>) -> Vec<Value> {
    let mut filters = vec![json!({"name": "envoy.filters.http.jwt_authn", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": providers, "rules": rules}})];
    if let Some(r) = rbac {
        filters.push(json!({"name": "envoy.filters.http.rbac", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC", "rules": r}}));
    }
    vec![json!({"http_filters": filters})]
}

fn provider() -> Value {
    json!({"issuer": "https://idp.example.com/", "audiences": ["api"], "payload_in_metadata": "jwt",
           "local_jwks": {"inline_string": JWKS}})
}

fn import(docs: &[Value]) -> (Result<Value, String>, Notes) {
    let mut notes = Notes::default();
    (import_documents(docs, &[("idp.example.com".into(), "idp_jwks".into())], &mut notes), notes)
}

fn rules(docs: &[Value]) -> (Vec<Value>, Vec<String>) {
    let (c, notes) = import(docs);
    let c = c.unwrap();
    (c["rules"].as_array().unwrap().clone(), notes.lines().to_vec())
}

fn has(lines: &[String], prefix: &str, text: &str) -> bool {
    lines.iter().any(|l| l.starts_with(prefix) && l.contains(text))
}

fn meta(claim: &str, value: Value) -> Value {
    json!({"metadata": {"filter": "envoy.filters.http.jwt_authn", "path": [{"key": "jwt"}, {"key": claim}], "value": value}})
}

#[test]
fn jwt_authn_rules_keep_their_order_and_requirements() {
    let (r, notes) = rules(&envoy(
        json!({"p": provider()}),
        json!([{"match": {"prefix": "/health"}},
               {"match": {"prefix": "/api"}, "requires": {"provider_and_audiences": {"provider_name": "p", "audiences": ["orders"]}}},
               {"match": {"path_separated_prefix": "/v1"}, "requires": {"requires_any": {"requirements": [{"provider_name": "p"}, {"allow_missing": {}}]}}},
               {"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]),
        None,
    ));
    assert_eq!(r[0], json!({"match": {"prefix": "/health"}}));
    assert_eq!(r[1]["requires"]["provider_and_audiences"]["audiences"][5], json!("https://orders/"));
    assert_eq!(r[2]["match"], json!({"path_separated_prefix": "/v1"}));
    assert_eq!(r[3], json!({"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}));
    assert_eq!(r.len(), 4, "a catch-all rule needs no open rule after it");
    assert!(notes.iter().all(|l| l.starts_with("note:")), "{notes:?}");
}

#[test]
fn without_a_catch_all_rule_the_rest_is_open_as_in_jwt_authn() {
    let (r, _) = rules(&envoy(
        json!({"p": provider()}),
        json!([{"match": {"prefix": "/api"}, "requires": {"provider_name": "p"}}]),
        None,
    ));
    assert_eq!(r.last(), Some(&json!({"match": {"prefix": "/"}})));
}

#[test]
fn rules_that_cannot_be_carried_refuse() {
    let (r, notes) = rules(&envoy(
        json!({"p": provider()}),
        json!([{"match": {"safe_regex": {"regex": "/a.*"}}, "requires": {"provider_name": "p"}},
               {"match": {"prefix": "/q", "query_parameters": [{"name": "x"}]}},
               {"match": {"prefix": "/x"}, "requires": {"extract_only_without_validation": {}}},
               {"match": {"prefix": "/y"}, "requires": {"provider_name": "nobody"}}]),
        None,
    ));
    assert_eq!(r[0], json!({"match": {"prefix": "/"}, "action": "deny"}), "a regex path: every path it could be");
    assert_eq!(r[1], json!({"match": {"prefix": "/q"}, "action": "deny"}));
    assert_eq!(r[2], json!({"match": {"prefix": "/x"}, "action": "deny"}));
    assert_eq!(r[3], json!({"match": {"prefix": "/y"}, "action": "deny"}));
    assert!(has(&notes, "not carried: jwt_authn rules[0]", "match.safe_regex"), "{notes:?}");
    assert!(has(&notes, "not carried: jwt_authn rules[1]", "match.query_parameters"));
    assert!(has(&notes, "not carried: jwt_authn rules[2]", "extract_only_without_validation"));
    assert!(has(&notes, "not carried: jwt_authn rules[3]", "unknown provider"));
}

#[test]
fn providers_keep_jwt_authn_meaning() {
    let mut p = provider();
    p["audiences"] = json!([]);
    p["remote_jwks"] = json!({"http_uri": {"uri": "https://idp/jwks", "cluster": "c", "timeout": {"seconds": 2}}, "cache_duration": {"seconds": 300}});
    p.as_object_mut().unwrap().remove("local_jwks");
    p["from_headers"] = json!([{"name": "x-token"}]);
    p["subjects"] = json!({"prefix": "x"});
    let (c, notes) = import(&envoy(
        json!({"p": p, "q": {"audiences": ["a"], "local_jwks": {"inline_string": JWKS}}}),
        json!([]),
        None,
    ));
    let c = c.unwrap();
    let p = &c["providers"]["p"];
    assert_eq!(p["allow_any_audience"], json!(true));
    assert_eq!(p["require_expiration"], json!(false), "jwt_authn's default");
    assert_eq!(
        p["remote_jwks"],
        json!({"http_uri": {"uri": "https://idp/jwks", "cluster": "c", "timeout": "2s"}, "cache_duration": "300s"})
    );
    assert_eq!(p["from_headers"], json!([{"name": "x-token"}]));
    assert!(p.get("from_params").is_none(), "explicit locations replace the defaults");
    assert_eq!(c["bypass_cors_preflight"], json!(false), "jwt_authn's default");
    assert!(c["providers"].get("q").is_none());
    let lines = notes.lines();
    assert!(has(lines, "not carried: jwt_authn provider p", "subjects"), "{lines:?}");
    assert!(has(lines, "not carried: jwt_authn provider q", "no issuer"));
    assert!(has(lines, "note: check-config", "allow_any_audience"));
}

#[test]
fn nothing_usable_is_an_error() {
    let (c, _) = import(&[json!({"kind": "ConfigMap"})]);
    assert!(c.unwrap_err().contains("no envoy.filters.http.jwt_authn filter"));
    let (c, notes) =
        import(&envoy(json!({"p": {"issuer": "i", "local_jwks": {"inline_string": "{not json"}}}), json!([]), None));
    assert!(c.unwrap_err().contains("no jwt_authn provider could be carried"));
    assert!(has(notes.lines(), "not carried: jwt_authn provider p", "not JSON"));
}

fn allow_policy(permissions: Value, principals: Value) -> Value {
    json!({"action": "ALLOW", "policies": {"p1": {"permissions": permissions, "principals": principals}}})
}

#[test]
fn rbac_allow_policies_become_allow_rules_and_a_closing_deny() {
    let rbac = allow_policy(
        json!([{"and_rules": {"rules": [{"header": {"name": ":method", "string_match": {"exact": "GET"}}},
                                         {"url_path": {"path": {"prefix": "/orders"}}}]}}]),
        json!([
            meta("sub", json!({"string_match": {"exact": "ops-bot"}})),
            meta("roles", json!({"list_match": {"one_of": {"string_match": {"prefix": "orders:"}}}}))
        ]),
    );
    let (r, notes) = rules(&envoy(
        json!({"p": provider()}),
        json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]),
        Some(rbac),
    ));
    let want_match = json!({"prefix": "/orders", "headers": [{"name": ":method", "exact_match": "GET"}]});
    assert_eq!(r[0]["match"], want_match);
    assert_eq!(
        (r[0]["action"].clone(), r[0]["claims"].clone()),
        (json!("allow"), json!([{"path": ["sub"], "values": ["ops-bot"]}]))
    );
    assert_eq!(r[1]["claims"], json!([{"path": ["roles"], "values": ["orders:*"]}]));
    assert_eq!(r[2], json!({"match": {"prefix": "/"}, "action": "deny", "requires": {"provider_name": "p"}}));
    assert_eq!(r.len(), 3);
    assert!(
        has(
            &notes,
            "changed: RBAC filter 0: policies.p1.principals[0].metadata: claim",
            "string_match matches a string only"
        ),
        "{notes:?}"
    );
}

#[test]
fn rbac_deny_policies_come_first() {
    let rbac = json!({"action": "DENY", "policies": {"no-bob": {"permissions": [{"any": true}],
        "principals": [meta("sub", json!({"string_match": {"exact": "bob"}}))]}}});
    let (r, _) = rules(&envoy(
        json!({"p": provider()}),
        json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]),
        Some(rbac),
    ));
    assert_eq!(r[0]["action"], json!("deny"));
    assert_eq!(r[0]["claims"], json!([{"path": ["sub"], "values": ["bob"]}]));
    assert_eq!(r[1], json!({"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}));
}

#[test]
fn negations_follow_envoy_semantics() {
    // not(header x-env == prod): absent, or present and not prod.
    let rbac = allow_policy(
        json!([{"not_rule": {"header": {"name": "x-env", "string_match": {"exact": "prod"}}}}]),
        json!([{"not_id": meta("groups", json!({"list_match": {"one_of": {"string_match": {"exact": "banned"}}}}))}]),
    );
    let (r, _) = rules(&envoy(
        json!({"p": provider()}),
        json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]),
        Some(rbac),
    ));
    assert_eq!(
        r[0]["match"]["headers"],
        json!([{"name": "x-env", "present_match": true}, {"name": "x-env", "exact_match": "prod", "invert_match": true}])
    );
    assert_eq!(r[1]["match"]["headers"], json!([{"name": "x-env", "present_match": false}]));
    assert_eq!(r[0]["claims"], json!([{"path": ["groups"], "not_values": ["banned"]}]));
    // not(path in /admin): :path neither /admin nor /admin?...
    let rbac = allow_policy(json!([{"not_rule": {"url_path": {"path": {"exact": "/admin"}}}}]), json!([{"any": true}]));
    let (r, _) = rules(&envoy(json!({"p": provider()}), json!([{"match": {"prefix": "/"}}]), Some(rbac)));
    assert_eq!(
        r[0]["match"]["headers"],
        json!([{"name": ":path", "exact_match": "/admin", "invert_match": true},
                                                {"name": ":path", "prefix_match": "/admin?", "invert_match": true}])
    );
}

#[test]
fn what_cannot_be_carried_is_narrower_either_way() {
    // ALLOW: the alternative that needs a regex header is dropped (what only it allowed is refused).
    let rbac = allow_policy(
        json!([{"header": {"name": "x", "string_match": {"safe_regex": {"regex": "a|b"}}}},
                                   {"url_path": {"path": {"prefix": "/ok"}}}]),
        json!([{"any": true}]),
    );
    let (r, notes) = rules(&envoy(
        json!({"p": provider()}),
        json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]),
        Some(rbac),
    ));
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[0]["match"], json!({"prefix": "/ok"}));
    assert!(has(
        &notes,
        "not carried: jwt_authn rules[0]: RBAC filter 0: policies.p1.permissions[0].header",
        "what only this allowed is refused"
    ));
    // DENY: the condition is left out, so the DENY refuses more.
    let rbac = json!({"action": "DENY", "policies": {"d": {"permissions": [{"and_rules": {"rules": [
        {"url_path": {"path": {"prefix": "/admin"}}}, {"header": {"name": "x", "string_match": {"safe_regex": {"regex": "a|b"}}}}]}}],
        "principals": [{"any": true}]}}});
    let (r, notes) = rules(&envoy(
        json!({"p": provider()}),
        json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]),
        Some(rbac),
    ));
    assert_eq!(r[0], json!({"match": {"prefix": "/admin"}, "action": "deny", "requires": {"provider_name": "p"}}));
    assert!(has(&notes, "not carried: jwt_authn rules[0]: RBAC filter 0", "so it refuses more"));
    // Not about the token: left to the policy in place (ALLOW: kept without it; DENY: not written).
    let rbac = allow_policy(json!([{"destination_port": 443}]), json!([{"source_ip": {"address_prefix": "10.0.0.0"}}]));
    let (r, notes) = rules(&envoy(
        json!({"p": provider()}),
        json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]),
        Some(rbac),
    ));
    assert_eq!(r[0]["match"], json!({"prefix": "/"}));
    assert!(has(&notes, "left in place: jwt_authn rules[0]: RBAC filter 0", "destination_port"));
    assert!(has(&notes, "left in place: jwt_authn rules[0]: RBAC filter 0", "source_ip"));
}

#[test]
fn claims_on_a_route_without_a_token_only_hold_when_negative() {
    // jwt_authn verifies nothing on /open, so RBAC sees no payload there.
    let rbac = allow_policy(json!([{"any": true}]), json!([meta("sub", json!({"string_match": {"exact": "a"}}))]));
    let (r, _) = rules(&envoy(
        json!({"p": provider()}),
        json!([{"match": {"prefix": "/api"}, "requires": {"provider_name": "p"}}]),
        Some(rbac),
    ));
    // /api: the allow rule and its closing deny; the rest: only the closing deny.
    assert_eq!(
        r.iter().map(|x| x["action"].as_str().unwrap_or("require")).collect::<Vec<_>>(),
        ["allow", "deny", "deny"]
    );
    assert_eq!(r[2], json!({"match": {"prefix": "/"}, "action": "deny"}));
}

fn istio(aps: Value) -> Vec<Value> {
    let mut docs = vec![json!({"kind": "RequestAuthentication", "metadata": {"name": "ra", "namespace": "ns"},
        "spec": {"jwtRules": [{"issuer": "https://idp.example.com/", "audiences": ["api"], "jwksUri": "https://idp.example.com/jwks",
                               "fromHeaders": [{"name": "X-Token", "prefix": "Bearer "}], "outputClaimToHeaders": [{"header": "X-Sub", "claim": "sub"}]},
                              {"issuer": "i2", "jwksUri": "https://other.example.com:8443/keys"}]}})];
    docs.extend(aps.as_array().unwrap().iter().cloned());
    docs
}

fn ap(name: &str, action: &str, rules: Value) -> Value {
    json!({"kind": "AuthorizationPolicy", "metadata": {"name": name, "namespace": "ns"}, "spec": {"action": action, "rules": rules}})
}

#[test]
fn istio_request_authentication_is_a_token_or_none() {
    let (c, _) = import(&istio(json!([])));
    let c = c.unwrap();
    let p = &c["providers"]["ra-0"];
    assert_eq!(p["remote_jwks"]["http_uri"]["cluster"], json!("idp_jwks"), "--cluster");
    assert_eq!(c["providers"]["ra-1"]["remote_jwks"]["http_uri"]["cluster"], json!("outbound|8443||other.example.com"));
    assert_eq!(p["from_headers"], json!([{"name": "x-token", "value_prefix": "Bearer "}]));
    assert_eq!(p["claim_to_headers"], json!([{"header_name": "x-sub", "claim_name": "sub"}]));
    assert_eq!(c["providers"]["ra-1"]["allow_any_audience"], json!(true));
    assert_eq!(
        c["rules"],
        json!([{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
        {"provider_name": "ra-0"}, {"provider_name": "ra-1"}, {"allow_missing": {}}]}}}])
    );
}

#[test]
fn istio_deny_before_allow_and_no_match_refuses() {
    let (r, _) = rules(&istio(json!([
        ap(
            "allow",
            "ALLOW",
            json!([{"to": [{"operation": {"paths": ["/api/*"], "methods": ["GET"], "hosts": ["api.example.com"]}}],
                                    "from": [{"source": {"requestPrincipals": ["*"]}}]}])
        ),
        ap("deny", "DENY", json!([{"when": [{"key": "request.auth.claims[groups]", "values": ["blocked"]}]}])),
    ])));
    assert_eq!(r[0]["action"], json!("deny"));
    assert_eq!(r[0]["claims"], json!([{"path": ["groups"], "values": ["blocked"]}]));
    assert_eq!(r[1]["action"], json!("allow"));
    assert_eq!(r[1]["match"], json!({"prefix": "/api/", "methods": ["GET"], "hosts": ["api.example.com"]}));
    assert_eq!(r[1]["principals"], json!(["*"]));
    assert_eq!(r.len(), 2, "ALLOW policies exist: no rule left means refused");
}

#[test]
fn istio_conditions() {
    let (r, notes) = rules(&istio(json!([ap(
        "a",
        "ALLOW",
        json!([{
        "from": [{"source": {"notRequestPrincipals": ["*/bob"]}}],
        "to": [{"operation": {"paths": ["*/presenter", "/exact"], "notPaths": ["/exact/no"], "notMethods": ["DELETE"], "notHosts": ["*.internal"]}}],
        "when": [{"key": "request.auth.audiences", "values": ["api"]},
                 {"key": "request.auth.presenter", "notValues": ["bad-client"]},
                 {"key": "request.auth.principal", "values": ["https://idp.example.com//alice"]},
                 {"key": "request.auth.claims[realm_access][roles]", "values": ["*"]},
                 {"key": "request.headers[X-Env]", "values": ["prod", "stage-*"]}]}])
    )])));
    // Two paths by two header values: four alternatives.
    assert_eq!(r.len(), 4, "{r:#?}");
    let first = &r[0];
    assert_eq!(first["match"]["suffix"], json!("/presenter"));
    assert_eq!(first["match"]["not_hosts"], json!(["*.internal"]));
    assert_eq!(first["not_principals"], json!(["*/bob"]));
    assert_eq!(first["principals"], json!(["https://idp.example.com//alice"]));
    assert_eq!(
        first["claims"],
        json!([{"path": ["aud"], "values": ["api"]}, {"path": ["azp"], "not_values": ["bad-client"]},
                                       {"path": ["realm_access", "roles"], "values": ["*"]}])
    );
    let headers = first["match"]["headers"].as_array().unwrap();
    assert!(headers.contains(&json!({"name": ":method", "exact_match": "DELETE", "invert_match": true})));
    assert!(headers.contains(&json!({"name": ":path", "exact_match": "/exact/no", "invert_match": true})));
    assert!(headers.contains(&json!({"name": "x-env", "exact_match": "prod"})));
    assert_eq!(r[2]["match"]["path"], json!("/exact"));
    assert!(has(&notes, "changed: AuthorizationPolicy ns/a: spec.rules[0].when[3]", "number or boolean"), "{notes:?}");
}

#[test]
fn istio_conditions_not_about_the_token_and_unknown_ones() {
    let (r, notes) = rules(&istio(json!([
        ap(
            "a",
            "ALLOW",
            json!([{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"], "requestPrincipals": ["*"]}}]},
                                {"to": [{"operation": {"paths": ["/t/{*}"]}}]},
                                {"when": [{"key": "experimental.envoy.filters.a.b[c]", "values": ["x"]}]}])
        ),
        ap("d", "DENY", json!([{"from": [{"source": {"namespaces": ["evil"]}}]}])),
        ap("c", "CUSTOM", json!([{}])),
    ])));
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!(r[0]["principals"], json!(["*"]));
    assert!(has(&notes, "left in place: AuthorizationPolicy ns/a", "from[0].source.ipBlocks"), "{notes:?}");
    assert!(has(&notes, "not carried: AuthorizationPolicy ns/a: spec.rules[1].to[0].operation.paths", "path template"));
    assert!(has(&notes, "not carried: AuthorizationPolicy ns/a: spec.rules[2].when[0]", "experimental"));
    assert!(has(&notes, "left in place: AuthorizationPolicy ns/d", "namespaces"));
    assert!(has(&notes, "left in place: AuthorizationPolicy ns/c: spec.action", "CUSTOM"));
}

#[test]
fn istio_allow_policy_without_rules_allows_nothing() {
    let (r, _) = rules(&istio(json!([ap("none", "ALLOW", json!([]))])));
    assert!(r.is_empty(), "every request meets no rule: refused");
    let (r, _) = rules(&istio(json!([ap("all", "ALLOW", json!([{}]))])));
    assert_eq!(r[0]["match"], json!({"prefix": "/"}));
}

#[test]
fn istio_without_request_authentication_is_unusable() {
    let (c, _) = import(&[ap("a", "ALLOW", json!([{}]))]);
    assert!(c.unwrap_err().contains("no RequestAuthentication"));
}

#[test]
fn per_route_configuration_that_is_not_read_refuses() {
    // Envoy Gateway's shape: jwt_authn with a requirement_map and no rules, RBAC configured per route.
    let mut docs = envoy(json!({"p": provider()}), json!([]), None);
    let filters = docs[0]["http_filters"].as_array_mut().unwrap();
    filters[0]["typed_config"]["requirement_map"] = json!({"r1": {"provider_name": "p"}});
    filters.push(json!({"name": "envoy.filters.http.rbac", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"}}));
    let (r, notes) = rules(&docs);
    assert_eq!(r, vec![json!({"match": {"prefix": "/"}, "action": "deny"})], "never open: the routes may need a token");
    assert!(has(&notes, "not carried: jwt_authn: requirement_map", "refused"));
    assert!(has(&notes, "not carried: RBAC filter 0: rules", "RBACPerRoute"));
    // A rule naming a requirement_map entry is carried.
    let mut docs =
        envoy(json!({"p": provider()}), json!([{"match": {"prefix": "/api"}, "requirement_name": "r1"}]), None);
    docs[0]["http_filters"][0]["typed_config"]["requirement_map"] = json!({"r1": {"provider_name": "p"}});
    let (r, _) = rules(&docs);
    assert_eq!(r[0], json!({"match": {"prefix": "/api"}, "requires": {"provider_name": "p"}}));
    assert_eq!(r[1], json!({"match": {"prefix": "/"}, "action": "deny"}));
}
