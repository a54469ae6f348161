//! Which `iss` values a provider trusts: literal issuers (Auth0 with a custom domain beside its
//! tenant domain) and templates with one `{claim}` placeholder (Entra ID multi-tenant:
//! `https://login.microsoftonline.com/{tid}/v2.0`), whose value must be a listed tenant and equal
//! that claim of the token.

use serde_json::{Map, Value};

use super::compile::is_quoted_string_safe;
use super::config::{err, ConfigError};

/// A placeholder value (a tenant) is 1 to this many characters of `[A-Za-z0-9._-]`.
pub const MAX_TENANT_LEN: usize = 64;
/// Entries of `issuers` and of `tenants`.
pub const MAX_ISSUERS: usize = 64;
pub const MAX_TENANTS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuers {
    pub literals: Vec<String>,
    pub templates: Vec<IssuerTemplate>,
    /// Only read when there are templates.
    pub tenants: Tenants,
}

/// `prefix{claim}suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerTemplate {
    pub prefix: String,
    pub claim: String,
    pub suffix: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenants {
    /// `["*"]`: any well-formed tenant, said explicitly.
    Any,
    Listed(Vec<String>),
}

/// Why a token's `iss` was not trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerMismatch {
    /// Neither a literal issuer nor the shape of a template.
    Unknown,
    /// A template's shape, but the tenant is malformed, not listed, or not the token's claim.
    Tenant(&'static str),
}

impl Issuers {
    pub fn single(issuer: &str) -> Issuers {
        Issuers { literals: vec![issuer.to_string()], templates: Vec::new(), tenants: Tenants::Listed(Vec::new()) }
    }

    /// `Ok(None)` for a literal issuer, `Ok(Some(tenant))` for a template's.
    pub fn check(&self, iss: Option<&str>, claims: &Map<String, Value>) -> Result<Option<String>, IssuerMismatch> {
        let Some(iss) = iss else { return Err(IssuerMismatch::Unknown) };
        if self.literals.iter().any(|l| l == iss) {
            return Ok(None);
        }
        let mut mismatch = IssuerMismatch::Unknown;
        for t in &self.templates {
            let Some(tenant) = t.segment(iss) else { continue };
            match self.check_tenant(t, tenant, claims) {
                Ok(()) => return Ok(Some(tenant.to_string())),
                Err(why) => mismatch = IssuerMismatch::Tenant(why),
            }
        }
        Err(mismatch)
    }

    fn check_tenant(&self, t: &IssuerTemplate, tenant: &str, claims: &Map<String, Value>) -> Result<(), &'static str> {
        if !is_tenant(tenant) {
            return Err("the issuer's tenant segment is not 1 to 64 characters of A-Z a-z 0-9 . _ -");
        }
        match claims.get(&t.claim) {
            Some(Value::String(c)) if c == tenant => {}
            Some(_) => return Err("the tenant claim differs from the issuer's tenant segment"),
            None => return Err("the token has no tenant claim"),
        }
        match &self.tenants {
            Tenants::Any => Ok(()),
            Tenants::Listed(list) if list.iter().any(|l| l == tenant) => Ok(()),
            Tenants::Listed(_) => Err("the tenant is not one this API accepts"),
        }
    }

    /// OIDC discovery: the document's `issuer` is one of ours, or the same template with any
    /// placeholder name (Entra's common endpoint publishes `.../{tenantid}/v2.0`).
    pub fn accepts_discovered(&self, doc_issuer: &str) -> bool {
        if self.literals.iter().any(|l| l == doc_issuer) {
            return true;
        }
        match split_template(doc_issuer) {
            Some((prefix, _, suffix)) => self.templates.iter().any(|t| t.prefix == prefix && t.suffix == suffix),
            None => false,
        }
    }

    /// For messages and `explain`: every entry as configured.
    pub fn describe(&self) -> String {
        let mut all: Vec<String> = self.literals.clone();
        all.extend(self.templates.iter().map(|t| format!("{}{{{}}}{}", t.prefix, t.claim, t.suffix)));
        all.join(", ")
    }
}

impl IssuerTemplate {
    /// The placeholder's value in `iss`, if `iss` has the template's shape.
    fn segment<'a>(&self, iss: &'a str) -> Option<&'a str> {
        let rest = iss.strip_prefix(self.prefix.as_str())?;
        rest.strip_suffix(self.suffix.as_str())
    }
}

pub fn is_tenant(s: &str) -> bool {
    (1..=MAX_TENANT_LEN).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `prefix{name}suffix` with exactly one placeholder; `None` when there is none.
fn split_template(s: &str) -> Option<(&str, &str, &str)> {
    let open = s.find('{')?;
    let close = open + s[open..].find('}')?;
    Some((&s[..open], &s[open + 1..close], &s[close + 1..]))
}

/// `issuer` or `issuers` (exactly one) and `tenants`, checked with field paths.
pub(super) fn compile_issuers(
    field: &str,
    issuer: Option<String>,
    issuers: Option<Vec<String>>,
    tenants: Option<Vec<String>>,
) -> Result<Issuers, ConfigError> {
    let (entries, entries_field) = match (issuer, issuers) {
        (Some(i), None) => {
            let f = format!("{field}.issuer");
            if i.contains(['*', '{', '}']) {
                return Err(err(
                    f,
                    "is compared exactly, so `*`, `{` and `}` would never match: for several issuers or an \
                     Entra ID tenant in the URL, use `issuers` with a `{claim}` template and `tenants`",
                ));
            }
            (vec![i], f)
        }
        (None, Some(list)) => {
            if list.is_empty() || list.len() > MAX_ISSUERS {
                return Err(err(format!("{field}.issuers"), format!("must list 1 to {MAX_ISSUERS} issuers")));
            }
            (list, format!("{field}.issuers"))
        }
        (Some(_), Some(_)) => return Err(err(field, "exactly one of issuer and issuers is allowed")),
        (None, None) => return Err(err(format!("{field}.issuer"), "is required (or `issuers`)")),
    };
    let mut out = Issuers { literals: Vec::new(), templates: Vec::new(), tenants: Tenants::Listed(Vec::new()) };
    for (i, entry) in entries.into_iter().enumerate() {
        let f =
            if entries_field.ends_with("issuers") { format!("{entries_field}[{i}]") } else { entries_field.clone() };
        if entry.is_empty() || !is_quoted_string_safe(&entry) || entry.contains(' ') {
            return Err(err(f, "must be a non-empty printable ASCII URL without spaces"));
        }
        if entry.contains('*') {
            return Err(err(
                f,
                "`*` is not a wildcard here: write the tenant as a `{claim}` placeholder and list `tenants`",
            ));
        }
        match split_template(&entry) {
            None if entry.contains('}') => return Err(err(f, "has a `}` without `{`")),
            None => {
                if out.literals.contains(&entry) {
                    return Err(err(f, "is listed twice"));
                }
                out.literals.push(entry);
            }
            Some((prefix, claim, suffix)) => {
                if suffix.contains(['{', '}']) || claim.contains('{') {
                    return Err(err(f, "must have exactly one `{claim}` placeholder"));
                }
                if claim.is_empty() || !claim.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(err(f, "the placeholder must name a claim: letters, digits and `_`, e.g. `{tid}`"));
                }
                if prefix.is_empty() {
                    return Err(err(f, "must start with the fixed part of the issuer URL, not the placeholder"));
                }
                out.templates.push(IssuerTemplate {
                    prefix: prefix.to_string(),
                    claim: claim.to_string(),
                    suffix: suffix.to_string(),
                });
            }
        }
    }
    let tenants_field = format!("{field}.tenants");
    out.tenants = match (tenants, out.templates.is_empty()) {
        (None, true) => Tenants::Listed(Vec::new()),
        (Some(_), true) => return Err(err(tenants_field, "only applies to `issuers` templates with a `{claim}`")),
        (None, false) => {
            return Err(err(
                tenants_field,
                "is required with an issuer template: list the tenants this API accepts, or [\"*\"] for any",
            ))
        }
        (Some(list), false) => compile_tenants(&tenants_field, list)?,
    };
    Ok(out)
}

fn compile_tenants(field: &str, list: Vec<String>) -> Result<Tenants, ConfigError> {
    if list.len() == 1 && list[0] == "*" {
        return Ok(Tenants::Any);
    }
    if list.is_empty() || list.len() > MAX_TENANTS {
        return Err(err(field, format!("must list 1 to {MAX_TENANTS} tenants, or be [\"*\"] for any")));
    }
    for (i, t) in list.iter().enumerate() {
        if t == "*" {
            return Err(err(format!("{field}[{i}]"), "`*` stands alone: [\"*\"] accepts any tenant"));
        }
        if !is_tenant(t) {
            return Err(err(format!("{field}[{i}]"), "must be 1 to 64 characters of A-Z a-z 0-9 . _ -"));
        }
    }
    Ok(Tenants::Listed(list))
}
