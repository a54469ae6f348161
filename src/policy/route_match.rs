//! A rule's `match` and its request conditions, with the names and meaning of the fields they
//! mirror: jwt_authn's RouteMatch (`prefix`, `path`, `path_separated_prefix`, `headers`) and
//! Istio's operation fields (`hosts`/`notHosts`, `*suffix` paths), and a rule's `principals` and
//! `not_principals` (Istio's `requestPrincipals` forms over `<iss>/<sub>`).

use serde_json::Value;

use super::claim_rule::Pattern;
use super::compile::is_quoted_string_safe;
use super::config::{err, ConfigError};
use super::wire::{RawHeaderMatcher, RawMatch};

/// Header conditions, hosts and principals per rule: each costs a comparison per request.
pub const MAX_CONDITIONS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub path: PathMatch,
    /// Upper-cased; empty matches every method.
    pub methods: Vec<String>,
    /// All must hold.
    pub headers: Vec<HeaderCondition>,
    /// `:authority`, lower-cased patterns; empty matches any host.
    pub hosts: Vec<Pattern>,
    /// None may match `:authority`.
    pub not_hosts: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    /// jwt_authn's `path_separated_prefix`: the prefix, then the end or `/`.
    SeparatedPrefix(String),
    /// Istio's `*suffix` paths.
    Suffix(String),
}

/// Envoy's HeaderMatcher, as jwt_authn's RouteMatch takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderCondition {
    /// Lower-cased; pseudo-headers (`:method`, `:authority`...) included.
    pub name: String,
    pub test: HeaderTest,
    pub invert: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderTest {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    /// `present_match`: true for present, false for absent.
    Present(bool),
}

/// One of Istio's `requestPrincipals` forms, split as Istio splits it (at the last `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalPattern {
    pub iss: Pattern,
    pub sub: Pattern,
}

impl PrincipalPattern {
    /// As istio/istio pilot/pkg/security/authz/model/generator.go builds its matchers.
    pub fn parse(value: &str) -> Result<PrincipalPattern, &'static str> {
        if value.is_empty() || value.len() > 512 || !is_quoted_string_safe(value) {
            return Err("must be 1 to 512 printable ASCII characters");
        }
        let (iss, sub, found) = match value.rfind('/') {
            Some(i) => (&value[..i], &value[i + 1..], true),
            None => (value, "", false),
        };
        let exact = |s: &str| Pattern::Exact(s.to_string());
        Ok(if value == "*" {
            PrincipalPattern { iss: Pattern::Present, sub: Pattern::Present }
        } else if let Some(rest) = value.strip_prefix('*') {
            match found {
                true if iss == "*" => PrincipalPattern { iss: Pattern::Present, sub: exact(sub) },
                true => PrincipalPattern { iss: Pattern::Suffix(iss[1..].to_string()), sub: exact(sub) },
                false => PrincipalPattern { iss: Pattern::Present, sub: Pattern::Suffix(rest.to_string()) },
            }
        } else if let Some(rest) = value.strip_suffix('*') {
            match found {
                true if sub == "*" => PrincipalPattern { iss: exact(iss), sub: Pattern::Present },
                true => PrincipalPattern { iss: exact(iss), sub: Pattern::Prefix(sub[..sub.len() - 1].to_string()) },
                false => PrincipalPattern { iss: Pattern::Prefix(rest.to_string()), sub: Pattern::Present },
            }
        } else {
            PrincipalPattern { iss: exact(iss), sub: exact(sub) }
        })
    }

    /// A token without `iss` or `sub` has no principal: nothing matches it.
    pub fn matches(&self, iss: Option<&str>, sub: Option<&str>) -> bool {
        match (iss, sub) {
            (Some(i), Some(s)) => self.iss.matches(i) && self.sub.matches(s),
            _ => false,
        }
    }
}

pub(super) fn compile_match(field: &str, m: RawMatch) -> Result<RouteMatch, ConfigError> {
    let f = format!("{field}.match");
    let path = match (m.prefix, m.path, m.path_separated_prefix, m.suffix) {
        (Some(p), None, None, None) if p.starts_with('/') => PathMatch::Prefix(p),
        (None, Some(p), None, None) if p.starts_with('/') => PathMatch::Exact(p),
        (None, None, Some(p), None) if p.starts_with('/') && (p == "/" || !p.ends_with('/')) => {
            PathMatch::SeparatedPrefix(p)
        }
        (None, None, None, Some(s)) if !s.is_empty() && !s.contains('?') => PathMatch::Suffix(s),
        (None, None, Some(_), None) => {
            return Err(err(format!("{f}.path_separated_prefix"), "must start with `/` and not end with one"))
        }
        (None, None, None, Some(_)) => return Err(err(format!("{f}.suffix"), "must be a non-empty path suffix")),
        (Some(_), None, None, None) | (None, Some(_), None, None) => return Err(err(&f, "paths must start with `/`")),
        _ => return Err(err(&f, "exactly one of prefix, path, path_separated_prefix and suffix is required")),
    };
    let methods = m.methods.iter().map(|m| m.to_ascii_uppercase()).collect();
    if m.headers.len() > MAX_CONDITIONS {
        return Err(err(format!("{f}.headers"), format!("at most {MAX_CONDITIONS} header conditions")));
    }
    let mut headers = Vec::with_capacity(m.headers.len());
    for (i, value) in m.headers.into_iter().enumerate() {
        headers.push(compile_header(&format!("{f}.headers[{i}]"), value)?);
    }
    let hosts = host_patterns(&format!("{f}.hosts"), &m.hosts)?;
    let not_hosts = host_patterns(&format!("{f}.not_hosts"), &m.not_hosts)?;
    Ok(RouteMatch { path, methods, headers, hosts, not_hosts })
}

fn compile_header(f: &str, value: Value) -> Result<HeaderCondition, ConfigError> {
    let h: RawHeaderMatcher = serde_json::from_value(value).map_err(|e| err(f, e.to_string()))?;
    let name = h.name.to_ascii_lowercase();
    let valid_name = name.strip_prefix(':').unwrap_or(&name);
    if valid_name.is_empty() || !valid_name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(err(format!("{f}.name"), "must be an HTTP header name (pseudo-headers such as `:authority` too)"));
    }
    let test = match (h.exact_match, h.prefix_match, h.suffix_match, h.contains_match, h.present_match) {
        (Some(v), None, None, None, None) => HeaderTest::Exact(v),
        (None, Some(v), None, None, None) if !v.is_empty() => HeaderTest::Prefix(v),
        (None, None, Some(v), None, None) if !v.is_empty() => HeaderTest::Suffix(v),
        (None, None, None, Some(v), None) if !v.is_empty() => HeaderTest::Contains(v),
        (None, None, None, None, Some(p)) => HeaderTest::Present(p),
        (None, Some(_), None, None, None) | (None, None, Some(_), None, None) | (None, None, None, Some(_), None) => {
            return Err(err(f, "prefix_match, suffix_match and contains_match must not be empty"))
        }
        _ => {
            return Err(err(
                f,
                "exactly one of exact_match, prefix_match, suffix_match, contains_match and present_match is required",
            ))
        }
    };
    Ok(HeaderCondition { name, test, invert: h.invert_match })
}

fn host_patterns(f: &str, list: &[String]) -> Result<Vec<Pattern>, ConfigError> {
    if list.len() > MAX_CONDITIONS {
        return Err(err(f, format!("at most {MAX_CONDITIONS} hosts")));
    }
    list.iter()
        .enumerate()
        .map(|(i, h)| {
            let bad = |m: &str| err(format!("{f}[{i}]"), m.to_string());
            if h.bytes().any(|b| b <= b' ' || b >= 0x7f || matches!(b, b'/' | b'"' | b'\\')) {
                return Err(bad("must be a host, `host:port`, `*.domain`, `prefix*` or `*`"));
            }
            Pattern::parse(&h.to_ascii_lowercase()).map_err(bad)
        })
        .collect()
}

pub(super) fn principal_patterns(f: &str, list: &[String]) -> Result<Vec<PrincipalPattern>, ConfigError> {
    if list.len() > MAX_CONDITIONS {
        return Err(err(f, format!("at most {MAX_CONDITIONS} principals")));
    }
    list.iter().enumerate().map(|(i, p)| PrincipalPattern::parse(p).map_err(|m| err(format!("{f}[{i}]"), m))).collect()
}
