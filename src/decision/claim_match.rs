//! Claim rules against a verified token's claims, as Istio's `request.auth.claims[...]` matches
//! them: a list matches when an element does; a string is one value, or its words for claims
//! split on spaces; booleans and numbers as their JSON text; objects and nulls never.

use serde_json::{Map, Value};

use crate::policy::claim_rule::SPACE_DELIMITED_BY_DEFAULT;
use crate::policy::{ClaimRule, Pattern};

/// The first entry of `rules` these claims do not satisfy, if any.
pub fn first_unmet<'r>(
    rules: &'r [ClaimRule],
    claims: &Map<String, Value>,
    space_delimited: &[String],
) -> Option<&'r ClaimRule> {
    rules.iter().find(|r| !holds(r, claims, space_delimited))
}

pub fn holds(rule: &ClaimRule, claims: &Map<String, Value>, space_delimited: &[String]) -> bool {
    let value = lookup(claims, &rule.path);
    let split = rule.path.len() == 1 && {
        let name = rule.path[0].as_str();
        SPACE_DELIMITED_BY_DEFAULT.contains(&name) || space_delimited.iter().any(|c| c == name)
    };
    let any_matches =
        |patterns: &[Pattern]| value.is_some_and(|v| any_value(v, split, |s| patterns.iter().any(|p| p.matches(s))));
    (rule.values.is_empty() || any_matches(&rule.values)) && !any_matches(&rule.not_values)
}

fn lookup<'c>(claims: &'c Map<String, Value>, path: &[String]) -> Option<&'c Value> {
    let (first, rest) = path.split_first()?;
    let mut value = claims.get(first)?;
    for segment in rest {
        value = value.as_object()?.get(segment)?;
    }
    Some(value)
}

/// Whether `f` holds for one of the claim's values.
fn any_value(v: &Value, split: bool, f: impl Fn(&str) -> bool + Copy) -> bool {
    match v {
        Value::Array(items) => items.iter().any(|i| !matches!(i, Value::Array(_)) && any_value(i, false, f)),
        Value::String(s) if split => s.split(' ').filter(|w| !w.is_empty()).any(f),
        Value::String(s) => f(s),
        Value::Bool(b) => f(if *b { "true" } else { "false" }),
        Value::Number(n) => f(&n.to_string()),
        Value::Object(_) | Value::Null => false,
    }
}
