//! One provider's verdict on an RFC 7662 introspection answer: the checks a JWT's claims get,
//! on the answer's fields, wherever the answer has the field (RFC 7662 §2.2 makes all but
//! `active` optional). The answer is what the authorization server said; the token itself is
//! never read.

use serde_json::{Map, Value};

use super::authenticator::{binding, check_lifetime, check_time, claim_headers, scopes, Verified};
use super::payload_metadata::payload_metadata;
use crate::deny::Reason;
use crate::policy::{IssuerMismatch, Provider};
use crate::token::base64url;

/// `token_type` values that name a refresh token (RFC 7662 §2.2 uses RFC 6749's type names;
/// RFC 8693's URI is the other spelling in use).
const REFRESH_TOKEN_TYPES: [&str; 2] = ["refresh_token", "urn:ietf:params:oauth:token-type:refresh_token"];

/// `field` as seconds, if present: anything but a non-negative integer is a broken answer.
fn seconds(answer: &Map<String, Value>, field: &str) -> Result<Option<u64>, Reason> {
    match answer.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map_or(Err(Reason::IntrospectionResponse), |v| Ok(Some(v))),
        Some(_) => Err(Reason::IntrospectionResponse),
    }
}

fn string<'a>(answer: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, Reason> {
    match answer.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Reason::IntrospectionResponse),
    }
}

/// Checks `answer` for `provider` against `audiences` (the provider's, or a rule's) at `now`.
pub fn check_answer(
    provider: &Provider,
    audiences: &[String],
    answer: &Map<String, Value>,
    now: u64,
) -> Result<Verified, Reason> {
    match answer.get("active") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => return Err(Reason::Inactive),
        _ => return Err(Reason::IntrospectionResponse),
    }
    if let Some(t) = string(answer, "token_type")? {
        if REFRESH_TOKEN_TYPES.iter().any(|r| t.eq_ignore_ascii_case(r)) {
            return Err(Reason::RefreshToken);
        }
    }
    let (exp, nbf, iat) = (seconds(answer, "exp")?, seconds(answer, "nbf")?, seconds(answer, "iat")?);
    // `require_expiration` is about JWTs: an active answer without `exp` is the server saying
    // the token is good now, and the answer is kept for `cache_duration` at most.
    check_time(provider, Some(exp.unwrap_or(u64::MAX)), nbf, now)?;
    if iat.is_some_and(|iat| iat > now.saturating_add(provider.clock_skew_seconds)) {
        return Err(Reason::NotYetValid);
    }
    let iss = string(answer, "iss")?;
    let tenant = match (&provider.issuers, iss) {
        (Some(issuers), Some(_)) => issuers.check(iss, answer).map_err(|m| match m {
            IssuerMismatch::Unknown => Reason::Issuer,
            IssuerMismatch::Tenant(why) => Reason::Tenant(why),
        })?,
        _ => None,
    };
    let aud: Vec<&str> = match answer.get("aud") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => {
            list.iter().map(|v| v.as_str().ok_or(Reason::IntrospectionResponse)).collect::<Result<_, _>>()?
        }
        Some(_) => return Err(Reason::IntrospectionResponse),
    };
    // No `aud` passes only where no audience is checked at all (`allow_any_audience`).
    if !audiences.is_empty() && !aud.iter().any(|a| audiences.iter().any(|x| x == a)) {
        return Err(Reason::Audience);
    }
    if provider.max_lifetime_seconds.is_some() {
        check_lifetime(provider, exp, iat)?;
    }
    if !provider.allowed_client_ids.is_empty() {
        match string(answer, "client_id")? {
            Some(c) if provider.allowed_client_ids.iter().any(|a| a == c) => {}
            _ => return Err(Reason::Client),
        }
    }
    let binding = binding(answer)?;
    let sub = string(answer, "sub")?.map(str::to_string);
    let iss = iss.map(str::to_string);
    Ok(Verified {
        exp,
        kid: None,
        principal: iss.as_deref().zip(sub.as_deref()).map(|(i, s)| format!("{i}/{s}")),
        iss,
        sub,
        tenant,
        scopes: scopes(answer),
        claims: provider.keep_claims.then(|| answer.clone()),
        payload_metadata: provider
            .payload_in_metadata
            .is_some()
            .then(|| payload_metadata(answer, &provider.space_delimited_claims)),
        claim_headers: claim_headers(provider, answer),
        payload_b64: base64url::encode(Value::Object(answer.clone()).to_string().as_bytes()),
        binding,
    })
}
