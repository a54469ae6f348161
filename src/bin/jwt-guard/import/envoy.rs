//! An Envoy configuration (bootstrap, listener, HTTP filter list, the jwt_authn filter or its
//! bare config) holding `envoy.filters.http.jwt_authn`, and the RBAC filters after it.
//!
//! jwt_authn's rules are first-match: each becomes a group of jwt-guard rules under its match
//! and `requires`: the RBAC DENY alternatives as `deny` rules, the ALLOW alternatives as `allow`
//! rules and a closing `deny` over the group's match (so a request never falls through into a
//! later jwt_authn rule's group). A request no jwt_authn rule matches is checked for no token,
//! as jwt_authn lets it through unverified, and then by RBAC alone.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::cond::{and, rules_for, Alt, Ctx, Dnf};
use super::fields::{field, list, str_field};
use super::notes::Notes;
use super::providers;
use super::rbac::{self, Reader};

const JWT_TYPE: &str = "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication";
const RBAC_TYPE: &str = "envoy.extensions.filters.http.rbac.v3.RBAC";

fn typed(filter: &Value) -> Option<&Value> {
    field(filter, "typed_config")
}

fn is_type(filter: &Value, t: &str) -> bool {
    typed(filter).and_then(|c| c.get("@type")).and_then(Value::as_str).is_some_and(|x| x.ends_with(t))
}

/// jwt_authn configs found in `doc`, each with the RBAC `rules` of the filters after it.
pub fn find(doc: &Value) -> Vec<(Value, Vec<Value>)> {
    if doc.get("providers").is_some() {
        return vec![(doc.clone(), Vec::new())];
    }
    if is_type(doc, JWT_TYPE) {
        return typed(doc).map(|c| vec![(c.clone(), Vec::new())]).unwrap_or_default();
    }
    let mut found = Vec::new();
    walk(doc, &mut found);
    found
}

fn walk(v: &Value, found: &mut Vec<(Value, Vec<Value>)>) {
    match v {
        Value::Array(items) => {
            if let Some(j) = items.iter().position(|f| is_type(f, JWT_TYPE)) {
                let rbac: Vec<Value> = items[j + 1..]
                    .iter()
                    .filter(|f| is_type(f, RBAC_TYPE))
                    .map(|f| typed(f).cloned().unwrap_or(Value::Null))
                    .collect();
                if let Some(c) = typed(&items[j]) {
                    found.push((c.clone(), rbac));
                }
                return;
            }
            items.iter().for_each(|x| walk(x, found));
        }
        Value::Object(o) => o.values().for_each(|x| walk(x, found)),
        _ => {}
    }
}

pub fn import(jwt: &Value, rbacs: &[Value], notes: &mut Notes) -> Result<Value, String> {
    let mut providers = Map::new();
    let mut dropped: BTreeMap<String, String> = BTreeMap::new();
    let mut payload_keys = Vec::new();
    for (name, p) in field(jwt, "providers").and_then(Value::as_object).into_iter().flatten() {
        if let Some(k) = str_field(p, "payload_in_metadata") {
            payload_keys.push(k.to_string());
        }
        match providers::jwt_authn(name, p, notes) {
            Ok(v) => {
                providers.insert(name.clone(), v);
            }
            Err(why) => {
                notes.not_carried(
                    &format!("jwt_authn provider {name}"),
                    "",
                    format!("{why}; rules that need it refuse"),
                );
                dropped.insert(name.clone(), why);
            }
        }
    }
    if providers.is_empty() {
        return Err("no jwt_authn provider could be carried".into());
    }
    let map: Map<String, Value> = field(jwt, "requirement_map").and_then(Value::as_object).cloned().unwrap_or_default();
    // Requirements chosen per route or by filter state are not read: a request no rule matches
    // may need a token in the source, so it is refused here.
    let unread = !map.is_empty() || field(jwt, "filter_state_rules").is_some();
    if !map.is_empty() {
        notes.not_carried(
            "jwt_authn",
            "requirement_map",
            "per-route requirements (a route's requirement_name) are not read; a request no rule matches is refused",
        );
    }
    if field(jwt, "filter_state_rules").is_some() {
        notes.not_carried(
            "jwt_authn",
            "filter_state_rules",
            "requirements chosen by filter state are not read; a request no rule matches is refused",
        );
    }

    // The RBAC filters: each must let the request through.
    let mut allow: Option<Dnf> = None;
    let mut deny: Dnf = Vec::new();
    for (i, r) in rbacs.iter().enumerate() {
        let source = format!("RBAC filter {i}");
        let Some(rules) = field(r, "rules") else {
            if field(r, "matcher").is_some() {
                return Err(format!("{source}: the matcher form of RBAC is not read; nothing is carried"));
            }
            // Configured per route (RBACPerRoute), which is not read: refuse all it could cover.
            notes.not_carried(
                &source,
                "rules",
                "none here: its per-route policies (RBACPerRoute) are not read; every request is refused",
            );
            allow = Some(Vec::new());
            continue;
        };
        let action = str_field(rules, "action").unwrap_or("ALLOW");
        let mut reader = Reader { payload_keys: &payload_keys, source: source.clone(), notes };
        let mut dnf = Vec::new();
        for (name, policy) in field(rules, "policies").and_then(Value::as_object).into_iter().flatten() {
            dnf.extend(reader.policy(name, policy)?);
        }
        match action {
            "ALLOW" => {
                allow = Some(match allow {
                    None => dnf,
                    Some(a) => and(&a, &dnf)?,
                })
            }
            "DENY" => deny.extend(dnf),
            other => notes.left_in_place(&source, "action", format!("{other}: not an access decision")),
        }
    }

    let mut out: Vec<Value> = Vec::new();
    let mut catch_all = false;
    let rules = list(jwt, "rules");
    if rules.is_empty() {
        notes.note(
            "jwt_authn",
            "rules",
            "none: jwt_authn checks no token, and neither does the import (add rules that require one)",
        );
    }
    for (i, rule) in rules.iter().enumerate() {
        let src = format!("jwt_authn rules[{i}]");
        let (m, exact) = route_match(&src, field(rule, "match").unwrap_or(&Value::Null), notes);
        let requires = match (field(rule, "requires"), str_field(rule, "requirement_name")) {
            (Some(r), _) => requirement(&format!("{src}.requires"), r, &providers, &dropped).map(Some),
            (None, Some(n)) => match map.get(n) {
                Some(r) => requirement(&format!("{src}.requirement_name"), r, &providers, &dropped).map(Some),
                None => Err(format!("unknown requirement_name {n:?}")),
            },
            (None, None) => Ok(None),
        };
        let requires = match (requires, exact) {
            (Ok(r), true) => r,
            (Err(why), _) => {
                notes.not_carried(&src, "requires", format!("{why}; the rule refuses"));
                out.push(json!({"match": m, "action": "deny"}));
                continue;
            }
            (Ok(_), false) => {
                out.push(json!({"match": m, "action": "deny"}));
                continue;
            }
        };
        catch_all |= m == json!({"prefix": "/"});
        group(&mut out, &m, requires.as_ref(), allow.as_ref(), &deny, &src, notes);
    }
    if unread {
        out.push(json!({"match": {"prefix": "/"}, "action": "deny"}));
    } else if !catch_all {
        group(
            &mut out,
            &json!({"prefix": "/"}),
            None,
            allow.as_ref(),
            &deny,
            "requests no jwt_authn rule matches",
            notes,
        );
    }
    let bypass = field(jwt, "bypass_cors_preflight").and_then(Value::as_bool).unwrap_or(false);
    Ok(json!({"providers": providers, "bypass_cors_preflight": bypass, "rules": out}))
}

/// One jwt_authn rule's group: DENY alternatives, then ALLOW alternatives and a closing deny
/// (or, without ALLOW policies, the rule itself).
fn group(
    out: &mut Vec<Value>,
    m: &Value,
    requires: Option<&Value>,
    allow: Option<&Dnf>,
    deny: &Dnf,
    src: &str,
    notes: &mut Notes,
) {
    for alt in deny {
        out.extend(rules_for(alt, Ctx::Deny, m, requires, src, notes));
    }
    let closing = |action: Option<&str>| {
        let mut r = json!({"match": m});
        if let Some(a) = action {
            r["action"] = json!(a);
        }
        if let Some(q) = requires {
            r["requires"] = q.clone();
        }
        r
    };
    match allow {
        None => out.push(closing(None)),
        Some(alts) => {
            for alt in alts {
                out.extend(rules_for(alt, Ctx::Allow, m, requires, src, notes));
            }
            out.push(closing(Some("deny")));
        }
    }
}

/// jwt_authn's RouteMatch as a jwt-guard match; `false` when part of it could not be carried
/// (the rule then refuses everything the carried part matches).
fn route_match(src: &str, m: &Value, notes: &mut Notes) -> (Value, bool) {
    let mut out = Map::new();
    let mut exact = true;
    let mut path_set = false;
    for (from, to) in [("prefix", "prefix"), ("path", "path"), ("path_separated_prefix", "path_separated_prefix")] {
        if let Some(p) = str_field(m, from) {
            let p = if from == "prefix" && p.is_empty() { "/" } else { p };
            out.insert(to.into(), json!(p));
            path_set = true;
        }
    }
    for key in ["safe_regex", "connect_matcher", "path_match_policy"] {
        if field(m, key).is_some() {
            notes.not_carried(
                src,
                &format!("match.{key}"),
                "jwt-guard has no regex or template paths; the rule refuses every path",
            );
            exact = false;
        }
    }
    if !path_set {
        out.insert("prefix".into(), json!("/"));
    }
    if field(m, "case_sensitive").and_then(Value::as_bool) == Some(false) {
        notes.not_carried(src, "match.case_sensitive", "paths are matched case-sensitively; the rule refuses");
        exact = false;
    }
    for key in ["query_parameters", "runtime_fraction", "dynamic_metadata", "filter_state", "tls_context"] {
        if field(m, key).is_some() {
            notes.not_carried(src, &format!("match.{key}"), "not a jwt-guard condition; the rule refuses");
            exact = false;
        }
    }
    let mut headers: Vec<Value> = Vec::new();
    if field(m, "grpc").is_some() {
        headers.push(json!({"name": "content-type", "prefix_match": "application/grpc"}));
    }
    for (i, h) in list(m, "headers").iter().enumerate() {
        match rbac::header(&format!("match.headers[{i}]"), h, false).as_slice() {
            [Alt { headers: hs, unsupported, .. }] if unsupported.is_empty() => headers.extend(hs.iter().cloned()),
            _ => {
                notes.not_carried(
                    src,
                    &format!("match.headers[{i}]"),
                    "a header matcher jwt-guard cannot express; the rule refuses",
                );
                exact = false;
            }
        }
    }
    if !headers.is_empty() && exact {
        out.insert("headers".into(), json!(headers));
    }
    (Value::Object(out), exact)
}

/// jwt_authn's JwtRequirement as jwt-guard's (the same forms, audiences in every spelling).
fn requirement(
    f: &str,
    r: &Value,
    providers: &Map<String, Value>,
    dropped: &BTreeMap<String, String>,
) -> Result<Value, String> {
    let known = |name: &str| {
        if providers.contains_key(name) {
            Ok(())
        } else if let Some(why) = dropped.get(name) {
            Err(format!("provider {name} was not carried ({why})"))
        } else {
            Err(format!("unknown provider {name:?}"))
        }
    };
    if let Some(name) = str_field(r, "provider_name") {
        known(name)?;
        return Ok(json!({"provider_name": name}));
    }
    if let Some(pa) = field(r, "provider_and_audiences") {
        let name = str_field(pa, "provider_name")
            .ok_or_else(|| format!("{f}: provider_and_audiences without provider_name"))?;
        known(name)?;
        let auds = providers::audience_variants(&super::fields::strings(pa, "audiences"));
        return Ok(json!({"provider_and_audiences": {"provider_name": name, "audiences": auds}}));
    }
    for (key, out) in [("requires_any", "requires_any"), ("requires_all", "requires_all")] {
        if let Some(inner) = field(r, key) {
            let reqs: Vec<Value> = list(inner, "requirements")
                .iter()
                .enumerate()
                .map(|(i, x)| requirement(&format!("{f}.{key}[{i}]"), x, providers, dropped))
                .collect::<Result<_, _>>()?;
            return match reqs.len() {
                0 => Err(format!("{f}.{key}: no requirements")),
                1 => Ok(reqs.into_iter().next().unwrap_or_default()),
                _ => Ok(json!({out: {"requirements": reqs}})),
            };
        }
    }
    for key in ["allow_missing", "allow_missing_or_failed"] {
        if field(r, key).is_some() {
            return Ok(json!({key: {}}));
        }
    }
    if field(r, "extract_only_without_validation").is_some() {
        return Err("extract_only_without_validation: jwt-guard never reads a token it has not verified".into());
    }
    Err(format!("{f}: a requirement jwt-guard does not know"))
}
