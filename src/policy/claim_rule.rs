//! A rule's `claims`: conditions on the verified token's claim values, in the forms Istio's
//! `request.auth.claims[...]` takes (exact, `prefix*`, `*suffix`, `*`), compiled once.

use serde_json::Value;

use super::compile::is_quoted_string_safe;
use super::config::{err, ConfigError};
use super::wire::RawClaimRule;

/// Bounds, so a rule's cost per request stays small and known.
pub const MAX_CLAIM_RULES: usize = 16;
pub const MAX_CLAIM_VALUES: usize = 64;
pub const MAX_CLAIM_PATH_DEPTH: usize = 8;
pub const MAX_PATTERN_LEN: usize = 256;

/// Claims Istio splits on spaces before matching (its jwt_authn `space_delimited_claims`).
pub const SPACE_DELIMITED_BY_DEFAULT: [&str; 2] = ["scope", "permission"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRule {
    /// Literal segments: `realm_access.roles` is `["realm_access", "roles"]`.
    pub path: Vec<String>,
    /// At least one must match, when not empty.
    pub values: Vec<Pattern>,
    /// None may match.
    pub not_values: Vec<Pattern>,
}

impl ClaimRule {
    /// The claim as the user wrote it, for refusals and logs (never the expected values).
    pub fn display_name(&self) -> String {
        self.path.join(".")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    /// `*`: present and non-empty.
    Present,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, &'static str> {
        if text.is_empty() {
            return Err("must not be empty");
        }
        if text.len() > MAX_PATTERN_LEN {
            return Err("is longer than 256 bytes");
        }
        if text == "*" {
            return Ok(Pattern::Present);
        }
        let stars = text.matches('*').count();
        if stars > 1 || (stars == 1 && !text.starts_with('*') && !text.ends_with('*')) {
            return Err("takes one `*`, at the start (`*suffix`) or the end (`prefix*`)");
        }
        Ok(if let Some(p) = text.strip_suffix('*') {
            Pattern::Prefix(p.to_string())
        } else if let Some(s) = text.strip_prefix('*') {
            Pattern::Suffix(s.to_string())
        } else {
            Pattern::Exact(text.to_string())
        })
    }

    pub fn matches(&self, s: &str) -> bool {
        match self {
            Pattern::Exact(e) => s == e,
            Pattern::Prefix(p) => s.starts_with(p.as_str()),
            Pattern::Suffix(x) => s.ends_with(x.as_str()),
            Pattern::Present => !s.is_empty(),
        }
    }
}

pub(super) fn compile_claim_rules(field: &str, raw: Vec<Value>) -> Result<Vec<ClaimRule>, ConfigError> {
    if raw.len() > MAX_CLAIM_RULES {
        return Err(err(field, format!("at most {MAX_CLAIM_RULES} entries")));
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, value) in raw.into_iter().enumerate() {
        let f = format!("{field}[{i}]");
        let rc: RawClaimRule = serde_json::from_value(value).map_err(|e| err(&f, e.to_string()))?;
        out.push(compile_claim_rule(&f, rc)?);
    }
    Ok(out)
}

fn compile_claim_rule(f: &str, rc: RawClaimRule) -> Result<ClaimRule, ConfigError> {
    let path: Vec<String> = match (rc.name, rc.path) {
        (Some(name), None) => {
            let parts: Vec<String> = name.split('.').map(str::to_string).collect();
            if parts.iter().any(String::is_empty) {
                return Err(err(
                    format!("{f}.name"),
                    "must be a claim name, dotted for nested claims (use `path` for names with dots)",
                ));
            }
            parts
        }
        (None, Some(path)) => {
            if path.is_empty() || path.iter().any(String::is_empty) {
                return Err(err(format!("{f}.path"), "must list one or more non-empty segments"));
            }
            path
        }
        _ => return Err(err(f, "exactly one of name and path is required")),
    };
    if path.len() > MAX_CLAIM_PATH_DEPTH {
        return Err(err(f, format!("a claim path has at most {MAX_CLAIM_PATH_DEPTH} segments")));
    }
    if path.iter().any(|s| !is_quoted_string_safe(s)) {
        return Err(err(f, "claim names must be printable ASCII without quotes or backslashes"));
    }
    let values = patterns(&format!("{f}.values"), rc.values.as_deref())?;
    let not_values = patterns(&format!("{f}.not_values"), rc.not_values.as_deref())?;
    if values.is_empty() && not_values.is_empty() {
        return Err(err(f, "needs `values`, `not_values` or both"));
    }
    Ok(ClaimRule { path, values, not_values })
}

fn patterns(field: &str, list: Option<&[String]>) -> Result<Vec<Pattern>, ConfigError> {
    let Some(list) = list else { return Ok(Vec::new()) };
    if list.is_empty() || list.len() > MAX_CLAIM_VALUES {
        return Err(err(field, format!("must list 1 to {MAX_CLAIM_VALUES} values")));
    }
    list.iter().enumerate().map(|(i, v)| Pattern::parse(v).map_err(|m| err(format!("{field}[{i}]"), m))).collect()
}
