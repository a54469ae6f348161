//! A configuration's `rules`: each rule's match, what it requires (jwt_authn's requirement
//! forms, with `provider_and_audiences` resolved to verifiers), and what it asks of the token.

use serde_json::Value;

use super::claim_rule::compile_claim_rules;
use super::compile::{check_audience, is_quoted_string_safe};
use super::config::*;
use super::route_match::{compile_match, principal_patterns};
use super::wire::RawRule;

/// The providers by name, and the audience variants the rules name so far.
pub(super) struct Variants<'n> {
    pub(super) names: &'n [String],
    pub(super) list: Vec<AudienceVariant>,
}

impl Variants<'_> {
    fn provider(&self, f: &str, v: &Value) -> Result<usize, ConfigError> {
        let name = v.as_str().ok_or_else(|| err(f, "must be a string"))?;
        self.names.iter().position(|p| p == name).ok_or_else(|| err(f, format!("unknown provider {name:?}")))
    }

    /// The verifier index of `provider` with `audiences`, shared by rules that name the same.
    fn variant(&mut self, provider: usize, audiences: Vec<String>) -> usize {
        let v = AudienceVariant { provider, audiences };
        let k = self.list.iter().position(|x| *x == v).unwrap_or_else(|| {
            self.list.push(v);
            self.list.len() - 1
        });
        self.names.len() + k
    }
}

pub(super) fn compile_rule(field: &str, rr: RawRule, providers: &mut Variants<'_>) -> Result<Rule, ConfigError> {
    let matcher = compile_match(field, rr.matcher)?;
    let action = match rr.action.as_deref() {
        None | Some("require") => RuleAction::Require,
        Some("allow") => RuleAction::Allow,
        Some("deny") => RuleAction::Deny,
        Some(other) => {
            return Err(err(format!("{field}.action"), format!("unknown action {other:?}: require, allow or deny")))
        }
    };
    let requires = match rr.requires {
        None => None,
        Some(v) => Some(compile_requirement(&format!("{field}.requires"), &v, providers)?),
    };
    for (name, used) in [
        ("scopes", !rr.scopes.is_empty()),
        ("claims", !rr.claims.is_empty()),
        ("principals", !rr.principals.is_empty()),
        ("not_principals", !rr.not_principals.is_empty()),
    ] {
        if requires.is_none() && used {
            return Err(err(format!("{field}.{name}"), format!("{name} need a `requires` on the same rule")));
        }
    }
    if rr.scopes.iter().any(|s| s.is_empty() || s.contains(' ') || !is_quoted_string_safe(s)) {
        return Err(err(format!("{field}.scopes"), "scopes must be non-empty printable ASCII without spaces"));
    }
    let claims = compile_claim_rules(&format!("{field}.claims"), rr.claims)?;
    let principals = principal_patterns(&format!("{field}.principals"), &rr.principals)?;
    let not_principals = principal_patterns(&format!("{field}.not_principals"), &rr.not_principals)?;
    Ok(Rule { matcher, action, requires, scopes: rr.scopes, claims, principals, not_principals })
}

fn compile_requirement(field: &str, v: &Value, providers: &mut Variants<'_>) -> Result<Requirement, ConfigError> {
    let obj = v.as_object().ok_or_else(|| err(field, "must be an object"))?;
    if obj.len() != 1 {
        return Err(err(
            field,
            "must have exactly one of provider_name, provider_and_audiences, requires_any, requires_all, \
             allow_missing, allow_missing_or_failed",
        ));
    }
    let Some((key, inner)) = obj.iter().next() else {
        return Err(err(field, "must not be empty"));
    };
    let f = format!("{field}.{key}");
    match key.as_str() {
        "provider_name" => providers.provider(&f, inner).map(Requirement::Provider),
        "provider_and_audiences" => {
            let o = inner.as_object().ok_or_else(|| err(&f, "must be an object"))?;
            if let Some(extra) = o.keys().find(|k| *k != "provider_name" && *k != "audiences") {
                return Err(err(&f, format!("unknown field `{extra}`, expected `provider_name` or `audiences`")));
            }
            let provider =
                providers.provider(&format!("{f}.provider_name"), o.get("provider_name").unwrap_or(&Value::Null))?;
            let af = format!("{f}.audiences");
            let list = o.get("audiences").and_then(Value::as_array).ok_or_else(|| err(&af, "must be a list"))?;
            if list.is_empty() {
                return Err(err(&af, "must list at least one audience"));
            }
            let mut audiences = Vec::with_capacity(list.len());
            for (i, a) in list.iter().enumerate() {
                let f = format!("{af}[{i}]");
                let a = a.as_str().ok_or_else(|| err(&f, "must be a string"))?;
                check_audience(&f, a, "list each audience")?;
                audiences.push(a.to_string());
            }
            Ok(Requirement::Provider(providers.variant(provider, audiences)))
        }
        "requires_any" | "requires_all" => {
            let inner_obj = inner.as_object().ok_or_else(|| err(&f, "must be an object"))?;
            if let Some(extra) = inner_obj.keys().find(|k| *k != "requirements") {
                return Err(err(&f, format!("unknown field `{extra}`, expected `requirements`")));
            }
            let list = inner_obj
                .get("requirements")
                .and_then(Value::as_array)
                .ok_or_else(|| err(format!("{f}.requirements"), "must be a list"))?;
            if list.len() < 2 {
                return Err(err(format!("{f}.requirements"), "must list at least two requirements"));
            }
            let mut reqs = Vec::with_capacity(list.len());
            for (i, r) in list.iter().enumerate() {
                reqs.push(compile_requirement(&format!("{f}.requirements[{i}]"), r, providers)?);
            }
            Ok(if key == "requires_any" { Requirement::Any(reqs) } else { Requirement::All(reqs) })
        }
        "allow_missing" | "allow_missing_or_failed" => {
            if !inner.as_object().is_some_and(|o| o.is_empty()) {
                return Err(err(&f, "must be an empty object {}"));
            }
            Ok(if key == "allow_missing" { Requirement::AllowMissing } else { Requirement::AllowMissingOrFailed })
        }
        other => Err(err(field, format!("unknown requirement `{other}`"))),
    }
}
