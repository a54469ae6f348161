//! One provider's verdict on one token. The order is chosen so that everything that can be
//! decided without crypto is decided first (shape, size, algorithm, `crit`, claims types,
//! issuer, key id, time, audience), and the signature is checked only for tokens that would
//! otherwise pass. The only exception is classification: a token is called an ID token only
//! once its signature and issuer are proven, so a forger cannot steer our error messages.

use serde_json::Value;

use crate::authn::payload_metadata::payload_metadata;
use crate::authn::signature::{has_candidate, verify_signature};
use crate::authn::token_kind::{classify_for, Kind};
use crate::deny::Reason;
use crate::jwks::KeySet;
use crate::policy::{IssuerMismatch, Provider};
use crate::token::vocabulary::{normalize_typ, parse_algorithm, JoseAlg};
use crate::token::{self, base64url, Shape};

/// What a verified token contributes to the request: everything the decision and the
/// forwarded headers need, so a cache can hold it instead of the token's parse tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub exp: Option<u64>,
    pub kid: Option<String>,
    pub iss: Option<String>,
    pub sub: Option<String>,
    /// The tenant an issuer template matched (Entra's `tid`), for logs.
    pub tenant: Option<String>,
    /// `<iss>/<sub>`, Istio's request principal; `None` without `sub` (as in Istio).
    pub principal: Option<String>,
    pub scopes: Vec<String>,
    /// The payload's claims, kept only when a rule reads them (`Provider::keep_claims`).
    pub claims: Option<serde_json::Map<String, Value>>,
    /// `PAYLOAD_HEADER`'s value, made once per token when the provider sets `payload_in_metadata`.
    pub payload_metadata: Option<String>,
    /// `(header, value)` pairs from `claim_to_headers`.
    pub claim_headers: Vec<(String, String)>,
    pub payload_b64: String,
    /// What the token is bound to (RFC 7800 `cnf`), checked on every request that presents it.
    pub binding: Binding,
}

/// A sender-constrained token's confirmation: a DPoP key (RFC 9449 `jkt`) and/or a client
/// certificate (RFC 8705 `x5t#S256`, decoded to its 32 bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Binding {
    pub jkt: Option<String>,
    pub x5t_s256: Option<Vec<u8>>,
}

/// The checks, in the order they run. `explain` shows each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Size,
    Shape,
    Decoding,
    Algorithm,
    Crit,
    Issuer,
    KeyId,
    Time,
    Audience,
    Signature,
    Classification,
    Typ,
    Lifetime,
    Client,
}

impl Check {
    pub const ALL: [Check; 14] = [
        Check::Size,
        Check::Shape,
        Check::Decoding,
        Check::Algorithm,
        Check::Crit,
        Check::Issuer,
        Check::KeyId,
        Check::Time,
        Check::Audience,
        Check::Signature,
        Check::Classification,
        Check::Typ,
        Check::Lifetime,
        Check::Client,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Check::Size => "size",
            Check::Shape => "shape",
            Check::Decoding => "decoding",
            Check::Algorithm => "algorithm",
            Check::Crit => "crit",
            Check::Issuer => "issuer",
            Check::KeyId => "key id",
            Check::Time => "exp/nbf",
            Check::Audience => "audience",
            Check::Signature => "signature",
            Check::Classification => "access vs ID token",
            Check::Typ => "typ",
            Check::Lifetime => "lifetime",
            Check::Client => "client",
        }
    }
}

/// Sees each check as it passes or fails. The request path uses `NoTrace`, which compiles
/// away; `explain` records them.
pub trait Tracer {
    fn passed(&mut self, check: Check);
}

pub struct NoTrace;

impl Tracer for NoTrace {
    #[inline(always)]
    fn passed(&mut self, _: Check) {}
}

/// Authenticates `token` for `provider` at `now` (Unix seconds).
pub fn authenticate(provider: &Provider, keys: &KeySet, token: &str, now: u64) -> Result<Verified, Reason> {
    authenticate_for(provider, &provider.audiences, keys, token, now, &mut NoTrace)
}

/// `authenticate`, reporting each check that passes to `t`. The first check not reported
/// is the one that failed.
pub fn authenticate_traced<T: Tracer>(
    provider: &Provider,
    keys: &KeySet,
    token: &str,
    now: u64,
    t: &mut T,
) -> Result<Verified, Reason> {
    authenticate_for(provider, &provider.audiences, keys, token, now, t)
}

/// `authenticate_traced` against `audiences` instead of the provider's (a rule's
/// `provider_and_audiences`); empty accepts any audience.
pub fn authenticate_for<T: Tracer>(
    provider: &Provider,
    audiences: &[String],
    keys: &KeySet,
    token: &str,
    now: u64,
    t: &mut T,
) -> Result<Verified, Reason> {
    if token.len() > provider.max_token_size {
        return Err(Reason::TooLarge);
    }
    t.passed(Check::Size);
    match token::shape(token) {
        Shape::Jws => {}
        Shape::Jwe => return Err(Reason::Jwe),
        Shape::Opaque => return Err(Reason::Opaque),
        Shape::Malformed => return Err(Reason::Malformed("a JWS has three dot-separated parts")),
    }
    t.passed(Check::Shape);
    let jwt = token::parse(token)?;
    t.passed(Check::Decoding);
    let alg = check_algorithm(provider, &jwt.header.alg)?;
    t.passed(Check::Algorithm);
    if !jwt.header.crit.is_empty() {
        return Err(Reason::Crit);
    }
    t.passed(Check::Crit);
    let claims = &jwt.claims;
    let tenant = match &provider.issuers {
        None => None,
        Some(issuers) => issuers.check(claims.iss.as_deref(), &claims.all).map_err(|m| match m {
            IssuerMismatch::Unknown => Reason::Issuer,
            IssuerMismatch::Tenant(why) => Reason::Tenant(why),
        })?,
    };
    t.passed(Check::Issuer);
    has_candidate(&jwt, alg, keys)?;
    t.passed(Check::KeyId);
    check_time(provider, claims.exp, claims.nbf, now)?;
    t.passed(Check::Time);
    let kind = classify_for(provider, audiences, &jwt.header, claims);
    let audience_ok = audiences.is_empty() || claims.aud.iter().any(|a| audiences.contains(a));
    if !audience_ok && !matches!(kind, Kind::Id(_)) {
        return Err(Reason::Audience);
    }
    if audience_ok {
        t.passed(Check::Audience);
    }
    verify_signature(&jwt, alg, keys)?;
    t.passed(Check::Signature);
    if let Kind::Id(_) = kind {
        return Err(Reason::IdToken);
    }
    t.passed(Check::Classification);
    if let Some(required) = &provider.require_typ {
        if jwt.header.typ.as_deref().map(normalize_typ).as_deref() != Some(required.as_str()) {
            return Err(Reason::Typ);
        }
    }
    t.passed(Check::Typ);
    check_lifetime(provider, claims.exp, claims.iat)?;
    t.passed(Check::Lifetime);
    check_client(provider, claims)?;
    t.passed(Check::Client);
    let binding = binding(&claims.all)?;
    Ok(Verified {
        exp: claims.exp,
        kid: jwt.header.kid.clone(),
        iss: claims.iss.clone(),
        sub: claims.sub.clone(),
        tenant,
        principal: claims.iss.as_deref().zip(claims.sub.as_deref()).map(|(i, s)| format!("{i}/{s}")),
        scopes: scopes(&claims.all),
        claims: provider.keep_claims.then(|| claims.all.clone()),
        payload_metadata: provider
            .payload_in_metadata
            .is_some()
            .then(|| payload_metadata(&claims.all, &provider.space_delimited_claims)),
        claim_headers: claim_headers(provider, &claims.all),
        payload_b64: jwt.payload_b64.to_string(),
        binding,
    })
}

/// The `cnf` claim's `jkt` and `x5t#S256`. A `cnf` we cannot read is refused rather than
/// ignored: ignoring it would accept a bound token as a bearer token.
pub(super) fn binding(claims: &serde_json::Map<String, Value>) -> Result<Binding, Reason> {
    let Some(cnf) = claims.get("cnf") else {
        return Ok(Binding::default());
    };
    let Value::Object(cnf) = cnf else {
        return Err(Reason::Malformed("`cnf` is not an object"));
    };
    let jkt = match cnf.get("jkt") {
        None => None,
        Some(Value::String(j)) if j.len() == 43 && base64url::decode(j.as_bytes()).is_ok() => Some(j.clone()),
        Some(_) => return Err(Reason::Malformed("`cnf.jkt` is not a base64url SHA-256 thumbprint")),
    };
    let x5t_s256 = match cnf.get("x5t#S256") {
        None => None,
        Some(Value::String(x)) => match base64url::decode(x.as_bytes()) {
            Ok(bytes) if bytes.len() == 32 => Some(bytes),
            _ => return Err(Reason::Malformed("`cnf.x5t#S256` is not a base64url SHA-256 digest")),
        },
        Some(_) => return Err(Reason::Malformed("`cnf.x5t#S256` is not a base64url SHA-256 digest")),
    };
    if jkt.is_none() && x5t_s256.is_none() && !cnf.is_empty() {
        // `jwk`, `jku`, `kid` or another confirmation method we cannot enforce.
        return Err(Reason::Malformed("`cnf` names a confirmation method this API does not support"));
    }
    Ok(Binding { jkt, x5t_s256 })
}

fn check_algorithm(provider: &Provider, alg: &str) -> Result<JoseAlg, Reason> {
    let alg = parse_algorithm(alg).map_err(|_| Reason::Algorithm)?;
    if provider.algorithms.contains(&alg) {
        Ok(alg)
    } else {
        Err(Reason::Algorithm)
    }
}

/// `exp` is exclusive (RFC 7519 §4.1.4: valid only *before* it) and `nbf` inclusive; both get
/// the provider's skew.
/// The one expiry rule: `exp` has passed once `now` reaches it plus the clock skew. The token
/// cache asks it too, so a cached verdict never outlives the check that made it.
pub fn expired(exp: u64, now: u64, skew: u64) -> bool {
    now >= exp.saturating_add(skew)
}

pub fn check_time(provider: &Provider, exp: Option<u64>, nbf: Option<u64>, now: u64) -> Result<(), Reason> {
    let skew = provider.clock_skew_seconds;
    match exp {
        Some(exp) if expired(exp, now, skew) => return Err(Reason::Expired),
        None if provider.require_expiration => return Err(Reason::Lifetime("the token has no `exp` claim")),
        _ => {}
    }
    if let Some(nbf) = nbf {
        if now.saturating_add(skew) < nbf {
            return Err(Reason::NotYetValid);
        }
    }
    Ok(())
}

pub(super) fn check_lifetime(provider: &Provider, exp: Option<u64>, iat: Option<u64>) -> Result<(), Reason> {
    let Some(max) = provider.max_lifetime_seconds else {
        return Ok(());
    };
    match (exp, iat) {
        (Some(exp), Some(iat)) if exp.saturating_sub(iat) <= max => Ok(()),
        (Some(_), Some(_)) => Err(Reason::Lifetime("the token lives longer than this API allows")),
        (None, _) => Err(Reason::Lifetime("the token has no `exp` claim")),
        (_, None) => Err(Reason::Lifetime("the token has no `iat` claim")),
    }
}

fn check_client(provider: &Provider, claims: &token::Claims) -> Result<(), Reason> {
    if provider.allowed_client_ids.is_empty() {
        return Ok(());
    }
    match claims.client_id() {
        Some(c) if provider.allowed_client_ids.iter().any(|a| a == c) => Ok(()),
        _ => Err(Reason::Client),
    }
}

/// The union of OAuth `scope` (space-separated), `scp` (list or string) and Auth0's
/// `permissions` (list).
pub fn scopes(claims: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        if !s.is_empty() && !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    };
    for name in ["scope", "scp", "permissions"] {
        match claims.get(name) {
            Some(Value::String(s)) => s.split(' ').for_each(&mut add),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).for_each(&mut add),
            _ => {}
        }
    }
    out
}

/// Longer claim values are not forwarded: upstreams should not get multi-kilobyte headers.
pub const MAX_CLAIM_HEADER_BYTES: usize = 4096;

/// Header values from claims: strings as they are, numbers and booleans in JSON form, lists of
/// those joined with commas. Objects, and any value with control characters (which could
/// split a header), are not forwarded.
pub(super) fn claim_headers(provider: &Provider, claims: &serde_json::Map<String, Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for c in &provider.claim_to_headers {
        let mut value = claims.get(c.claim_path[0].as_str());
        for part in &c.claim_path[1..] {
            value = value.and_then(|v| v.get(part.as_str()));
        }
        let text = match value {
            Some(v) => scalar(v).or_else(|| match v {
                Value::Array(items) => items.iter().map(scalar).collect::<Option<Vec<_>>>().map(|v| v.join(",")),
                _ => None,
            }),
            None => None,
        };
        if let Some(t) = text.filter(|t| t.len() <= MAX_CLAIM_HEADER_BYTES && t.bytes().all(|b| b >= 0x20 && b != 0x7f))
        {
            out.push((c.header_name.clone(), t));
        }
    }
    out
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
