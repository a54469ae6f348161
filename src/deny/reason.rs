//! Every way a request can be refused, and the one table that maps each to an HTTP status,
//! an RFC 6750 error code and a stable reason string. Responses, logs and metrics all read
//! from here so the three never disagree.

/// Why a request was not let through. Reason strings (`as_str`) are a stable interface:
/// dashboards and alerts key on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// No token where the route requires one.
    Missing,
    /// Tokens in more than one place, several Authorization headers, or an empty bearer value.
    InvalidRequest(&'static str),
    /// A token that is not a JWS at all (Auth0's old opaque access tokens, random strings).
    Opaque,
    /// A five-part compact JWE: encrypted, so we cannot read or verify it.
    Jwe,
    /// A three-part token that does not decode or whose claims have the wrong types.
    Malformed(&'static str),
    /// The token is larger than `max_token_size`.
    TooLarge,
    /// `alg` is `none`, unknown, or not in the provider's allow-list.
    Algorithm,
    /// No key in the JWKS has the token's `kid` (with a compatible `kty`/`alg`).
    UnknownKid,
    /// No key can check this `alg` (for example an RS256 token against an EC-only JWKS).
    NoCompatibleKey,
    /// More keys fit the token than it may be checked against (`jwks::MAX_CANDIDATES`): it
    /// has no `kid` while the issuer has several keys for its algorithm. Carries how many.
    AmbiguousKey(usize),
    /// The signature does not verify under any candidate key.
    BadSignature,
    /// `iss` is missing or is not one of the provider's issuers.
    Issuer,
    /// `iss` has the shape of an issuer template, but its tenant is malformed, not listed, or
    /// not the token's tenant claim. Carries which.
    Tenant(&'static str),
    /// `aud` does not name this API.
    Audience,
    /// `exp` has passed (beyond the clock skew).
    Expired,
    /// `nbf` is still in the future (beyond the clock skew).
    NotYetValid,
    /// `exp` is missing while required, `iat` is missing while `max_lifetime` is set, or the
    /// lifetime is longer than `max_lifetime`.
    Lifetime(&'static str),
    /// The header `typ` is not the one the provider requires.
    Typ,
    /// The header lists a `crit` extension we do not implement (RFC 7515 §4.1.11).
    Crit,
    /// `client_id`/`azp` is not in `allowed_client_ids`.
    Client,
    /// An OIDC ID token was sent to an API.
    IdToken,
    /// RFC 7662: the introspection endpoint says the token is not active (revoked, expired,
    /// or never issued).
    Inactive,
    /// RFC 7662: the endpoint says the token is a refresh token, which is never for APIs.
    RefreshToken,
    /// RFC 7662: the endpoint's 200 answer is not a JSON object with a boolean `active`.
    IntrospectionResponse,
    /// A valid token without the scopes the route needs. Carries the required scopes.
    Scope(String),
    /// A valid token whose `<iss>/<sub>` is not among the rule's `principals`, or is among its
    /// `not_principals`.
    Principal,
    /// A valid token whose claims do not meet the route's `claims`. Carries the claim's name,
    /// never the values the rule expects.
    Claim(String),
    /// A DPoP proof that is missing, repeated or malformed, or fails a check of its own (`typ`,
    /// `alg`, `jwk`, signature). Carries which.
    DpopProof(&'static str),
    /// A proof made for another request or token: `htm`, `htu` or `ath` differ. Carries which.
    DpopMismatch(&'static str),
    /// A proof whose `iat` is older than `max_proof_age`, or in the future beyond the skew.
    DpopStale,
    /// A proof whose `jti` was already used within the proof-age window.
    DpopReplay,
    /// The Envoy-wide proof memory has no room for another live proof in this proof's bucket:
    /// refused (503) rather than forget a proof that could then be replayed.
    DpopReplayCacheFull,
    /// The proof's key is not the one the token is bound to (`cnf.jkt`).
    DpopKey,
    /// `dpop.require_nonce`: the proof has no nonce, or one this Envoy did not issue or that
    /// expired. The refusal carries a fresh one (`DPoP-Nonce`).
    DpopNonce,
    /// A DPoP-bound token (`cnf.jkt`) sent as a bearer token: the downgrade RFC 9449 warns of.
    DpopDowngrade,
    /// `Authorization: DPoP` with a token that is not bound to a key.
    DpopUnbound,
    /// A bearer token where the provider requires DPoP.
    DpopRequired,
    /// A token bound to a client certificate (`cnf["x5t#S256"]`) on a connection without one.
    CertMissing,
    /// A certificate-bound token on a connection with another client certificate.
    CertMismatch,
    /// The provider's signing keys are not available (never loaded, or the fetch deadline
    /// passed).
    KeysUnavailable,
    /// The introspection endpoint could not answer (unreachable, timed out, 5xx or another
    /// unusable status): fails closed, with 503.
    IntrospectionUnavailable,
    /// This worker already has `max_in_flight` introspection calls open, or its queue of paused
    /// requests (1,024) is full of requests waiting for introspection answers: 503 with
    /// `Retry-After`.
    IntrospectionOverloaded,
    /// A rule with `action: deny` whose conditions hold refuses the request.
    Denied,
    /// No rule matches the route; jwt-guard denies by default.
    NoRoute,
    /// jwt-guard could not judge the request: the proxy failed a call it needs (reading or
    /// editing the request), or the filter is not configured. Fails closed, with 503.
    Internal,
}

/// RFC 6750 §3.1 error codes, plus the two responses RFC 6750 does not cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 401 without an error attribute (RFC 6750 §3.1: no credentials, no error code); the
    /// body says `missing_token`.
    MissingToken,
    InvalidRequest,
    InvalidToken,
    InsufficientScope,
    /// 503: the keys are not there; RFC 6750 has nothing to say.
    Unavailable,
    /// 403 for a route no rule covers.
    AccessDenied,
    /// RFC 9449 §7.1: the DPoP proof is invalid (401).
    InvalidDpopProof,
    /// RFC 9449 §9: the proof needs a server nonce; the response carries one (401).
    UseDpopNonce,
}

impl ErrorCode {
    /// The `error` value of the JSON body.
    pub fn body_code(self) -> &'static str {
        match self {
            ErrorCode::MissingToken => "missing_token",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::Unavailable => "temporarily_unavailable",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
        }
    }
}

/// Every reason string, once each, in documentation order: metrics count by these.
pub const NAMES: [&str; 44] = [
    "missing",
    "invalid_request",
    "opaque",
    "jwe",
    "malformed",
    "too_large",
    "algorithm",
    "crit",
    "issuer",
    "tenant",
    "unknown_kid",
    "ambiguous_key",
    "expired",
    "not_yet_valid",
    "audience",
    "bad_signature",
    "id_token",
    "typ",
    "lifetime",
    "client",
    "inactive",
    "refresh_token",
    "introspection_response",
    "scope",
    "principal",
    "claim",
    "dpop_proof",
    "dpop_mismatch",
    "dpop_stale",
    "dpop_replay",
    "dpop_key",
    "dpop_nonce",
    "dpop_downgrade",
    "dpop_unbound",
    "dpop_required",
    "cert_missing",
    "cert_mismatch",
    "keys_unavailable",
    "dpop_replay_cache_full",
    "introspection_unavailable",
    "introspection_overloaded",
    "denied",
    "no_route",
    "internal",
];

/// Per variant, by `ordinal`: its reason string (an index into NAMES) and RFC 6750 error code.
const TABLE: [(usize, ErrorCode); 45] = [
    (0, ErrorCode::MissingToken),       // Missing
    (1, ErrorCode::InvalidRequest),     // InvalidRequest
    (2, ErrorCode::InvalidToken),       // Opaque
    (3, ErrorCode::InvalidToken),       // Jwe
    (4, ErrorCode::InvalidToken),       // Malformed
    (5, ErrorCode::InvalidToken),       // TooLarge
    (6, ErrorCode::InvalidToken),       // Algorithm
    (7, ErrorCode::InvalidToken),       // Crit
    (8, ErrorCode::InvalidToken),       // Issuer
    (9, ErrorCode::InvalidToken),       // Tenant
    (10, ErrorCode::InvalidToken),      // UnknownKid
    (10, ErrorCode::InvalidToken),      // NoCompatibleKey
    (11, ErrorCode::InvalidToken),      // AmbiguousKey
    (12, ErrorCode::InvalidToken),      // Expired
    (13, ErrorCode::InvalidToken),      // NotYetValid
    (14, ErrorCode::InvalidToken),      // Audience
    (15, ErrorCode::InvalidToken),      // BadSignature
    (16, ErrorCode::InvalidToken),      // IdToken
    (17, ErrorCode::InvalidToken),      // Typ
    (18, ErrorCode::InvalidToken),      // Lifetime
    (19, ErrorCode::InvalidToken),      // Client
    (20, ErrorCode::InvalidToken),      // Inactive
    (21, ErrorCode::InvalidToken),      // RefreshToken
    (22, ErrorCode::InvalidToken),      // IntrospectionResponse
    (23, ErrorCode::InsufficientScope), // Scope
    (24, ErrorCode::InsufficientScope), // Principal
    (25, ErrorCode::InsufficientScope), // Claim
    (26, ErrorCode::InvalidDpopProof),  // DpopProof
    (27, ErrorCode::InvalidDpopProof),  // DpopMismatch
    (28, ErrorCode::InvalidDpopProof),  // DpopStale
    (29, ErrorCode::InvalidDpopProof),  // DpopReplay
    (30, ErrorCode::InvalidDpopProof),  // DpopKey
    (31, ErrorCode::UseDpopNonce),      // DpopNonce
    (32, ErrorCode::InvalidToken),      // DpopDowngrade
    (33, ErrorCode::InvalidToken),      // DpopUnbound
    (34, ErrorCode::InvalidToken),      // DpopRequired
    (35, ErrorCode::InvalidToken),      // CertMissing
    (36, ErrorCode::InvalidToken),      // CertMismatch
    (37, ErrorCode::Unavailable),       // KeysUnavailable
    (38, ErrorCode::Unavailable),       // DpopReplayCacheFull
    (39, ErrorCode::Unavailable),       // IntrospectionUnavailable
    (40, ErrorCode::Unavailable),       // IntrospectionOverloaded
    (41, ErrorCode::AccessDenied),      // Denied
    (42, ErrorCode::AccessDenied),      // NoRoute
    (43, ErrorCode::Unavailable),       // Internal
];

impl Reason {
    /// One of each variant, in the order of the reason list in docs/operations.md. Tests, metrics and docs
    /// checks read this instead of keeping their own lists; `ordinal` is an exhaustive match,
    /// so a new variant does not compile until it has a place, and a test then wants it here.
    pub fn all() -> Vec<Reason> {
        vec![
            Reason::Missing,
            Reason::InvalidRequest("example"),
            Reason::Opaque,
            Reason::Jwe,
            Reason::Malformed("example"),
            Reason::TooLarge,
            Reason::Algorithm,
            Reason::Crit,
            Reason::Issuer,
            Reason::Tenant("example"),
            Reason::UnknownKid,
            Reason::NoCompatibleKey,
            Reason::AmbiguousKey(4),
            Reason::Expired,
            Reason::NotYetValid,
            Reason::Audience,
            Reason::BadSignature,
            Reason::IdToken,
            Reason::Typ,
            Reason::Lifetime("example"),
            Reason::Client,
            Reason::Inactive,
            Reason::RefreshToken,
            Reason::IntrospectionResponse,
            Reason::Scope("example".to_string()),
            Reason::Principal,
            Reason::Claim("example".to_string()),
            Reason::DpopProof("example"),
            Reason::DpopMismatch("example"),
            Reason::DpopStale,
            Reason::DpopReplay,
            Reason::DpopKey,
            Reason::DpopNonce,
            Reason::DpopDowngrade,
            Reason::DpopUnbound,
            Reason::DpopRequired,
            Reason::CertMissing,
            Reason::CertMismatch,
            Reason::KeysUnavailable,
            Reason::DpopReplayCacheFull,
            Reason::IntrospectionUnavailable,
            Reason::IntrospectionOverloaded,
            Reason::Denied,
            Reason::NoRoute,
            Reason::Internal,
        ]
    }

    /// The variant's position in `all()`, and its row in TABLE: the one match over variants that
    /// names, codes and statuses go through.
    pub fn ordinal(&self) -> usize {
        match self {
            Reason::Missing => 0,
            Reason::InvalidRequest(_) => 1,
            Reason::Opaque => 2,
            Reason::Jwe => 3,
            Reason::Malformed(_) => 4,
            Reason::TooLarge => 5,
            Reason::Algorithm => 6,
            Reason::Crit => 7,
            Reason::Issuer => 8,
            Reason::Tenant(_) => 9,
            Reason::UnknownKid => 10,
            Reason::NoCompatibleKey => 11,
            Reason::AmbiguousKey(_) => 12,
            Reason::Expired => 13,
            Reason::NotYetValid => 14,
            Reason::Audience => 15,
            Reason::BadSignature => 16,
            Reason::IdToken => 17,
            Reason::Typ => 18,
            Reason::Lifetime(_) => 19,
            Reason::Client => 20,
            Reason::Inactive => 21,
            Reason::RefreshToken => 22,
            Reason::IntrospectionResponse => 23,
            Reason::Scope(_) => 24,
            Reason::Principal => 25,
            Reason::Claim(_) => 26,
            Reason::DpopProof(_) => 27,
            Reason::DpopMismatch(_) => 28,
            Reason::DpopStale => 29,
            Reason::DpopReplay => 30,
            Reason::DpopKey => 31,
            Reason::DpopNonce => 32,
            Reason::DpopDowngrade => 33,
            Reason::DpopUnbound => 34,
            Reason::DpopRequired => 35,
            Reason::CertMissing => 36,
            Reason::CertMismatch => 37,
            Reason::KeysUnavailable => 38,
            Reason::DpopReplayCacheFull => 39,
            Reason::IntrospectionUnavailable => 40,
            Reason::IntrospectionOverloaded => 41,
            Reason::Denied => 42,
            Reason::NoRoute => 43,
            Reason::Internal => 44,
        }
    }

    /// The stable reason string used in logs and metrics.
    pub fn as_str(&self) -> &'static str {
        NAMES.get(self.name_index()).copied().unwrap_or("internal")
    }

    /// Its reason string's position in NAMES: metrics count by it.
    pub fn name_index(&self) -> usize {
        self.row().0
    }

    /// Its TABLE row (the tests read every variant's, so the fallback is never taken).
    fn row(&self) -> (usize, ErrorCode) {
        TABLE.get(self.ordinal()).copied().unwrap_or((NAMES.len() - 1, ErrorCode::Unavailable))
    }

    /// A refusal about DPoP itself: its challenge names the DPoP scheme.
    pub fn concerns_dpop(&self) -> bool {
        matches!(
            self,
            Reason::DpopProof(_)
                | Reason::DpopMismatch(_)
                | Reason::DpopStale
                | Reason::DpopReplay
                | Reason::DpopKey
                | Reason::DpopNonce
                | Reason::DpopDowngrade
                | Reason::DpopUnbound
                | Reason::DpopRequired
        )
    }

    pub fn status(&self) -> u32 {
        match self.error_code() {
            ErrorCode::MissingToken | ErrorCode::InvalidToken => 401,
            ErrorCode::InvalidRequest => 400,
            ErrorCode::InsufficientScope | ErrorCode::AccessDenied => 403,
            ErrorCode::Unavailable => 503,
            ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce => 401,
        }
    }

    pub fn error_code(&self) -> ErrorCode {
        self.row().1
    }

    /// When several providers could have accepted a request, the most useful failure to show
    /// is the one that says most about the token actually sent: anything beats "missing".
    pub fn specificity(&self) -> u8 {
        match self {
            Reason::Missing => 0,
            Reason::Issuer => 1,
            Reason::KeysUnavailable | Reason::IntrospectionUnavailable | Reason::IntrospectionOverloaded => 3,
            Reason::InvalidRequest(_) => 4,
            _ => 2,
        }
    }
}
