//! Envoy RBAC policies (`envoy.filters.http.rbac`'s `rules`) as alternatives: permissions and
//! principals over the request (paths, headers) and over jwt_authn's payload metadata, which
//! become claim conditions on the verified token.

use serde_json::{json, Value};

use super::cond::{always, and, never, or, Alt, Dnf, PathKind};
use super::fields::{bool_field, field, list, str_field};
use super::notes::Notes;

pub const JWT_AUTHN: &str = "envoy.filters.http.jwt_authn";

/// The keys jwt_authn's providers write their payload under (`payload_in_metadata`).
pub struct Reader<'a> {
    pub payload_keys: &'a [String],
    pub source: String,
    pub notes: &'a mut Notes,
}

impl Reader<'_> {
    /// A policy holds when one permission and one principal hold.
    pub fn policy(&mut self, name: &str, policy: &Value) -> Result<Dnf, String> {
        let mut perms = never();
        for (i, p) in list(policy, "permissions").iter().enumerate() {
            perms =
                or(perms, self.permission(&format!("{}: policies.{name}.permissions[{i}]", self.source), p, false)?);
        }
        let mut ids = never();
        for (i, p) in list(policy, "principals").iter().enumerate() {
            ids = or(ids, self.principal(&format!("{}: policies.{name}.principals[{i}]", self.source), p, false)?);
        }
        let mut dnf = and(&perms, &ids)?;
        for key in ["condition", "checked_condition"] {
            if field(policy, key).is_some() {
                let u = vec![Alt::unsupported(&format!("{}: policies.{name}.{key}", self.source), "a CEL condition")];
                dnf = and(&dnf, &u)?;
            }
        }
        Ok(dnf)
    }

    fn permission(&mut self, f: &str, p: &Value, neg: bool) -> Result<Dnf, String> {
        if let Some(v) = field(p, "any") {
            return Ok(if v.as_bool() == Some(true) && !neg { always() } else { never() });
        }
        if let Some(inner) = field(p, "and_rules") {
            return self.combine(f, list(inner, "rules"), neg, true, Self::permission);
        }
        if let Some(inner) = field(p, "or_rules") {
            return self.combine(f, list(inner, "rules"), neg, false, Self::permission);
        }
        if let Some(inner) = field(p, "not_rule") {
            return self.permission(&format!("{f}.not_rule"), inner, !neg);
        }
        if let Some(h) = field(p, "header") {
            return Ok(header(&format!("{f}.header"), h, neg));
        }
        if let Some(u) = field(p, "url_path") {
            return Ok(url_path(&format!("{f}.url_path"), u, neg));
        }
        for key in ["destination_ip", "destination_port", "destination_port_range", "requested_server_name"] {
            if field(p, key).is_some() {
                return Ok(vec![Alt::non_token(&format!("{f}.{key}"))]);
            }
        }
        Ok(vec![Alt::unsupported(f, "a permission jwt-guard cannot express")])
    }

    fn principal(&mut self, f: &str, p: &Value, neg: bool) -> Result<Dnf, String> {
        if let Some(v) = field(p, "any") {
            return Ok(if v.as_bool() == Some(true) && !neg { always() } else { never() });
        }
        if let Some(inner) = field(p, "and_ids") {
            return self.combine(f, list(inner, "ids"), neg, true, Self::principal);
        }
        if let Some(inner) = field(p, "or_ids") {
            return self.combine(f, list(inner, "ids"), neg, false, Self::principal);
        }
        if let Some(inner) = field(p, "not_id") {
            return self.principal(&format!("{f}.not_id"), inner, !neg);
        }
        if let Some(h) = field(p, "header") {
            return Ok(header(&format!("{f}.header"), h, neg));
        }
        if let Some(u) = field(p, "url_path") {
            return Ok(url_path(&format!("{f}.url_path"), u, neg));
        }
        if let Some(m) = field(p, "metadata") {
            return Ok(self.metadata(&format!("{f}.metadata"), m, neg));
        }
        for key in ["authenticated", "source_ip", "direct_remote_ip", "remote_ip"] {
            if field(p, key).is_some() {
                return Ok(vec![Alt::non_token(&format!("{f}.{key}"))]);
            }
        }
        Ok(vec![Alt::unsupported(f, "a principal jwt-guard cannot express")])
    }

    /// `and` (or, negated, `or` by De Morgan) of the items.
    fn combine(
        &mut self,
        f: &str,
        items: &[Value],
        neg: bool,
        conjunction: bool,
        each: fn(&mut Self, &str, &Value, bool) -> Result<Dnf, String>,
    ) -> Result<Dnf, String> {
        let conj = conjunction != neg;
        let mut acc = if conj { always() } else { never() };
        for (i, item) in items.iter().enumerate() {
            let d = each(self, &format!("{f}[{i}]"), item, neg)?;
            acc = if conj { and(&acc, &d)? } else { or(acc, d) };
        }
        Ok(acc)
    }

    /// jwt_authn's payload metadata: `[payload key, claim, nested claim...]`.
    fn metadata(&mut self, f: &str, m: &Value, neg: bool) -> Dnf {
        let neg = neg != bool_field(m, "invert");
        let keys: Vec<&str> = list(m, "path").iter().filter_map(|k| k.get("key").and_then(Value::as_str)).collect();
        let ours = str_field(m, "filter") == Some(JWT_AUTHN)
            && keys.first().is_some_and(|k| self.payload_keys.iter().any(|p| p == k));
        if !ours || keys.len() < 2 {
            return vec![Alt::unsupported(f, "metadata other than a jwt_authn provider's payload claims")];
        }
        let Some(value) = field(m, "value") else { return vec![Alt::unsupported(f, "no value matcher")] };
        let (patterns, strings_only) = match value_patterns(value) {
            Ok(p) => p,
            Err(why) => return vec![Alt::unsupported(f, why)],
        };
        let claim = keys[1..].join(".");
        if strings_only {
            self.notes.changed(f, "", format!("claim `{claim}`: RBAC's string_match matches a string only; jwt-guard's claim rule also matches a list holding the value"));
        }
        if patterns.iter().any(|p| broader_than_strings(p)) {
            self.notes.changed(
                f,
                "",
                format!("claim `{claim}`: jwt-guard also matches a number or boolean with that text"),
            );
        }
        let key = if neg { "not_values" } else { "values" };
        vec![Alt::claim(json!({"path": keys[1..], key: patterns}))]
    }
}

/// The claim patterns (`exact`, `prefix*`, `*suffix`, `*`) of a ValueMatcher, and whether it
/// matches strings only (no `list_match`).
fn value_patterns(v: &Value) -> Result<(Vec<String>, bool), String> {
    if let Some(s) = field(v, "string_match") {
        return Ok((vec![string_pattern(s)?], true));
    }
    if let Some(l) = field(v, "list_match") {
        let one_of = field(l, "one_of").ok_or("a list_match without one_of")?;
        let s = field(one_of, "string_match").ok_or("a list_match that is not over strings")?;
        return Ok((vec![string_pattern(s)?], false));
    }
    if let Some(o) = field(v, "or_match") {
        let mut all = Vec::new();
        let mut strings_only = true;
        for m in list(o, "value_matchers") {
            let (p, s) = value_patterns(m)?;
            strings_only &= s;
            for x in p {
                if !all.contains(&x) {
                    all.push(x);
                }
            }
        }
        return Ok((all, strings_only));
    }
    Err("a value matcher other than string_match, list_match or or_match".to_string())
}

/// A StringMatcher as a claim pattern; regexes only as Istio writes `*` (`.+`).
fn string_pattern(s: &Value) -> Result<String, String> {
    if bool_field(s, "ignore_case") {
        return Err("ignore_case".to_string());
    }
    let literal = |x: &str| {
        if x.contains('*') {
            Err(format!("{x:?} holds a `*`, which a claim pattern reads as a wildcard"))
        } else {
            Ok(x.to_string())
        }
    };
    if let Some(x) = str_field(s, "exact") {
        return literal(x);
    }
    if let Some(x) = str_field(s, "prefix") {
        return Ok(format!("{}*", literal(x)?));
    }
    if let Some(x) = str_field(s, "suffix") {
        return Ok(format!("*{}", literal(x)?));
    }
    if let Some(r) = field(s, "safe_regex").and_then(|r| str_field(r, "regex")) {
        if r == ".+" {
            return Ok("*".to_string());
        }
        return Err(format!("the regex {r:?}"));
    }
    Err("a string matcher other than exact, prefix, suffix or `.+`".to_string())
}

/// A pattern that a JSON number or boolean's text could match, where the source matched strings.
pub fn broader_than_strings(p: &str) -> bool {
    let core = p.trim_matches('*');
    p == "*"
        || (!core.is_empty() && core.chars().all(|c| c.is_ascii_digit() || "-+.eE".contains(c)))
        || (!core.is_empty() && ["true", "false"].iter().any(|t| t.contains(core)))
}

/// Envoy's HeaderMatcher as jwt-guard's; negated, "absent, or present and not matching".
pub fn header(f: &str, h: &Value, neg: bool) -> Dnf {
    let Some(name) = str_field(h, "name") else { return vec![Alt::unsupported(f, "a header matcher without a name")] };
    let name = name.to_ascii_lowercase();
    let invert = bool_field(h, "invert_match");
    let mut m = json!({"name": name});
    let test = if let Some(s) = field(h, "string_match") {
        if bool_field(s, "ignore_case") {
            return vec![Alt::unsupported(f, "ignore_case")];
        }
        if let Some(r) = field(s, "safe_regex").and_then(|r| str_field(r, "regex")) {
            if r == ".*" {
                Some(("present_match", json!(true)))
            } else {
                return vec![Alt::unsupported(f, format!("the regex {r:?}"))];
            }
        } else {
            ["exact", "prefix", "suffix", "contains"].iter().find_map(|k| str_field(s, k).map(|v| (k, json!(v)))).map(
                |(k, v)| {
                    (
                        match *k {
                            "exact" => "exact_match",
                            "prefix" => "prefix_match",
                            "suffix" => "suffix_match",
                            _ => "contains_match",
                        },
                        v,
                    )
                },
            )
        }
    } else {
        ["exact_match", "prefix_match", "suffix_match", "contains_match", "present_match"]
            .iter()
            .find_map(|k| field(h, k).map(|v| (*k, v.clone())))
    };
    let Some((kind, value)) = test else {
        return vec![Alt::unsupported(f, "a header matcher jwt-guard cannot express")];
    };
    if bool_field(h, "treat_missing_header_as_empty") {
        return vec![Alt::unsupported(f, "treat_missing_header_as_empty")];
    }
    m[kind] = value.clone();
    if !neg {
        if invert {
            m["invert_match"] = json!(true);
        }
        return vec![Alt::header(m)];
    }
    // Negated: absent (when the matcher fails on an absent header), or present and not matching.
    let absent_holds = kind == "present_match" && value.as_bool() == Some(invert);
    let mut flipped = m.clone();
    if !invert {
        flipped["invert_match"] = json!(true);
    }
    let mut out = vec![Alt { headers: vec![json!({"name": name, "present_match": true}), flipped], ..Alt::default() }];
    if !absent_holds {
        out.push(Alt::header(json!({"name": name, "present_match": false})));
    }
    out
}

/// RBAC's `url_path` (the path without its query string).
fn url_path(f: &str, u: &Value, neg: bool) -> Dnf {
    let Some(s) = field(u, "path") else { return vec![Alt::unsupported(f, "a path matcher jwt-guard cannot express")] };
    if bool_field(s, "ignore_case") {
        return vec![Alt::unsupported(f, "ignore_case")];
    }
    let (kind, p) = if let Some(p) = str_field(s, "exact") {
        (PathKind::Exact, p)
    } else if let Some(p) = str_field(s, "prefix") {
        (PathKind::Prefix, p)
    } else if let Some(p) = str_field(s, "suffix") {
        (PathKind::Suffix, p)
    } else if let Some(r) = field(s, "safe_regex").and_then(|r| str_field(r, "regex")) {
        if r == ".+" || r == ".*" {
            return if neg { never() } else { always() };
        }
        return vec![Alt::unsupported(f, format!("the regex {r:?}"))];
    } else {
        return vec![Alt::unsupported(f, "a path matcher jwt-guard cannot express")];
    };
    if (kind == PathKind::Prefix || kind == PathKind::Suffix) && p.is_empty() {
        return if neg { never() } else { always() };
    }
    if kind != PathKind::Suffix && !p.starts_with('/') {
        // Matches no path Envoy hands on (every :path starts with `/`).
        return if neg { always() } else { never() };
    }
    vec![Alt::path(kind, p, neg)]
}
