//! Access token or ID token? Providers mint both with the same keys and issuer, so only the
//! token's own signals tell them apart. The order is fixed and documented (docs/decisions.md, decision
//! table): an explicit access-token `typ` wins over everything else.

use crate::policy::Provider;
use crate::token::vocabulary::normalize_typ;
use crate::token::{Claims, Header};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Header `typ` says `at+jwt` (RFC 9068).
    Access,
    /// An OIDC ID token, with the signal that gave it away.
    Id(IdSignal),
    /// No signal either way; treated as an access token and checked as one.
    Unmarked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdSignal {
    /// Keycloak puts `"typ": "ID"` in the payload.
    PayloadTyp,
    /// A claim only ID tokens carry (`nonce`, `at_hash`, `c_hash` by default).
    Claim(String),
    /// `aud` names the client (`id_token_audiences`) and not this API.
    ClientAudience,
}

pub fn classify(provider: &Provider, header: &Header, claims: &Claims) -> Kind {
    classify_for(provider, &provider.audiences, header, claims)
}

/// `classify` where the API's audiences are `audiences` (a rule's `provider_and_audiences`).
pub fn classify_for(provider: &Provider, audiences: &[String], header: &Header, claims: &Claims) -> Kind {
    if header.typ.as_deref().map(normalize_typ).as_deref() == Some("at+jwt") {
        return Kind::Access;
    }
    if claims.all.get("typ").and_then(|v| v.as_str()).is_some_and(|t| t.eq_ignore_ascii_case("ID")) {
        return Kind::Id(IdSignal::PayloadTyp);
    }
    if let Some(name) = provider.id_token_claims.iter().find(|c| claims.all.contains_key(c.as_str())) {
        return Kind::Id(IdSignal::Claim(name.clone()));
    }
    let names_client = claims.aud.iter().any(|a| provider.id_token_audiences.contains(a));
    let names_api = claims.aud.iter().any(|a| audiences.contains(a));
    if names_client && !names_api {
        return Kind::Id(IdSignal::ClientAudience);
    }
    Kind::Unmarked
}
