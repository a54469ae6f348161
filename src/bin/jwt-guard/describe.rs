//! What `explain` prints about a token and a rule, in the configuration's own words.

use jwt_guard::policy::{Config, PathMatch, Requirement, Rule, RuleAction};
use jwt_guard::token::{self, fingerprint, Shape};

/// The token's shape, header and claims; the parsed JWS, if it is one.
pub fn describe_token(token: &str) -> Option<token::Jwt<'_>> {
    let shape = token::shape(token);
    println!(
        "  shape: {}, {} bytes, fingerprint {}",
        match shape {
            Shape::Jws => "JWS (a signed JWT)",
            Shape::Jwe => "JWE (an encrypted JWT)",
            Shape::Opaque => "opaque (not a JWT)",
            Shape::Malformed => "malformed",
        },
        token.len(),
        fingerprint(token)
    );
    let jwt = if shape == Shape::Jws { token::parse(token).ok() } else { None };
    if let Some(jwt) = &jwt {
        let header_json = token.split('.').next().and_then(|h| jwt_guard::token::base64url::decode(h.as_bytes()).ok());
        println!("  header: {}", header_json.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default());
        let claims = serde_json::to_string_pretty(&jwt.claims.all).unwrap_or_default();
        println!("  claims: {}", claims.replace('\n', "\n  "));
    }
    jwt
}

/// A rule's match and what it asks of the token, in the configuration's words.
pub fn describe_rule(config: &Config, rule: &Rule) -> String {
    let m = &rule.matcher;
    let mut parts = vec![match &m.path {
        PathMatch::Prefix(p) => format!("prefix {p}"),
        PathMatch::Exact(p) => format!("path {p}"),
        PathMatch::SeparatedPrefix(p) => format!("path_separated_prefix {p}"),
        PathMatch::Suffix(p) => format!("suffix {p}"),
    }];
    if !m.methods.is_empty() {
        parts.push(format!("methods {}", m.methods.join(",")));
    }
    for h in &m.headers {
        parts.push(format!("header {} {:?}{}", h.name, h.test, if h.invert { " (inverted)" } else { "" }));
    }
    if !m.hosts.is_empty() {
        parts.push(format!("hosts {:?}", m.hosts));
    }
    if !m.not_hosts.is_empty() {
        parts.push(format!("not_hosts {:?}", m.not_hosts));
    }
    match rule.action {
        RuleAction::Require => {}
        RuleAction::Allow => parts.insert(0, "action allow (unmet: next rule)".to_string()),
        RuleAction::Deny => parts.insert(0, "action deny (conditions hold: refused)".to_string()),
    }
    let needs = match &rule.requires {
        None => "no token needed".to_string(),
        Some(r) => format!("requires {}", describe_requirement(config, r)),
    };
    let mut asks = Vec::new();
    if !rule.scopes.is_empty() {
        asks.push(format!("scopes {}", rule.scopes.join(" ")));
    }
    if !rule.principals.is_empty() || !rule.not_principals.is_empty() {
        asks.push(format!("{} principals, {} not_principals", rule.principals.len(), rule.not_principals.len()));
    }
    for c in &rule.claims {
        asks.push(format!("claim {} ({} values, {} not_values)", c.display_name(), c.values.len(), c.not_values.len()));
    }
    format!(
        "{}; {needs}{}",
        parts.join(", "),
        if asks.is_empty() { String::new() } else { format!("; {}", asks.join("; ")) }
    )
}

/// A requirement in jwt_authn's words, with provider names.
fn describe_requirement(config: &Config, r: &Requirement) -> String {
    let list = |rs: &[Requirement]| rs.iter().map(|r| describe_requirement(config, r)).collect::<Vec<_>>().join(", ");
    match r {
        Requirement::Provider(v) => {
            let (i, audiences) = config.verifier(*v);
            let name = config.providers.get(i).map_or("?", |p| p.name.as_str());
            if *v < config.providers.len() {
                name.to_string()
            } else {
                format!("{name} with audiences {}", audiences.join(", "))
            }
        }
        Requirement::Any(rs) => format!("any of ({})", list(rs)),
        Requirement::All(rs) => format!("all of ({})", list(rs)),
        Requirement::AllowMissing => "a valid token or none".to_string(),
        Requirement::AllowMissingOrFailed => "nothing (a valid token's claims are still forwarded)".to_string(),
    }
}
