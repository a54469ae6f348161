//! Conditions in disjunctive normal form: a list of alternatives, each a conjunction of
//! conditions on the request and on the verified token. An RBAC policy or an AuthorizationPolicy
//! rule becomes such a list, and each alternative one or more jwt-guard rules. What jwt-guard
//! cannot express is kept on the alternative, so `rules_for` can decide, knowing whether the
//! alternative allows or denies, which way is the narrower one.

use serde_json::{json, Map, Value};

use super::notes::Notes;

/// Whether the alternatives let a request through (RBAC ALLOW, Istio ALLOW) or refuse it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ctx {
    Allow,
    Deny,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PathKind {
    Prefix,
    Exact,
    SeparatedPrefix,
    Suffix,
}

/// (kind, value, negated).
pub type PathCond = (PathKind, String, bool);

#[derive(Clone, Default, Debug, PartialEq)]
pub struct Alt {
    pub paths: Vec<PathCond>,
    /// `None`: any method.
    pub methods: Option<Vec<String>>,
    /// jwt-guard header matchers, all of which must hold.
    pub headers: Vec<Value>,
    pub hosts: Option<Vec<String>>,
    pub not_hosts: Vec<String>,
    /// Each group is one `principals` list; all groups must hold.
    pub principals: Vec<Vec<String>>,
    pub not_principals: Vec<String>,
    /// jwt-guard claim rules.
    pub claims: Vec<Value>,
    /// Conditions jwt-guard cannot express, as `field: why`.
    pub unsupported: Vec<(String, String)>,
    /// Conditions that are not about the token (addresses, ports, SNI, mTLS identities).
    pub non_token: Vec<String>,
}

pub type Dnf = Vec<Alt>;

/// More alternatives than this is not a policy anyone reviews; the import refuses it.
const MAX_ALTERNATIVES: usize = 256;

pub fn always() -> Dnf {
    vec![Alt::default()]
}

pub fn never() -> Dnf {
    Vec::new()
}

pub fn or(mut a: Dnf, b: Dnf) -> Dnf {
    a.extend(b);
    a
}

/// The conjunction of two disjunctions (every pair of alternatives).
pub fn and(a: &Dnf, b: &Dnf) -> Result<Dnf, String> {
    if a.len().saturating_mul(b.len()) > MAX_ALTERNATIVES {
        return Err(format!("more than {MAX_ALTERNATIVES} alternatives once expanded"));
    }
    Ok(a.iter().flat_map(|x| b.iter().map(move |y| x.merge(y))).collect())
}

impl Alt {
    pub fn unsupported(field: &str, why: impl Into<String>) -> Alt {
        Alt { unsupported: vec![(field.to_string(), why.into())], ..Alt::default() }
    }

    pub fn non_token(field: &str) -> Alt {
        Alt { non_token: vec![field.to_string()], ..Alt::default() }
    }

    pub fn header(matcher: Value) -> Alt {
        Alt { headers: vec![matcher], ..Alt::default() }
    }

    pub fn claim(rule: Value) -> Alt {
        Alt { claims: vec![rule], ..Alt::default() }
    }

    pub fn path(kind: PathKind, value: &str, negated: bool) -> Alt {
        Alt { paths: vec![(kind, value.to_string(), negated)], ..Alt::default() }
    }

    fn merge(&self, o: &Alt) -> Alt {
        let mut m = self.clone();
        m.paths.extend(o.paths.iter().cloned());
        m.methods = match (&self.methods, &o.methods) {
            (Some(a), Some(b)) => Some(a.iter().filter(|x| b.contains(x)).cloned().collect()),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        m.headers.extend(o.headers.iter().cloned());
        m.hosts = match (&self.hosts, &o.hosts) {
            (Some(a), Some(b)) if a != b => {
                m.unsupported.push(("hosts".to_string(), "two host conditions on one request".to_string()));
                Some(a.clone())
            }
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        m.not_hosts.extend(o.not_hosts.iter().cloned());
        m.principals.extend(o.principals.iter().cloned());
        m.not_principals.extend(o.not_principals.iter().cloned());
        m.claims.extend(o.claims.iter().cloned());
        m.unsupported.extend(o.unsupported.iter().cloned());
        m.non_token.extend(o.non_token.iter().cloned());
        m
    }

    fn has_token_conditions(&self) -> bool {
        !self.principals.is_empty() || !self.not_principals.is_empty() || !self.claims.is_empty()
    }

    /// A condition that needs a token to hold (Istio: `requestPrincipals`, claim `values`).
    fn has_positive_token_conditions(&self) -> bool {
        !self.principals.is_empty() || self.claims.iter().any(|c| c.get("values").is_some())
    }
}

/// A `:path` header matcher (the path with its query string, as the filter sees it).
fn path_header(kind: &str, value: &str, invert: bool) -> Value {
    let mut m = json!({"name": ":path"});
    m[kind] = json!(value);
    if invert {
        m["invert_match"] = json!(true);
    }
    m
}

/// A path condition as `:path` header matchers, in DNF. `:path` carries the query string, so
/// an exact path is `P` or `P?...`. Where only a subset or a superset can be written (a suffix
/// before a query string), the one that keeps the rule narrower for `ctx` is chosen.
fn path_as_headers(kind: PathKind, p: &str, negated: bool, ctx: Ctx) -> Vec<Vec<Value>> {
    let q = format!("{p}?");
    match (kind, negated) {
        (PathKind::Prefix, false) => vec![vec![path_header("prefix_match", p, false)]],
        (PathKind::Prefix, true) => vec![vec![path_header("prefix_match", p, true)]],
        (PathKind::Exact, false) => {
            vec![vec![path_header("exact_match", p, false)], vec![path_header("prefix_match", &q, false)]]
        }
        (PathKind::Exact, true) => {
            vec![vec![path_header("exact_match", p, true), path_header("prefix_match", &q, true)]]
        }
        (PathKind::SeparatedPrefix, false) => vec![
            vec![path_header("exact_match", p, false)],
            vec![path_header("prefix_match", &format!("{p}/"), false)],
            vec![path_header("prefix_match", &q, false)],
        ],
        (PathKind::SeparatedPrefix, true) => vec![vec![
            path_header("exact_match", p, true),
            path_header("prefix_match", &format!("{p}/"), true),
            path_header("prefix_match", &q, true),
        ]],
        // A suffix before a query string shows as `S?` somewhere in :path (or in the query).
        (PathKind::Suffix, false) => match ctx {
            Ctx::Allow => vec![vec![path_header("suffix_match", p, false)]],
            Ctx::Deny => {
                vec![vec![path_header("suffix_match", p, false)], vec![path_header("contains_match", &q, false)]]
            }
        },
        (PathKind::Suffix, true) => match ctx {
            Ctx::Allow => vec![vec![path_header("suffix_match", p, true), path_header("contains_match", &q, true)]],
            Ctx::Deny => vec![vec![path_header("suffix_match", p, true)]],
        },
    }
}

fn path_field(kind: PathKind) -> &'static str {
    match kind {
        PathKind::Prefix => "prefix",
        PathKind::Exact => "path",
        PathKind::SeparatedPrefix => "path_separated_prefix",
        PathKind::Suffix => "suffix",
    }
}

/// A jwt-guard rule `match` read back as path conditions and the rest.
pub fn split_match(m: &Value) -> (Vec<PathCond>, Map<String, Value>) {
    let mut rest = m.as_object().cloned().unwrap_or_default();
    let mut paths = Vec::new();
    for kind in [PathKind::Prefix, PathKind::Exact, PathKind::SeparatedPrefix, PathKind::Suffix] {
        if let Some(Value::String(p)) = rest.remove(path_field(kind)) {
            paths.push((kind, p, false));
        }
    }
    (paths, rest)
}

/// The jwt-guard rules for one alternative under a jwt_authn rule's `base` match (or `/`) and
/// `requires`. Returns no rule when the alternative can never hold, or is left to the policy
/// that stays in place.
pub fn rules_for(
    alt: &Alt,
    ctx: Ctx,
    base: &Value,
    requires: Option<&Value>,
    source: &str,
    notes: &mut Notes,
) -> Vec<Value> {
    let mut alt = alt.clone();
    for (field, why) in &alt.unsupported {
        match ctx {
            Ctx::Allow => notes.not_carried(source, field, format!("{why}; what only this allowed is refused")),
            Ctx::Deny => {
                notes.not_carried(source, field, format!("{why}; the DENY holds without it, so it refuses more"))
            }
        }
    }
    if ctx == Ctx::Allow && !alt.unsupported.is_empty() {
        return Vec::new();
    }
    for field in &alt.non_token {
        match ctx {
            Ctx::Allow => notes.left_in_place(source, field, "not about the token: keep the policy in place for it"),
            Ctx::Deny => {
                notes.left_in_place(source, field, "not about the token: this DENY stays with the policy in place")
            }
        }
    }
    if ctx == Ctx::Deny && !alt.non_token.is_empty() {
        return Vec::new();
    }
    if requires.is_none() && alt.has_token_conditions() {
        // No token is read here: conditions on one only hold when negative.
        if alt.has_positive_token_conditions() {
            return Vec::new();
        }
        alt.not_principals.clear();
        alt.claims.clear();
    }
    if alt.principals.len() > 1 {
        if ctx == Ctx::Allow {
            notes.not_carried(source, "principals", "two principal conditions on one request; refused");
            return Vec::new();
        }
        alt.principals.truncate(1);
    }
    if alt.methods.as_ref().is_some_and(Vec::is_empty) {
        return Vec::new();
    }
    let (mut paths, rest) = split_match(base);
    paths.extend(alt.paths.iter().cloned());
    paths.retain(|(k, p, neg)| !(*k == PathKind::Prefix && p == "/" && !neg));
    let main = paths
        .iter()
        .position(|(k, _, neg)| !neg && *k != PathKind::Suffix)
        .or_else(|| paths.iter().position(|(_, _, neg)| !neg));
    let main = main.map(|i| paths.remove(i));
    let mut combos: Vec<Vec<Value>> = vec![Vec::new()];
    for (kind, p, neg) in &paths {
        let dnf = path_as_headers(*kind, p, *neg, ctx);
        combos = combos.iter().flat_map(|c| dnf.iter().map(move |d| [c.clone(), d.clone()].concat())).collect();
    }
    let mut out = Vec::new();
    for combo in combos {
        let mut m = rest.clone();
        match &main {
            Some((kind, p, _)) => m.insert(path_field(*kind).to_string(), json!(p)),
            None => m.insert("prefix".to_string(), json!("/")),
        };
        if let Some(methods) = &alt.methods {
            m.insert("methods".to_string(), json!(methods));
        }
        let mut headers: Vec<Value> = m.remove("headers").and_then(|h| h.as_array().cloned()).unwrap_or_default();
        headers.extend(alt.headers.iter().cloned());
        headers.extend(combo);
        if !headers.is_empty() {
            m.insert("headers".to_string(), json!(headers));
        }
        if let Some(h) = &alt.hosts {
            m.insert("hosts".to_string(), json!(h));
        }
        if !alt.not_hosts.is_empty() {
            m.insert("not_hosts".to_string(), json!(alt.not_hosts));
        }
        let mut rule = json!({"match": m, "action": if ctx == Ctx::Allow { "allow" } else { "deny" }});
        if let Some(r) = requires {
            rule["requires"] = r.clone();
        }
        if let Some(p) = alt.principals.first() {
            rule["principals"] = json!(p);
        }
        if !alt.not_principals.is_empty() {
            rule["not_principals"] = json!(alt.not_principals);
        }
        if !alt.claims.is_empty() {
            rule["claims"] = json!(alt.claims);
        }
        out.push(rule);
    }
    out
}
