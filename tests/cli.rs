//! The `jwt-guard` command line: check-config and explain, run as a user would.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

use jwt_guard::testkit::{API, ISS, JWKS};

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("jwt-guard-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A file of its own per call: tests run in parallel, and one rewriting a shared `local.json`
/// while another's command reads it made `explain` fail now and then.
fn write(name: &str, text: &str) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = dir().join(format!("{n}-{name}"));
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

fn run(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jwt-guard"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    let Output { status, stdout, stderr } = child.wait_with_output().unwrap();
    (status.code().unwrap(), String::from_utf8(stdout).unwrap(), String::from_utf8(stderr).unwrap())
}

fn b64(v: &serde_json::Value) -> String {
    jwt_guard::token::base64url::encode(v.to_string().as_bytes())
}

fn token(header: serde_json::Value, claims: serde_json::Value) -> String {
    let input = format!("{}.{}", b64(&header), b64(&claims));
    let key = EncodingKey::from_rsa_der(include_bytes!("../src/testdata/rsa_private_pkcs1.der"));
    format!("{input}.{}", jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::RS256).unwrap())
}

fn local_config() -> String {
    let c = json!({"realm": "api", "providers": {"auth0": {"issuer": ISS, "audiences": [API], "id_token_audiences": ["client-1"],
                   "local_jwks": {"inline_string": JWKS}, "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}]}}});
    write("local.json", &c.to_string())
}

const NOW: &str = "1800000000";

fn access() -> String {
    token(
        json!({"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"}),
        json!({"iss": ISS, "aud": API, "sub": "user-1", "exp": 1_800_003_600u64}),
    )
}

fn id() -> String {
    token(
        json!({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"}),
        json!({"iss": ISS, "aud": "client-1", "sub": "user-1", "nonce": "n", "exp": 1_800_003_600u64}),
    )
}

#[test]
fn check_config_accepts_and_refuses_with_the_plugins_messages() {
    let (code, out, _) = run(&["check-config", &local_config()], None);
    assert_eq!(code, 0);
    assert!(out.contains("OK (1 provider: auth0;"), "{out}");
    let bad = write("bad.json", &json!({"providers": {"auth0": {"issuer": ISS, "audiences": []}}}).to_string());
    let (code, _, err) = run(&["check-config", &bad], None);
    assert_eq!(code, 1);
    assert!(err.contains("invalid jwt-guard configuration: providers.auth0.audiences"), "{err}");
    let (code, _, err) = run(&["check-config", "/nonexistent.json"], None);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent.json"));
}

#[test]
fn check_config_says_the_jwks_cluster_must_exist() {
    let remote = json!({"providers": {"auth0": {"issuer": ISS, "audiences": [API],
        "remote_jwks": {"http_uri": {"uri": "https://idp.test/jwks.json", "cluster": "idp_jwks", "timeout": "2s"}}}}});
    let path = write("remote.json", &remote.to_string());
    let (code, out, _) = run(&["check-config", &path], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("through cluster \"idp_jwks\", which must exist in Envoy's configuration"), "{out}");
    let (_, out, _) = run(&["check-config", &local_config()], None);
    assert!(!out.contains("cluster"), "local keys need no cluster: {out}");
}

#[test]
fn explain_an_access_token() {
    let (code, out, _) = run(&["explain", "--config", &local_config(), "--now", NOW, &access()], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("classification: access token (header typ at+jwt)"), "{out}");
    assert!(out.contains("pass  signature"));
    assert!(out.contains("verdict: valid"));
    assert!(out.contains("status: allowed"));
    assert!(out.contains("set header: x-sub: user-1"));
    assert!(out.contains("remove header: authorization"));
}

#[test]
fn explain_an_id_token_from_stdin() {
    let (code, out, _) =
        run(&["explain", "--config", &local_config(), "--now", NOW, "-"], Some(&format!("Bearer {}\n", id())));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("classification: ID token (claim `nonce` is present)"), "{out}");
    assert!(out.contains("pass  signature"));
    assert!(out.contains("FAIL  access vs ID token: id_token"));
    assert!(out.contains("----  typ (not reached)"));
    assert!(out.contains("status: 401"));
    assert!(out.contains("www-authenticate: Bearer realm=\"api\", error=\"invalid_token\""));
    assert!(out.contains("\"error\":\"invalid_token\""));
}

#[test]
fn explain_names_the_failing_check() {
    let (code, out, _) = run(&["explain", "--config", &local_config(), "--now", "1900000000", &access()], None);
    assert_eq!(code, 2);
    assert!(out.contains("pass  key id") && out.contains("FAIL  exp/nbf: expired"), "{out}");
    let (code, out, _) = run(&["explain", "--config", &local_config(), "opaque-token-value"], None);
    assert_eq!(code, 2);
    assert!(out.contains("shape: opaque (not a JWT)") && out.contains("FAIL  shape: opaque"), "{out}");
}

#[test]
fn explain_remote_providers_need_jwks() {
    let c = json!({"providers": {"auth0": {"issuer": ISS, "audiences": [API],
                   "remote_jwks": {"http_uri": {"uri": "https://issuer.test/jwks", "cluster": "c"}}}}});
    let cfg = write("remote.json", &c.to_string());
    let (code, out, _) = run(&["explain", "--config", &cfg, "--now", NOW, &access()], None);
    assert_eq!(code, 2);
    assert!(out.contains("pass --jwks FILE"), "{out}");
    let jwks = write("jwks.json", JWKS);
    let (code, out, _) = run(&["explain", "--config", &cfg, "--jwks", &jwks, "--now", NOW, &access()], None);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn usage_errors() {
    assert_eq!(run(&[], None).0, 1);
    assert_eq!(run(&["explain"], None).0, 1);
    assert_eq!(run(&["explain", "--config"], None).0, 1);
    let (code, out, _) = run(&["--help"], None);
    assert_eq!(code, 0);
    assert!(out.contains("check-config"));
}

#[test]
fn explain_checks_a_dpop_request_and_a_certificate_binding() {
    use jwt_guard::jwks::jwk_thumbprint;
    use jwt_guard::testkit::{dpop_claims, dpop_proof, public_jwk, NOW as NOW_SECS};
    let config = local_config();
    let jkt = jwk_thumbprint(public_jwk("ec-1").as_object().unwrap()).unwrap();
    let t = token(
        json!({"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"}),
        json!({"iss": ISS, "aud": API, "sub": "u", "iat": NOW_SECS - 5, "exp": NOW_SECS + 600, "cnf": {"jkt": jkt}}),
    );
    let url = "https://api.example.com/items";
    let proof = dpop_proof(Algorithm::ES256, public_jwk("ec-1"), json!({}), dpop_claims("j1", "GET", url, &t));
    let (code, out, err) =
        run(&["explain", "--config", &config, "--now", NOW, "--url", url, "--dpop", &proof, &t], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("status: allowed"), "{out}");
    let (code, out, _) = run(&["explain", "--config", &config, "--now", NOW, "--url", url, &t], None);
    assert_eq!(code, 2);
    assert!(out.contains("reason: dpop_downgrade") && out.contains("www-authenticate: DPoP realm=\"api\""), "{out}");
    let (code, out, _) = run(
        &["explain", "--config", &config, "--now", NOW, "--url", "https://api.example.com/other", "--dpop", &proof, &t],
        None,
    );
    assert_eq!(code, 2);
    assert!(out.contains("reason: dpop_mismatch"), "{out}");
    // A certificate-bound token: the digest given, in hex, decides.
    let t = token(
        json!({"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"}),
        json!({"iss": ISS, "aud": API, "sub": "u", "iat": NOW_SECS - 5, "exp": NOW_SECS + 600,
               "cnf": {"x5t#S256": jwt_guard::token::base64url::encode(&[0xab; 32])}}),
    );
    let (code, out, _) = run(&["explain", "--config", &config, "--now", NOW, &t], None);
    assert_eq!(code, 2);
    assert!(out.contains("reason: cert_missing"), "{out}");
    let hex = "AB".repeat(32);
    let (code, out, _) = run(&["explain", "--config", &config, "--now", NOW, "--client-cert-sha256", &hex, &t], None);
    assert_eq!(code, 0, "{out}");
}

/// A config whose rules use conditions: a header, a host, a custom token header and a cookie.
fn conditions_config() -> String {
    let c = json!({"realm": "api", "providers": {
        "auth0": {"issuer": ISS, "audiences": [API], "local_jwks": {"inline_string": JWKS}},
        "partner": {"issuer": ISS, "audiences": [API], "local_jwks": {"inline_string": JWKS},
                    "from_headers": [{"name": "x-partner-token"}], "from_params": ["pt"], "from_cookies": ["ps"]}},
        "rules": [
            {"match": {"prefix": "/", "hosts": ["admin.example.com"]}, "requires": {"provider_name": "auth0"},
             "principals": [format!("{ISS}/admin")]},
            {"match": {"prefix": "/", "headers": [{"name": "x-canary", "present_match": true}]}},
            {"match": {"prefix": "/partner"}, "requires": {"provider_name": "partner"}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "auth0"}}]});
    write("conditions.json", &c.to_string())
}

#[test]
fn explain_shows_the_rule_and_takes_requests_without_a_bearer_token() {
    let cfg = conditions_config();
    // No token at all.
    let (code, out, _) = run(&["explain", "--config", &cfg, "--no-token", "--path", "/api"], None);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("Rule: rules[3] is the first whose match fits: prefix /; requires auth0"), "{out}");
    assert!(out.contains("reason: missing"), "{out}");
    // A header condition picks the open rule.
    let (code, out, _) = run(&["explain", "--config", &cfg, "--header", "x-canary:1", "--path", "/api"], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("rules[1] is the first whose match fits: prefix /, header x-canary"), "{out}");
    // --host: the host rule, with its principal condition.
    let (code, out, _) =
        run(&["explain", "--config", &cfg, "--host", "admin.example.com", "--now", NOW, &access()], None);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("rules[0]") && out.contains("reason: principal"), "{out}");
    // The token in a custom header, a parameter or a cookie.
    for place in [
        vec!["--header".to_string(), format!("x-partner-token:{}", access())],
        vec!["--param".to_string(), format!("pt={}", access())],
        vec!["--cookie".to_string(), format!("ps={}", access())],
    ] {
        let mut args = vec!["explain", "--config", &cfg, "--path", "/partner/x", "--now", NOW];
        args.extend(place.iter().map(String::as_str));
        let (code, out, _) = run(&args, None);
        assert_eq!(code, 0, "{place:?}: {out}");
        assert!(out.contains("Provider partner") && out.contains("verdict: valid"), "{place:?}: {out}");
        assert!(out.contains("rules[2] is the first whose match fits: prefix /partner; requires partner"), "{out}");
    }
    assert_eq!(run(&["explain", "--config", &cfg, "--no-token", &access()], None).0, 1);
    assert_eq!(run(&["explain", "--config", &cfg, "--header", "novalue"], None).0, 1);
}

#[test]
fn check_config_warns_when_nothing_tells_an_id_token_apart() {
    let c = json!({"providers": {"internal": {"issuer": ISS, "allow_any_audience": true,
                   "local_jwks": {"inline_string": JWKS}}}});
    let (code, out, _) = run(&["check-config", &write("any.json", &c.to_string())], None);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning: providers.internal: allow_any_audience with neither id_token_audiences nor require_typ"),
        "{out}"
    );
    let (_, out, _) = run(&["check-config", &local_config()], None);
    assert!(!out.contains("warning"), "{out}");
}

#[test]
fn import_prints_a_config_check_config_takes_and_says_what_it_did_not_carry() {
    let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/import/");
    // Everything carried: exit 0, and the printed configuration passes check-config.
    let (code, out, err) = run(&["import", &format!("{corpus}istio-authz-jwt-groups.yaml")], None);
    assert_eq!(code, 0, "{err}");
    assert!(err.lines().all(|l| l.starts_with("note: ")), "{err}");
    let imported = write("imported.json", &out);
    let (code, ok, _) = run(&["check-config", &imported], None);
    assert_eq!((code, ok.contains("OK")), (0, true), "{ok}");
    // explain shows the imported allow rule and what it hands on to.
    let jwks = write("jwks.json", JWKS);
    let (code, out, _) =
        run(&["explain", "--config", &imported, "--jwks", &jwks, "--no-token", "--path", "/headers"], None);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("Rule: rules[0] is the first whose match fits: action allow (unmet: next rule)"), "{out}");
    // Not everything: exit 2, still printed, one line per thing on stderr naming source and field.
    let with_ip = r#"
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ra, namespace: ns}
spec:
  jwtRules: [{issuer: "https://idp.example.com/", jwksUri: "https://idp.example.com/jwks"}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap, namespace: ns}
spec:
  rules:
  - from: [{source: {requestPrincipals: ["*"], ipBlocks: ["10.0.0.0/8"]}}]
  - to: [{operation: {paths: ["/t/{*}"]}}]
"#;
    let (code, out, err) = run(&["import", "--cluster", "idp.example.com=idp", &write("ip.yaml", with_ip)], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("left in place: AuthorizationPolicy ns/ap: spec.rules[0].from[0].source.ipBlocks"), "{err}");
    assert!(err.contains("not carried: AuthorizationPolicy ns/ap: spec.rules[1].to[0].operation.paths"), "{err}");
    let config: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(config["providers"]["ra-0"]["remote_jwks"]["http_uri"]["cluster"], "idp");
    // Nothing usable: exit 1, nothing on stdout.
    let (code, out, err) = run(&["import", &write("empty.yaml", "kind: ConfigMap\n")], None);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("no envoy.filters.http.jwt_authn filter"), "{err}");
    let (code, _, err) = run(&["import", &write("bad.yaml", "a: [\n")], None);
    assert_eq!(code, 1);
    assert!(err.contains("bad.yaml"), "{err}");
    let (code, _, _) = run(&["import"], None);
    assert_eq!(code, 1);
}
