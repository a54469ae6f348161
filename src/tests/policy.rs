use serde_json::{json, Value};

use crate::policy::*;
use crate::testkit::*;

fn parse(v: Value) -> Result<Config, ConfigError> {
    Config::parse(v.to_string().as_bytes())
}

fn with_provider(patch: Value) -> Value {
    let mut p = provider_json();
    merge(&mut p, patch);
    json!({"providers": {"p": p}})
}

fn field_of(v: Value) -> String {
    let e = parse(v).unwrap_err();
    format!("{}", e)
}

#[test]
fn the_issue_example_parses() {
    let text = include_str!("../../envoy/example-config.json");
    let c = Config::parse(text.as_bytes()).unwrap();
    assert_eq!(c.realm, "api");
    assert_eq!(c.rules.as_ref().unwrap().len(), 9);
    assert_eq!(c.providers[0].claim_to_headers[0].header_name, "x-jwt-sub");
}

/// docs/configuration.md says the example uses every field: every field its tables name (dotted names
/// such as `remote_jwks.cache_duration` as nested keys) and every `requires` form.
#[test]
fn the_example_config_uses_every_field_the_readme_lists() {
    let example: Value = serde_json::from_str(include_str!("../../envoy/example-config.json")).unwrap();
    let readme = include_str!("../../docs/configuration.md");
    fn has_path(v: &Value, path: &[&str]) -> bool {
        match path.split_first() {
            None => true,
            Some((key, rest)) => match v {
                Value::Object(map) => map
                    .iter()
                    .any(|(k, inner)| (k == key && has_path(inner, rest)) || (k != key && has_path(inner, path))),
                Value::Array(items) => items.iter().any(|i| has_path(i, path)),
                _ => false,
            },
        }
    }
    let section = |from: &str, to: &str| -> Vec<String> {
        let start = readme.find(from).unwrap();
        let end = start + readme[start..].find(to).unwrap();
        readme[start..end]
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .map(str::to_string)
            .collect()
    };
    let mut fields = section("### Top level", "### Provider");
    fields.extend(section("### Provider", "### Rules"));
    assert!(fields.len() > 25, "{fields:?}");
    let missing: Vec<&String> =
        fields.iter().filter(|f| !has_path(&example, &f.split('.').collect::<Vec<_>>())).collect();
    assert!(missing.is_empty(), "envoy/example-config.json lacks {missing:?}");
    for form in ["provider_name", "requires_any", "requires_all", "allow_missing", "allow_missing_or_failed"] {
        assert!(has_path(&example, &["rules", "requires", form]), "no rule uses {form}");
    }
}

#[test]
fn defaults() {
    let c = parse(with_provider(json!({}))).unwrap();
    let p = &c.providers[0];
    assert_eq!(c.realm, "jwt-guard");
    assert!(c.rules.is_none());
    assert_eq!(
        p.extraction.headers,
        vec![HeaderSource { name: "authorization".into(), value_prefix: Some("Bearer ".into()) }]
    );
    assert!(p.extraction.params.is_empty() && p.extraction.cookies.is_empty());
    assert!(!p.forward);
    assert_eq!(p.clock_skew_seconds, 60);
    assert!(p.require_expiration);
    assert_eq!(p.algorithms, DEFAULT_ALGORITHMS.to_vec());
    assert_eq!(p.jwt_cache_size, 10_000);
    assert_eq!(p.max_token_size, 8192);
    assert_eq!(p.id_token_claims, vec!["nonce", "at_hash", "c_hash"]);
    let c = parse(with_provider(json!({"local_jwks": null,
        "remote_jwks": {"http_uri": {"uri": "https://t.auth0.com/.well-known/jwks.json", "cluster": "c"}}})))
    .unwrap();
    match &c.providers[0].keys {
        KeySource::Remote(r) => {
            assert_eq!(r.timeout_ms, 5000);
            assert_eq!(r.cache_duration_ms, 600_000);
            assert_eq!(r.authority, "t.auth0.com");
            assert_eq!(r.path, "/.well-known/jwks.json");
        }
        KeySource::Local(_) => panic!("expected remote"),
    }
}

#[test]
fn zero_skew_and_zero_cache_mean_zero() {
    let c = parse(with_provider(json!({"clock_skew_seconds": 0, "jwt_cache_config": {"jwt_cache_size": 0}}))).unwrap();
    assert_eq!(c.providers[0].clock_skew_seconds, 0);
    assert_eq!(c.providers[0].jwt_cache_size, 0);
}

#[test]
fn protected_headers_collect_every_claim_header() {
    let c = parse(with_provider(json!({"forward_payload_header": "X-JWT-Payload",
        "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}]})))
    .unwrap();
    assert_eq!(c.protected_headers, vec!["x-jwt-guard-payload", "x-sub", "x-jwt-payload"]);
}

#[test]
fn every_requirement_form_parses() {
    let mut v = with_provider(json!({}));
    v["rules"] = json!([
        {"match": {"prefix": "/a"}, "requires": {"provider_name": "p"}},
        {"match": {"prefix": "/b"}, "requires": {"requires_any": {"requirements": [{"provider_name": "p"}, {"allow_missing": {}}]}}},
        {"match": {"prefix": "/c"}, "requires": {"requires_all": {"requirements": [{"provider_name": "p"}, {"provider_name": "p"}]}}},
        {"match": {"prefix": "/d"}, "requires": {"allow_missing_or_failed": {}}},
        {"match": {"path": "/e", "methods": ["post"]}, "requires": {"provider_name": "p"}, "scopes": ["x:y"]},
        {"match": {"prefix": "/"}}
    ]);
    let c = parse(v).unwrap();
    let rules = c.rules.unwrap();
    assert_eq!(rules[0].requires, Some(Requirement::Provider(0)));
    assert_eq!(rules[1].requires, Some(Requirement::Any(vec![Requirement::Provider(0), Requirement::AllowMissing])));
    assert_eq!(rules[2].requires, Some(Requirement::All(vec![Requirement::Provider(0), Requirement::Provider(0)])));
    assert_eq!(rules[3].requires, Some(Requirement::AllowMissingOrFailed));
    let e = &rules[4].matcher;
    assert_eq!((&e.path, &e.methods), (&PathMatch::Exact("/e".into()), &vec!["POST".to_string()]));
    assert!(e.headers.is_empty() && e.hosts.is_empty() && e.not_hosts.is_empty());
    assert_eq!(rules[4].scopes, vec!["x:y"]);
    assert_eq!(rules[5].requires, None);
}

#[test]
fn errors_name_the_offending_field() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!("nope"), "", "invalid type"),
        (json!({"providers": {}}), "providers", "providers: at least one provider"),
        (json!({"providers": {}, "realms": "x"}), "", "unknown field `realms`"),
        (with_provider(json!({"audience": "x"})), "providers.p", "providers.p: unknown field `audience`"),
        (with_provider(json!({"audiences": []})), "providers.p.audiences", "providers.p.audiences"),
        (with_provider(json!({"issuer": ""})), "providers.p.issuer", "providers.p.issuer"),
        (with_provider(json!({"issuer": null})), "providers.p.issuer", "is required (or `issuers`)"),
        (
            with_provider(json!({"local_jwks": null})),
            "providers.p",
            "exactly one of remote_jwks, local_jwks and discovery",
        ),
        (
            with_provider(json!({"remote_jwks": {"http_uri": {"uri": "https://x/j", "cluster": "c"}}})),
            "providers.p",
            "exactly one of remote_jwks, local_jwks and discovery",
        ),
        (
            with_provider(json!({"local_jwks": null, "remote_jwks": {"http_uri": {"uri": "https://x/j"}}})),
            "providers.p.remote_jwks.http_uri.cluster",
            "providers.p.remote_jwks.http_uri.cluster",
        ),
        (
            with_provider(
                json!({"local_jwks": null, "remote_jwks": {"http_uri": {"uri": "ftp://x/j", "cluster": "c"}}}),
            ),
            "providers.p.remote_jwks.http_uri.uri",
            "http_uri.uri",
        ),
        (
            with_provider(
                json!({"local_jwks": null, "remote_jwks": {"http_uri": {"uri": "https://x/j", "cluster": "c", "timeout": "5"}}}),
            ),
            "providers.p.remote_jwks.http_uri.timeout",
            "http_uri.timeout",
        ),
        (
            with_provider(
                json!({"local_jwks": null, "remote_jwks": {"http_uri": {"uri": "https://x/j", "cluster": "c"}, "cache_duration": "10m"}}),
            ),
            "providers.p.remote_jwks.cache_duration",
            "remote_jwks.cache_duration",
        ),
        (
            with_provider(json!({"local_jwks": {"inline_string": "{\"keys\": 5}"}})),
            "providers.p.local_jwks.inline_string",
            "providers.p.local_jwks.inline_string",
        ),
        (
            with_provider(json!({"local_jwks": {"inline_string": "not json"}})),
            "providers.p.local_jwks.inline_string",
            "local_jwks.inline_string: JWKS is not JSON",
        ),
        (
            with_provider(json!({"local_jwks": {"inline_string": "{\"keys\": []}"}})),
            "providers.p.local_jwks.inline_string",
            "local_jwks.inline_string",
        ),
        (with_provider(json!({"max_lifetime": "1h"})), "providers.p.max_lifetime", "providers.p.max_lifetime"),
        (with_provider(json!({"algorithms": ["none"]})), "providers.p.algorithms", "providers.p.algorithms: `none`"),
        (with_provider(json!({"algorithms": ["ES512"]})), "providers.p.algorithms", "ES512 is not supported"),
        (with_provider(json!({"algorithms": ["HS256"]})), "providers.p.local_jwks.inline_string", "no `oct` key"),
        (with_provider(json!({"algorithms": []})), "providers.p.algorithms", "providers.p.algorithms"),
        (
            with_provider(json!({"from_headers": [{"name": "bad header"}]})),
            "providers.p.from_headers[0].name",
            "from_headers[0].name",
        ),
        (with_provider(json!({"from_headers": []})), "providers.p", "no token could ever be found"),
        (with_provider(json!({"from_cookies": ["a=b"]})), "providers.p.from_cookies[0]", "from_cookies[0]"),
        (
            with_provider(json!({"claim_to_headers": [{"header_name": "authorization", "claim_name": "sub"}]})),
            "providers.p.claim_to_headers[0].header_name",
            "claim_to_headers[0].header_name",
        ),
        (
            with_provider(json!({"claim_to_headers": [{"header_name": "x", "claim_name": "a..b"}]})),
            "providers.p.claim_to_headers[0].claim_name",
            "claim_to_headers[0].claim_name",
        ),
        (with_provider(json!({"require_typ": ""})), "providers.p.require_typ", "require_typ"),
        (with_provider(json!({"clock_skew_seconds": -1})), "providers.p", "providers.p"),
        (with_provider(json!({"jwt_cache_config": {"size": 1}})), "providers.p", "unknown field `size`"),
        (with_provider(json!({"max_token_size": 1})), "providers.p.max_token_size", "max_token_size"),
    ];
    for (v, field, needle) in cases {
        let e = parse(v.clone()).unwrap_err();
        assert_eq!(e.field, field, "{v}: {e}");
        assert!(e.message.contains(needle) || e.to_string().contains(needle), "{v}: {e}");
        let msg = field_of(v.clone());
        assert!(msg.starts_with("invalid jwt-guard configuration"), "{msg}");
    }
}

#[test]
fn rule_errors() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "okta"}}]),
            "rules[0].requires.provider_name",
            "rules[0].requires.provider_name: unknown provider \"okta\"",
        ),
        (
            json!([{"match": {}}]),
            "rules[0].match",
            "rules[0].match: exactly one of prefix, path, path_separated_prefix and suffix",
        ),
        (json!([{"match": {"prefix": "/", "path": "/x"}}]), "rules[0].match", "exactly one of prefix, path,"),
        (json!([{"match": {"prefix": "x"}}]), "rules[0].match", "must start with `/`"),
        (json!([{"match": {"prefix": "/", "regex": ".*"}}]), "rules[0]", "rules[0]: unknown field `regex`"),
        (
            json!([{"match": {"prefix": "/"}, "requires": {}}]),
            "rules[0].requires",
            "rules[0].requires: must have exactly one",
        ),
        (
            json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "p", "allow_missing": {}}}]),
            "rules[0].requires",
            "must have exactly one",
        ),
        (
            json!([{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [{"provider_name": "p"}]}}}]),
            "rules[0].requires.requires_any.requirements",
            "at least two",
        ),
        (
            json!([{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [{"provider_name": "p"}, {"x": {}}]}}}]),
            "rules[0].requires.requires_any.requirements[1]",
            "requires_any.requirements[1]: unknown requirement `x`",
        ),
        (
            json!([{"match": {"prefix": "/"}, "requires": {"requires_all": {"reqs": []}}}]),
            "rules[0].requires.requires_all",
            "unknown field `reqs`",
        ),
        (
            json!([{"match": {"prefix": "/"}, "requires": {"allow_missing": {"x": 1}}}]),
            "rules[0].requires.allow_missing",
            "must be an empty object",
        ),
        (json!([{"match": {"prefix": "/"}, "scopes": ["a"]}]), "rules[0].scopes", "scopes need a `requires`"),
        (
            json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}, "scopes": ["a b"]}]),
            "rules[0].scopes",
            "rules[0].scopes",
        ),
    ];
    for (rules, field, needle) in cases {
        let mut v = with_provider(json!({}));
        v["rules"] = rules.clone();
        let e = parse(v).unwrap_err();
        assert_eq!(e.field, field, "{rules}: {e}");
        assert!(e.to_string().contains(needle), "{rules}: {e}");
    }
}

#[test]
fn realm_must_be_safe_in_a_quoted_string() {
    let mut v = with_provider(json!({}));
    v["realm"] = json!("a\"b");
    assert!(field_of(v).contains("realm"));
}

#[test]
fn hmac_needs_local_oct_key_and_never_remote() {
    let mut keys: Value = serde_json::from_str(JWKS).unwrap();
    keys["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kty": "oct", "kid": "hs-1", "k": crate::token::base64url::encode(HMAC_SECRET)}));
    assert!(parse(with_provider(json!({"algorithms": ["HS256"], "local_jwks": {"inline_string": keys.to_string()}})))
        .is_ok());
    let remote = with_provider(json!({"algorithms": ["HS256"], "local_jwks": null,
        "remote_jwks": {"http_uri": {"uri": "https://x/j", "cluster": "c"}}}));
    assert!(field_of(remote).contains("never remote_jwks"));
}

#[test]
fn http_urls_split_into_authority_and_path() {
    assert_eq!(split_http_url("https://idp.test/a/jwks.json"), Some(("idp.test", "/a/jwks.json")));
    assert_eq!(split_http_url("http://idp.test:8080"), Some(("idp.test:8080", "/")));
    assert_eq!(split_http_url("ftp://idp.test/x"), None);
    assert_eq!(split_http_url("idp.test/x"), None);
}
