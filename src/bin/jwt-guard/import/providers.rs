//! Providers: jwt_authn's `JwtProvider` and Istio's `jwtRules`, as jwt-guard providers.

use serde_json::{json, Map, Value};

use super::fields::{bool_field, duration, field, list, str_field, strings};
use super::notes::Notes;

/// jwt_authn compares audiences without `http://`, `https://` and a trailing `/` (on both
/// sides): every spelling it would take.
pub fn audience_variants(audiences: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in audiences {
        let base = a.strip_prefix("https://").or_else(|| a.strip_prefix("http://")).unwrap_or(a);
        let base = base.strip_suffix('/').unwrap_or(base);
        if base.is_empty() {
            continue;
        }
        for v in [
            base.to_string(),
            format!("{base}/"),
            format!("http://{base}"),
            format!("http://{base}/"),
            format!("https://{base}"),
            format!("https://{base}/"),
        ] {
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

/// The token locations both jwt_authn and Istio use when none is given: `Authorization:
/// Bearer` and the `access_token` query parameter.
fn default_locations(p: &mut Map<String, Value>, source: &str, notes: &mut Notes) {
    if !p.contains_key("from_headers") && !p.contains_key("from_params") && !p.contains_key("from_cookies") {
        p.insert("from_headers".into(), json!([{"name": "authorization", "value_prefix": "Bearer "}]));
        p.insert("from_params".into(), json!(["access_token"]));
        notes.note(source, "from_params", "kept the default `access_token` query parameter (tokens in URLs leak into logs: remove it if no client sends one)");
    }
}

/// A jwt_authn provider; `Err` when it cannot be carried (rules that need it then refuse).
pub fn jwt_authn(name: &str, v: &Value, notes: &mut Notes) -> Result<Value, String> {
    let src = format!("jwt_authn provider {name}");
    let mut p = Map::new();
    let issuer =
        str_field(v, "issuer").ok_or("no issuer: jwt_authn then accepts any `iss`, which jwt-guard never does")?;
    p.insert("issuer".into(), json!(issuer));
    let audiences = strings(v, "audiences");
    if audiences.is_empty() {
        p.insert("allow_any_audience".into(), json!(true));
        notes.note(&src, "audiences", "none: allow_any_audience (jwt_authn checks no audience either)");
    } else {
        p.insert("audiences".into(), json!(audience_variants(&audiences)));
    }
    if let Some(r) = field(v, "remote_jwks") {
        let u = field(r, "http_uri").ok_or("remote_jwks without http_uri")?;
        let mut http_uri = json!({"uri": str_field(u, "uri").ok_or("remote_jwks.http_uri without uri")?,
                                  "cluster": str_field(u, "cluster").ok_or("remote_jwks.http_uri without cluster")?});
        if let Some(t) = field(u, "timeout").and_then(duration) {
            http_uri["timeout"] = json!(t);
        }
        let mut jwks = json!({"http_uri": http_uri});
        if let Some(d) = field(r, "cache_duration").and_then(duration) {
            jwks["cache_duration"] = json!(d);
        }
        p.insert("remote_jwks".into(), jwks);
    } else if let Some(l) = field(v, "local_jwks") {
        let inline =
            str_field(l, "inline_string").ok_or("local_jwks other than inline_string (a file on the Envoy host)")?;
        if serde_json::from_str::<Value>(inline).is_err() {
            return Err("local_jwks.inline_string is not JSON: Envoy refuses every token of this provider".into());
        }
        p.insert("local_jwks".into(), json!({"inline_string": inline}));
    } else {
        return Err("neither remote_jwks nor local_jwks".into());
    }
    for key in
        ["forward", "forward_payload_header", "clock_skew_seconds", "max_lifetime", "from_params", "from_cookies"]
    {
        if let Some(x) = field(v, key) {
            let x = if key == "max_lifetime" { duration(x).map_or(Value::Null, |d| json!(d)) } else { x.clone() };
            p.insert(key.into(), x);
        }
    }
    if let Some(h) = field(v, "from_headers") {
        let list: Vec<Value> = h
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| {
                let mut e = json!({"name": str_field(x, "name").unwrap_or_default()});
                if let Some(pre) = str_field(x, "value_prefix") {
                    e["value_prefix"] = json!(pre);
                }
                e
            })
            .collect();
        p.insert("from_headers".into(), json!(list));
    }
    let c2h: Vec<Value> = list(v, "claim_to_headers")
        .iter()
        .map(|c| json!({"header_name": str_field(c, "header_name"), "claim_name": str_field(c, "claim_name")}))
        .collect();
    if !c2h.is_empty() {
        p.insert("claim_to_headers".into(), json!(c2h));
    }
    if let Some(n) = field(v, "normalize_payload_in_metadata") {
        p.insert(
            "normalize_payload_in_metadata".into(),
            json!({"space_delimited_claims": strings(n, "space_delimited_claims")}),
        );
    }
    if let Some(size) = field(v, "jwt_cache_config").and_then(|c| field(c, "jwt_cache_size")) {
        p.insert("jwt_cache_config".into(), json!({"jwt_cache_size": size}));
    }
    if !bool_field(v, "require_expiration") {
        p.insert("require_expiration".into(), json!(false));
    }
    default_locations(&mut p, &src, notes);
    let known = [
        "issuer",
        "audiences",
        "remote_jwks",
        "local_jwks",
        "forward",
        "forward_payload_header",
        "clock_skew_seconds",
        "max_lifetime",
        "from_params",
        "from_cookies",
        "from_headers",
        "claim_to_headers",
        "normalize_payload_in_metadata",
        "jwt_cache_config",
        "require_expiration",
        "payload_in_metadata",
    ];
    if let Some(o) = v.as_object() {
        for k in o.keys().filter(|k| !known.iter().any(|x| *x == k.as_str() || super::fields::camel(x) == **k)) {
            notes.not_carried(&src, k, "not a jwt-guard provider field; ignored");
        }
    }
    Ok(Value::Object(p))
}

/// An Istio `jwtRules` entry. `cluster_for(host, port)` names the cluster its JWKS is fetched through.
pub fn istio(
    src: &str,
    rule: &Value,
    cluster_for: &dyn Fn(&str, u16) -> String,
    notes: &mut Notes,
) -> Result<Value, String> {
    let mut p = Map::new();
    let issuer = str_field(rule, "issuer").ok_or("no issuer")?;
    p.insert("issuer".into(), json!(issuer));
    let audiences = strings(rule, "audiences");
    if audiences.is_empty() {
        p.insert("allow_any_audience".into(), json!(true));
        notes.note(src, "audiences", "none: allow_any_audience (Istio checks no audience either)");
    } else {
        p.insert("audiences".into(), json!(audience_variants(&audiences)));
    }
    if let Some(uri) = str_field(rule, "jwks_uri") {
        let (host, port) = host_port(uri).ok_or_else(|| format!("jwksUri {uri:?} is not an http(s) URL"))?;
        let timeout = field(rule, "timeout").and_then(duration).unwrap_or_else(|| "5s".to_string());
        p.insert(
            "remote_jwks".into(),
            json!({"http_uri": {"uri": uri, "cluster": cluster_for(&host, port), "timeout": timeout}}),
        );
    } else if let Some(jwks) = str_field(rule, "jwks") {
        if serde_json::from_str::<Value>(jwks).is_err() {
            return Err("jwks is not JSON".into());
        }
        p.insert("local_jwks".into(), json!({"inline_string": jwks}));
    } else {
        return Err("neither jwksUri nor jwks (Istio would fetch the issuer's discovery document; give jwksUri)".into());
    }
    let headers: Vec<Value> = list(rule, "from_headers")
        .iter()
        .map(|h| {
            let mut e = json!({"name": str_field(h, "name").unwrap_or_default().to_ascii_lowercase()});
            if let Some(pre) = str_field(h, "prefix") {
                e["value_prefix"] = json!(pre);
            }
            e
        })
        .collect();
    if !headers.is_empty() {
        p.insert("from_headers".into(), json!(headers));
    }
    for (from, to) in [("from_params", "from_params"), ("from_cookies", "from_cookies")] {
        let v = strings(rule, from);
        if !v.is_empty() {
            p.insert(to.into(), json!(v));
        }
    }
    let delimited = strings(rule, "space_delimited_claims");
    if !delimited.is_empty() {
        p.insert("normalize_payload_in_metadata".into(), json!({"space_delimited_claims": delimited}));
    }
    if bool_field(rule, "forward_original_token") {
        p.insert("forward".into(), json!(true));
    }
    if let Some(h) = str_field(rule, "output_payload_to_header") {
        p.insert("forward_payload_header".into(), json!(h.to_ascii_lowercase()));
    }
    let c2h: Vec<Value> = list(rule, "output_claim_to_headers")
        .iter()
        .map(|c| json!({"header_name": str_field(c, "header").map(str::to_ascii_lowercase), "claim_name": str_field(c, "claim")}))
        .collect();
    if !c2h.is_empty() {
        p.insert("claim_to_headers".into(), json!(c2h));
    }
    p.insert("require_expiration".into(), json!(false));
    default_locations(&mut p, src, notes);
    Ok(Value::Object(p))
}

fn host_port(uri: &str) -> Option<(String, u16)> {
    let (scheme, rest) = uri.split_once("://")?;
    let default = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => Some((h.to_string(), p.parse().ok()?)),
        _ if !authority.is_empty() => Some((authority.to_string(), default)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_authn_audience_spellings() {
        let v = audience_variants(&["https://api.example.com/".to_string(), "orders".to_string()]);
        assert_eq!(
            &v[..6],
            [
                "api.example.com",
                "api.example.com/",
                "http://api.example.com",
                "http://api.example.com/",
                "https://api.example.com",
                "https://api.example.com/"
            ]
        );
        assert!(v.contains(&"https://orders/".to_string()));
    }

    #[test]
    fn jwks_uri_hosts() {
        assert_eq!(host_port("https://idp.example.com/jwks"), Some(("idp.example.com".into(), 443)));
        assert_eq!(host_port("http://idp:8080/x"), Some(("idp".into(), 8080)));
        assert_eq!(host_port("ftp://x/"), None);
    }
}
