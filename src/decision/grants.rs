//! What a rule asks of its verified tokens beyond their validity: `scopes` (each held by some
//! verified token), `principals`/`not_principals` (one verified token admitted) and `claims`
//! (all held by one verified token).

use std::rc::Rc;

use crate::authn::Verified;
use crate::decision::claim_match::first_unmet;
use crate::deny::Reason;
use crate::policy::{Config, Rule};

/// `Err` carries the refusal and the provider it is about.
pub(super) fn check_grants(
    config: &Config,
    rule: Option<&Rule>,
    verified: &[(usize, Rc<Verified>)],
) -> Result<(), (Reason, Option<usize>)> {
    let Some(rule) = rule else { return Ok(()) };
    let (scopes, claims) = (&rule.scopes, &rule.claims);
    let principals_apply = !rule.principals.is_empty() || !rule.not_principals.is_empty();
    if scopes.is_empty() && claims.is_empty() && !principals_apply {
        return Ok(());
    }
    // `allow_missing` let a request without a token through: it holds neither.
    let Some((first, _)) = verified.first() else {
        return Err((Reason::Missing, None));
    };
    if !scopes.iter().all(|s| verified.iter().any(|(_, v)| v.scopes.contains(s))) {
        return Err((Reason::Scope(scopes.join(" ")), Some(*first)));
    }
    // Istio's requestPrincipals and notRequestPrincipals, over one verified token.
    if principals_apply && !verified.iter().any(|(_, v)| admits(rule, v.iss.as_deref(), v.sub.as_deref())) {
        return Err((Reason::Principal, Some(*first)));
    }
    if claims.is_empty() {
        return Ok(());
    }
    let mut refusal = None;
    for (i, v) in verified {
        let empty = serde_json::Map::new();
        let token_claims = v.claims.as_ref().unwrap_or(&empty);
        match first_unmet(claims, token_claims, &config.providers[*i].space_delimited_claims) {
            None => return Ok(()),
            Some(rule) => {
                refusal.get_or_insert((Reason::Claim(rule.display_name()), Some(*i)));
            }
        }
    }
    Err(refusal.unwrap_or((Reason::Missing, None)))
}

/// Istio's requestPrincipals and notRequestPrincipals over one `<iss>/<sub>` (none without a
/// token or a `sub`: then only `not_principals` can hold).
fn admits(rule: &Rule, iss: Option<&str>, sub: Option<&str>) -> bool {
    (rule.principals.is_empty() || rule.principals.iter().any(|p| p.matches(iss, sub)))
        && !rule.not_principals.iter().any(|p| p.matches(iss, sub))
}

/// A `deny` rule's conditions, with Istio's DENY semantics: they hold for some verified token,
/// or, without one, when only negative conditions are set (a request without a principal
/// matches `notRequestPrincipals`, a missing claim passes `notValues`).
pub(super) fn grants_hold(config: &Config, rule: &Rule, verified: &[(usize, Rc<Verified>)]) -> bool {
    let holds = |provider: Option<usize>, v: Option<&Verified>| {
        let (iss, sub) = (v.and_then(|v| v.iss.as_deref()), v.and_then(|v| v.sub.as_deref()));
        let scopes = rule.scopes.iter().all(|s| v.is_some_and(|v| v.scopes.contains(s)));
        let principals = admits(rule, iss, sub);
        let empty = serde_json::Map::new();
        let claims = v.and_then(|v| v.claims.as_ref()).unwrap_or(&empty);
        let delimited = provider.map_or(&[][..], |i| &config.providers[i].space_delimited_claims[..]);
        scopes && principals && first_unmet(&rule.claims, claims, delimited).is_none()
    };
    if verified.is_empty() {
        return holds(None, None);
    }
    verified.iter().any(|(i, v)| holds(Some(*i), Some(v)))
}
