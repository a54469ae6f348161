//! Several issuers per provider: literals, `{claim}` templates with tenants (Entra ID v1 and
//! v2), what check-config refuses, and discovery documents that publish the template.

use serde_json::{json, Value};

use crate::authn::authenticate;
use crate::deny::Reason;
use crate::policy::{Config, ConfigError, IssuerMismatch, Issuers, Provider, Tenants};
use crate::testkit::*;

const V2: &str = "https://login.microsoftonline.com/{tid}/v2.0";
const V1: &str = "https://sts.windows.net/{tid}/";
const T1: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const T2: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

fn entra(tenants: Value) -> Provider {
    provider_with(json!({"issuer": null, "issuers": [V2, V1], "tenants": tenants}))
}

fn token(iss: &str, tid: Option<&str>) -> String {
    access_token(json!({"iss": iss, "tid": tid}))
}

fn verdict(p: &Provider, t: &str) -> Result<Option<String>, Reason> {
    authenticate(p, &keys_of(p), t, NOW).map(|v| v.tenant)
}

#[test]
fn entra_v1_and_v2_issuers_with_listed_tenants() {
    let p = entra(json!([T1]));
    let v2 = format!("https://login.microsoftonline.com/{T1}/v2.0");
    let v1 = format!("https://sts.windows.net/{T1}/");
    assert_eq!(verdict(&p, &token(&v2, Some(T1))), Ok(Some(T1.to_string())));
    assert_eq!(verdict(&p, &token(&v1, Some(T1))), Ok(Some(T1.to_string())));
    // A tenant not listed.
    let other = format!("https://login.microsoftonline.com/{T2}/v2.0");
    assert!(matches!(verdict(&p, &token(&other, Some(T2))), Err(Reason::Tenant(_))));
    // `tid` differs from the issuer's segment, or is missing, or not a string.
    assert!(matches!(verdict(&p, &token(&v2, Some(T2))), Err(Reason::Tenant(_))));
    assert!(matches!(verdict(&p, &token(&v2, None)), Err(Reason::Tenant(_))));
    let numeric = access_token(json!({"iss": v2, "tid": 7}));
    assert!(matches!(verdict(&p, &numeric), Err(Reason::Tenant(_))));
    // Another host is not a tenant problem.
    assert_eq!(verdict(&p, &token("https://evil.example/t/v2.0", Some(T1))), Err(Reason::Issuer));
    assert_eq!(Reason::Tenant("x").as_str(), "tenant");
    assert_eq!(Reason::Tenant("x").status(), 401);
}

#[test]
fn a_malformed_tenant_segment_is_refused_even_with_any_tenant() {
    let p = entra(json!(["*"]));
    let ok = format!("https://login.microsoftonline.com/{T2}/v2.0");
    assert_eq!(verdict(&p, &token(&ok, Some(T2))), Ok(Some(T2.to_string())));
    for bad in ["", "a/b", "a b", "a%2Fb", "é", &"x".repeat(65)] {
        let iss = format!("https://login.microsoftonline.com/{bad}/v2.0");
        assert!(matches!(verdict(&p, &token(&iss, Some(bad))), Err(Reason::Tenant(_))), "{bad:?}");
    }
    let max = "x".repeat(64);
    let iss = format!("https://login.microsoftonline.com/{max}/v2.0");
    assert!(verdict(&p, &token(&iss, Some(&max))).is_ok());
}

#[test]
fn two_literal_issuers_share_one_key_set() {
    let p =
        provider_with(json!({"issuer": null, "issuers": ["https://tenant.auth0.com/", "https://login.example.com/"]}));
    assert_eq!(verdict(&p, &token("https://tenant.auth0.com/", None)), Ok(None));
    assert_eq!(verdict(&p, &token("https://login.example.com/", None)), Ok(None));
    assert_eq!(verdict(&p, &token("https://login.example.com", None)), Err(Reason::Issuer));
    assert_eq!(verdict(&p, &access_token(json!({"iss": null}))), Err(Reason::Issuer));
}

#[test]
fn id_tokens_are_still_refused_per_matched_issuer() {
    let p = entra(json!([T1]));
    let v2 = format!("https://login.microsoftonline.com/{T1}/v2.0");
    let id = id_token(json!({"iss": v2, "tid": T1}));
    assert_eq!(verdict(&p, &id), Err(Reason::IdToken));
}

#[test]
fn the_check_names_the_mismatch() {
    let i = entra(json!([T1])).issuers.unwrap();
    let none = serde_json::Map::new();
    assert_eq!(i.check(None, &none), Err(IssuerMismatch::Unknown));
    assert_eq!(i.check(Some("https://x/"), &none), Err(IssuerMismatch::Unknown));
    assert!(matches!(i.check(Some("https://sts.windows.net/t/"), &none), Err(IssuerMismatch::Tenant(_))));
    assert_eq!(i.tenants, Tenants::Listed(vec![T1.to_string()]));
}

#[test]
fn discovery_accepts_our_issuers_and_the_published_template() {
    let i = entra(json!(["*"])).issuers.unwrap();
    assert!(i.accepts_discovered("https://login.microsoftonline.com/{tenantid}/v2.0"));
    assert!(i.accepts_discovered("https://login.microsoftonline.com/{tid}/v2.0"));
    assert!(!i.accepts_discovered("https://login.microsoftonline.com/{tenantid}/v1.0"));
    assert!(!i.accepts_discovered(&format!("https://login.microsoftonline.com/{T1}/v2.0")));
    assert!(!i.accepts_discovered("https://evil.example/{tid}/v2.0"));
    assert!(Issuers::single(ISS).accepts_discovered(ISS));
    assert!(!Issuers::single(ISS).accepts_discovered("https://other/"));
}

fn error(patch: Value) -> ConfigError {
    let mut p = provider_json();
    merge(&mut p, patch);
    Config::parse(json!({"providers": {"p": p}}).to_string().as_bytes()).unwrap_err()
}

#[test]
fn check_config_refuses_malformed_issuers_and_tenants_with_their_field() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"issuer": "https://sts.windows.net/*/"}), "providers.p.issuer", "`issuers`"),
        (json!({"issuer": "https://login.microsoftonline.com/{tid}/v2.0"}), "providers.p.issuer", "template"),
        (json!({"issuer": ""}), "providers.p.issuer", "non-empty"),
        (json!({"issuer": null}), "providers.p.issuer", "required"),
        (json!({"issuers": [ISS]}), "providers.p", "exactly one of issuer and issuers"),
        (json!({"issuer": null, "issuers": []}), "providers.p.issuers", "1 to 64"),
        (json!({"issuer": null, "issuers": ["https://a/*/"]}), "providers.p.issuers[0]", "not a wildcard"),
        (
            json!({"issuer": null, "issuers": [V2, "https://a/{x}/{y}"], "tenants": ["*"]}),
            "providers.p.issuers[1]",
            "exactly one",
        ),
        (
            json!({"issuer": null, "issuers": ["https://a/{}/"], "tenants": ["*"]}),
            "providers.p.issuers[0]",
            "name a claim",
        ),
        (
            json!({"issuer": null, "issuers": ["https://a/{t-id}/"], "tenants": ["*"]}),
            "providers.p.issuers[0]",
            "name a claim",
        ),
        (json!({"issuer": null, "issuers": ["https://a/}/"]}), "providers.p.issuers[0]", "without `{`"),
        (
            json!({"issuer": null, "issuers": ["{tid}.example"], "tenants": ["*"]}),
            "providers.p.issuers[0]",
            "fixed part",
        ),
        (json!({"issuer": null, "issuers": [ISS, ISS]}), "providers.p.issuers[1]", "twice"),
        (json!({"issuer": null, "issuers": [V2]}), "providers.p.tenants", "required"),
        (json!({"issuer": null, "issuers": [V2], "tenants": []}), "providers.p.tenants", "1 to 1024"),
        (json!({"issuer": null, "issuers": [V2], "tenants": ["a", "*"]}), "providers.p.tenants[1]", "stands alone"),
        (json!({"issuer": null, "issuers": [V2], "tenants": ["a/b"]}), "providers.p.tenants[0]", "1 to 64"),
        (json!({"tenants": ["a"]}), "providers.p.tenants", "only applies"),
        (json!({"payload_in_metadata": ""}), "providers.p.payload_in_metadata", "non-empty"),
        (
            json!({"normalize_payload_in_metadata": {"space_delimited_claims": [""]}}),
            "providers.p.normalize_payload_in_metadata.space_delimited_claims[0]",
            "claim name",
        ),
    ];
    for (patch, field, needle) in cases {
        let e = error(patch.clone());
        assert_eq!(e.field, field, "{patch}: {e}");
        assert!(e.message.contains(needle), "{patch}: {e}");
    }
}
