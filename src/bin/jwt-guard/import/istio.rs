//! Istio `RequestAuthentication` and `AuthorizationPolicy` resources, with Istio's semantics:
//! a request without a token passes RequestAuthentication (an invalid one does not), DENY
//! policies are judged before ALLOW policies, and when ALLOW policies exist and none matches,
//! the request is refused.

use serde_json::{json, Map, Value};

use super::cond::{always, and, never, or, rules_for, Alt, Ctx, Dnf, PathKind};
use super::fields::{field, list, str_field, strings};
use super::notes::Notes;
use super::providers;
use super::rbac::{broader_than_strings, header};

pub fn is_istio(doc: &Value) -> bool {
    matches!(doc.get("kind").and_then(Value::as_str), Some("RequestAuthentication" | "AuthorizationPolicy"))
}

fn name_of(doc: &Value) -> String {
    let meta = doc.get("metadata");
    let name = meta.and_then(|m| str_field(m, "name")).unwrap_or("unnamed");
    match meta.and_then(|m| str_field(m, "namespace")) {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

fn scope_note(doc: &Value, src: &str, notes: &mut Notes) {
    let spec = doc.get("spec").unwrap_or(&Value::Null);
    for key in ["selector", "target_ref", "target_refs"] {
        if field(spec, key).is_some() {
            notes.note(
                src,
                &format!("spec.{key}"),
                "jwt-guard applies to every request of the filter it is configured in: install it where this applied",
            );
        }
    }
}

pub fn import(docs: &[Value], cluster_for: &dyn Fn(&str, u16) -> String, notes: &mut Notes) -> Result<Value, String> {
    let mut providers = Map::new();
    for doc in docs.iter().filter(|d| d.get("kind").and_then(Value::as_str) == Some("RequestAuthentication")) {
        let src = format!("RequestAuthentication {}", name_of(doc));
        scope_note(doc, &src, notes);
        let base = doc.get("metadata").and_then(|m| str_field(m, "name")).unwrap_or("istio");
        for (i, rule) in list(doc.get("spec").unwrap_or(&Value::Null), "jwt_rules").iter().enumerate() {
            let f = format!("spec.jwtRules[{i}]");
            match providers::istio(&src, rule, cluster_for, notes) {
                Ok(p) => {
                    providers.insert(format!("{base}-{i}"), p);
                }
                Err(why) => notes.not_carried(&src, &f, format!("{why}; its tokens are refused")),
            }
        }
    }
    if providers.is_empty() {
        return Err("no RequestAuthentication jwtRules could be carried: jwt-guard needs a provider".into());
    }
    // Istio's RequestAuthentication: a token from any of them, or none.
    let mut any: Vec<Value> = providers.keys().map(|n| json!({"provider_name": n})).collect();
    any.push(json!({"allow_missing": {}}));
    let requires = json!({"requires_any": {"requirements": any}});

    let mut deny_rules = Vec::new();
    let mut allow_rules = Vec::new();
    let mut any_allow = false;
    for doc in docs.iter().filter(|d| d.get("kind").and_then(Value::as_str) == Some("AuthorizationPolicy")) {
        let src = format!("AuthorizationPolicy {}", name_of(doc));
        scope_note(doc, &src, notes);
        let spec = doc.get("spec").unwrap_or(&Value::Null);
        let action = str_field(spec, "action").unwrap_or("ALLOW");
        let ctx = match action {
            "ALLOW" => Ctx::Allow,
            "DENY" => Ctx::Deny,
            other => {
                notes.left_in_place(&src, "spec.action", format!("{other}: stays with Istio"));
                continue;
            }
        };
        let mut reader = Policy { src: &src, notes };
        let dnf = reader.policy(spec)?;
        let out = if ctx == Ctx::Allow {
            any_allow = true;
            &mut allow_rules
        } else {
            &mut deny_rules
        };
        for alt in &dnf {
            out.extend(rules_for(alt, ctx, &json!({"prefix": "/"}), Some(&requires), &src, notes));
        }
    }
    let mut rules = deny_rules;
    rules.extend(allow_rules);
    if !any_allow {
        rules.push(json!({"match": {"prefix": "/"}, "requires": requires}));
    }
    Ok(json!({"providers": providers, "bypass_cors_preflight": true, "rules": rules}))
}

struct Policy<'a> {
    src: &'a str,
    notes: &'a mut Notes,
}

impl Policy<'_> {
    /// A policy holds when one of its rules does; a policy without rules never does.
    fn policy(&mut self, spec: &Value) -> Result<Dnf, String> {
        let mut dnf = never();
        for (i, rule) in list(spec, "rules").iter().enumerate() {
            dnf = or(dnf, self.rule(&format!("spec.rules[{i}]"), rule)?);
        }
        Ok(dnf)
    }

    /// `from` (any source) and `to` (any operation) and every `when`.
    fn rule(&mut self, f: &str, rule: &Value) -> Result<Dnf, String> {
        let mut acc = always();
        if let Some(from) = field(rule, "from").and_then(Value::as_array) {
            let mut d = never();
            for (i, s) in from.iter().enumerate() {
                d = or(d, self.source(&format!("{f}.from[{i}].source"), s.get("source").unwrap_or(&Value::Null))?);
            }
            acc = and(&acc, &d)?;
        }
        if let Some(to) = field(rule, "to").and_then(Value::as_array) {
            let mut d = never();
            for (i, o) in to.iter().enumerate() {
                d = or(
                    d,
                    self.operation(&format!("{f}.to[{i}].operation"), o.get("operation").unwrap_or(&Value::Null))?,
                );
            }
            acc = and(&acc, &d)?;
        }
        for (i, w) in list(rule, "when").iter().enumerate() {
            acc = and(&acc, &self.condition(&format!("{f}.when[{i}]"), w)?)?;
        }
        Ok(acc)
    }

    fn source(&mut self, f: &str, s: &Value) -> Result<Dnf, String> {
        let mut acc = always();
        let principals = strings(s, "request_principals");
        if !principals.is_empty() {
            acc = and(&acc, &vec![Alt { principals: vec![principals], ..Alt::default() }])?;
        }
        let not = strings(s, "not_request_principals");
        if !not.is_empty() {
            acc = and(&acc, &vec![Alt { not_principals: not, ..Alt::default() }])?;
        }
        for key in [
            "principals",
            "not_principals",
            "namespaces",
            "not_namespaces",
            "ip_blocks",
            "not_ip_blocks",
            "remote_ip_blocks",
            "not_remote_ip_blocks",
            "service_accounts",
            "not_service_accounts",
        ] {
            if !list(s, key).is_empty() {
                acc = and(&acc, &vec![Alt::non_token(&format!("{f}.{}", super::fields::camel(key)))])?;
            }
        }
        Ok(acc)
    }

    fn operation(&mut self, f: &str, o: &Value) -> Result<Dnf, String> {
        let mut acc = always();
        let hosts = strings(o, "hosts");
        if !hosts.is_empty() {
            acc = and(&acc, &vec![Alt { hosts: Some(hosts), ..Alt::default() }])?;
        }
        let not_hosts = strings(o, "not_hosts");
        if !not_hosts.is_empty() {
            acc = and(&acc, &vec![Alt { not_hosts, ..Alt::default() }])?;
        }
        let methods = strings(o, "methods");
        if !methods.is_empty() {
            let alt = if methods.iter().any(|m| m.contains('*')) {
                Alt::unsupported(&format!("{f}.methods"), "method patterns")
            } else {
                Alt { methods: Some(methods), ..Alt::default() }
            };
            acc = and(&acc, &vec![alt])?;
        }
        for m in strings(o, "not_methods") {
            let alt = if m.contains('*') {
                Alt::unsupported(&format!("{f}.notMethods"), "method patterns")
            } else {
                Alt::header(json!({"name": ":method", "exact_match": m, "invert_match": true}))
            };
            acc = and(&acc, &vec![alt])?;
        }
        let paths = strings(o, "paths");
        if !paths.is_empty() {
            let mut d = never();
            for p in &paths {
                d = or(d, path(&format!("{f}.paths"), p, false));
            }
            acc = and(&acc, &d)?;
        }
        for p in strings(o, "not_paths") {
            acc = and(&acc, &path(&format!("{f}.notPaths"), &p, true))?;
        }
        for key in ["ports", "not_ports"] {
            if !list(o, key).is_empty() {
                acc = and(&acc, &vec![Alt::non_token(&format!("{f}.{}", super::fields::camel(key)))])?;
            }
        }
        Ok(acc)
    }

    fn condition(&mut self, f: &str, w: &Value) -> Result<Dnf, String> {
        let key = str_field(w, "key").unwrap_or_default();
        let values = strings(w, "values");
        let not_values = strings(w, "not_values");
        if let Some(claim) = key.strip_prefix("request.auth.claims") {
            let Some(path) = claim_path(claim) else {
                return Ok(vec![Alt::unsupported(f, format!("the key {key:?}"))]);
            };
            return Ok(self.claim(f, path, values, not_values));
        }
        match key {
            "request.auth.principal" => {
                let mut alt = Alt { not_principals: not_values, ..Alt::default() };
                if !values.is_empty() {
                    alt.principals.push(values);
                }
                Ok(vec![alt])
            }
            "request.auth.audiences" => Ok(self.claim(f, vec!["aud".into()], values, not_values)),
            "request.auth.presenter" => Ok(self.claim(f, vec!["azp".into()], values, not_values)),
            _ => {
                if let Some(h) = key.strip_prefix("request.headers[").and_then(|k| k.strip_suffix(']')) {
                    let mut d = if values.is_empty() { always() } else { never() };
                    for v in &values {
                        d = or(d, header(f, &header_value(h, v), false));
                    }
                    for v in &not_values {
                        d = and(&d, &header(f, &header_value(h, v), true))?;
                    }
                    return Ok(d);
                }
                let non_token = [
                    "source.ip",
                    "remote.ip",
                    "source.namespace",
                    "source.principal",
                    "destination.ip",
                    "destination.port",
                    "connection.sni",
                ];
                if non_token.contains(&key) {
                    return Ok(vec![Alt::non_token(&format!("{f} ({key})"))]);
                }
                Ok(vec![Alt::unsupported(f, format!("the key {key:?}"))])
            }
        }
    }

    fn claim(&mut self, f: &str, path: Vec<String>, values: Vec<String>, not_values: Vec<String>) -> Dnf {
        let name = path.join(".");
        if values.iter().chain(&not_values).any(|v| broader_than_strings(v)) {
            self.notes.changed(self.src, f, format!("claim `{name}`: jwt-guard also matches a number or boolean with that text; Istio matches strings only"));
        }
        let mut rule = json!({"path": path});
        if !values.is_empty() {
            rule["values"] = json!(values);
        }
        if !not_values.is_empty() {
            rule["not_values"] = json!(not_values);
        }
        vec![Alt::claim(rule)]
    }
}

/// `[groups]` or `[realm_access][roles]`.
fn claim_path(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let (name, after) = inner.split_once(']')?;
        if name.is_empty() {
            return None;
        }
        out.push(name.to_string());
        rest = after;
    }
    (!out.is_empty()).then_some(out)
}

/// Istio's value forms for a header as an Envoy HeaderMatcher (as its generator writes them).
fn header_value(name: &str, v: &str) -> Value {
    if v == "*" {
        json!({"name": name, "present_match": true})
    } else if let Some(s) = v.strip_prefix('*') {
        json!({"name": name, "suffix_match": s})
    } else if let Some(p) = v.strip_suffix('*') {
        json!({"name": name, "prefix_match": p})
    } else {
        json!({"name": name, "exact_match": v})
    }
}

/// Istio's path forms: exact, `prefix*`, `*suffix`, `*`; templates (`{*}`, `{**}`) are not carried.
fn path(f: &str, p: &str, neg: bool) -> Dnf {
    if p == "*" {
        return if neg { never() } else { always() };
    }
    if p.contains('{') {
        return vec![Alt::unsupported(f, format!("the path template {p:?}"))];
    }
    if let Some(s) = p.strip_prefix('*') {
        return vec![Alt::path(PathKind::Suffix, s, neg)];
    }
    if let Some(pre) = p.strip_suffix('*') {
        return vec![Alt::path(PathKind::Prefix, pre, neg)];
    }
    vec![Alt::path(PathKind::Exact, p, neg)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_keys() {
        assert_eq!(claim_path("[groups]"), Some(vec!["groups".to_string()]));
        assert_eq!(claim_path("[a][b.c]"), Some(vec!["a".to_string(), "b.c".to_string()]));
        assert_eq!(claim_path("[a"), None);
        assert_eq!(claim_path("[]"), None);
        assert_eq!(claim_path(""), None);
    }
}
