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
    /// The proof's key is not the one the token is bound to (`cnf.jkt`).
    DpopKey,
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
        }
    }
}

/// Every reason string, once each, in documentation order: metrics count by these.
pub const NAMES: [&str; 37] = [
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
    "scope",
    "principal",
    "claim",
    "dpop_proof",
    "dpop_mismatch",
    "dpop_stale",
    "dpop_replay",
    "dpop_key",
    "dpop_downgrade",
    "dpop_unbound",
    "dpop_required",
    "cert_missing",
    "cert_mismatch",
    "keys_unavailable",
    "denied",
    "no_route",
    "internal",
];

/// Per variant, by `ordinal`: its reason string (an index into NAMES) and RFC 6750 error code.
const TABLE: [(usize, ErrorCode); 38] = [
    // 0: Reason::Missing
    (0, ErrorCode::MissingToken),
    // 1: Reason::InvalidRequest
    (1, ErrorCode::InvalidRequest),
    // 2: Reason::Opaque
    (2, ErrorCode::InvalidToken),
    // 3: Reason::Jwe
    (3, ErrorCode::InvalidToken),
    // 4: Reason::Malformed
    (4, ErrorCode::InvalidToken),
    // 5: Reason::TooLarge
    (5, ErrorCode::InvalidToken),
    // 6: Reason::Algorithm
    (6, ErrorCode::InvalidToken),
    // 7: Reason::Crit
    (7, ErrorCode::InvalidToken),
    // 8: Reason::Issuer
    (8, ErrorCode::InvalidToken),
    // 9: Reason::Tenant
    (9, ErrorCode::InvalidToken),
    // 10: Reason::UnknownKid
    (10, ErrorCode::InvalidToken),
    // 11: Reason::NoCompatibleKey
    (10, ErrorCode::InvalidToken),
    // 12: Reason::AmbiguousKey
    (11, ErrorCode::InvalidToken),
    // 13: Reason::Expired
    (12, ErrorCode::InvalidToken),
    // 14: Reason::NotYetValid
    (13, ErrorCode::InvalidToken),
    // 15: Reason::Audience
    (14, ErrorCode::InvalidToken),
    // 16: Reason::BadSignature
    (15, ErrorCode::InvalidToken),
    // 17: Reason::IdToken
    (16, ErrorCode::InvalidToken),
    // 18: Reason::Typ
    (17, ErrorCode::InvalidToken),
    // 19: Reason::Lifetime
    (18, ErrorCode::InvalidToken),
    // 20: Reason::Client
    (19, ErrorCode::InvalidToken),
    // 21: Reason::Scope
    (20, ErrorCode::InsufficientScope),
    // 22: Reason::Principal
    (21, ErrorCode::InsufficientScope),
    // 23: Reason::Claim
    (22, ErrorCode::InsufficientScope),
    // 24: Reason::DpopProof
    (23, ErrorCode::InvalidDpopProof),
    // 25: Reason::DpopMismatch
    (24, ErrorCode::InvalidDpopProof),
    // 26: Reason::DpopStale
    (25, ErrorCode::InvalidDpopProof),
    // 27: Reason::DpopReplay
    (26, ErrorCode::InvalidDpopProof),
    // 28: Reason::DpopKey
    (27, ErrorCode::InvalidDpopProof),
    // 29: Reason::DpopDowngrade
    (28, ErrorCode::InvalidToken),
    // 30: Reason::DpopUnbound
    (29, ErrorCode::InvalidToken),
    // 31: Reason::DpopRequired
    (30, ErrorCode::InvalidToken),
    // 32: Reason::CertMissing
    (31, ErrorCode::InvalidToken),
    // 33: Reason::CertMismatch
    (32, ErrorCode::InvalidToken),
    // 34: Reason::KeysUnavailable
    (33, ErrorCode::Unavailable),
    // 35: Reason::Denied
    (34, ErrorCode::AccessDenied),
    // 36: Reason::NoRoute
    (35, ErrorCode::AccessDenied),
    // 37: Reason::Internal
    (36, ErrorCode::Unavailable),
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
            Reason::Scope("example".to_string()),
            Reason::Principal,
            Reason::Claim("example".to_string()),
            Reason::DpopProof("example"),
            Reason::DpopMismatch("example"),
            Reason::DpopStale,
            Reason::DpopReplay,
            Reason::DpopKey,
            Reason::DpopDowngrade,
            Reason::DpopUnbound,
            Reason::DpopRequired,
            Reason::CertMissing,
            Reason::CertMismatch,
            Reason::KeysUnavailable,
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
            Reason::Scope(_) => 21,
            Reason::Principal => 22,
            Reason::Claim(_) => 23,
            Reason::DpopProof(_) => 24,
            Reason::DpopMismatch(_) => 25,
            Reason::DpopStale => 26,
            Reason::DpopReplay => 27,
            Reason::DpopKey => 28,
            Reason::DpopDowngrade => 29,
            Reason::DpopUnbound => 30,
            Reason::DpopRequired => 31,
            Reason::CertMissing => 32,
            Reason::CertMismatch => 33,
            Reason::KeysUnavailable => 34,
            Reason::Denied => 35,
            Reason::NoRoute => 36,
            Reason::Internal => 37,
        }
    }

    /// The stable reason string used in logs and metrics.
    pub fn as_str(&self) -> &'static str {
        NAMES.get(self.row().0).copied().unwrap_or("internal")
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
            ErrorCode::InvalidDpopProof => 401,
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
            Reason::KeysUnavailable => 3,
            Reason::InvalidRequest(_) => 4,
            _ => 2,
        }
    }

    /// A sentence a client developer can act on. It never contains the token or the request
    /// URI, and the caller supplies what the provider expects (audience, realm).
    pub fn description(&self, expected_audiences: &[String]) -> String {
        match self {
            Reason::Missing => {
                "This API requires a bearer access token: send `Authorization: Bearer <access token>`.".to_string()
            }
            Reason::InvalidRequest(why) => format!("Malformed request: {why}."),
            Reason::Opaque => format!(
                "The bearer token is not a JWT. This API accepts JWT access tokens only: request \
                 the token with the API's audience ({}), for Auth0 the `audience` parameter of the \
                 authorize or token request.",
                join_or(expected_audiences, "configured audience")
            ),
            Reason::Jwe => "The bearer token is an encrypted JWT (JWE). This API accepts signed \
                            JWT access tokens (JWS) only."
                .to_string(),
            Reason::Malformed(why) => format!("The bearer token is not a well-formed JWT: {why}."),
            Reason::TooLarge => "The bearer token is larger than this API accepts.".to_string(),
            Reason::Algorithm => "The token's signing algorithm is not accepted by this API.".to_string(),
            Reason::UnknownKid => "The token was signed with a key this API does not know (unknown kid).".to_string(),
            Reason::NoCompatibleKey => "No key of the issuer can verify a token with this algorithm.".to_string(),
            Reason::AmbiguousKey(n) => format!(
                "The token does not say which key signed it: {n} of the issuer's keys fit. Tokens must \
                 carry the `kid` header of their signing key."
            ),
            Reason::BadSignature => "The token signature is invalid.".to_string(),
            Reason::Issuer => "The token was issued by an issuer this API does not trust.".to_string(),
            Reason::Tenant(why) => format!("The token's tenant is not accepted by this API: {why}."),
            Reason::Audience => format!(
                "The token's audience (aud) is not this API. Request an access token for {}.",
                join_or(expected_audiences, "this API's audience")
            ),
            Reason::Expired => "The token has expired. Obtain a new access token.".to_string(),
            Reason::NotYetValid => "The token is not valid yet (nbf is in the future).".to_string(),
            Reason::Lifetime(why) => format!("The token lifetime is not acceptable: {why}."),
            Reason::Typ => "The token type (typ header) is not accepted by this API.".to_string(),
            Reason::Crit => {
                "The token requires a critical JOSE extension (crit) this API does not support.".to_string()
            }
            Reason::Client => "The client that requested this token may not call this API.".to_string(),
            Reason::IdToken => format!(
                "An ID token was sent. ID tokens identify the user to the client and must not be \
                 sent to APIs; this API accepts access tokens only. Send the access token issued \
                 for {}.",
                join_or(expected_audiences, "this API's audience")
            ),
            Reason::Scope(scopes) => {
                format!("The access token lacks the scope this route requires: {scopes}.")
            }
            Reason::Principal => "This route does not accept this token's subject (its `iss` and `sub`).".to_string(),
            Reason::Claim(claim) => {
                format!("The access token's `{claim}` claim does not have a value this route requires.")
            }
            Reason::DpopProof(why) => format!("The DPoP proof is not valid: {why}."),
            Reason::DpopMismatch(why) => format!(
                "The DPoP proof was made for another request: {why}. Make a new proof for this method \
                 and URL, with `ath` for this access token."
            ),
            Reason::DpopStale => "The DPoP proof is too old or dated in the future (iat). Make a fresh proof \
                                  for each request."
                .to_string(),
            Reason::DpopReplay => {
                "The DPoP proof was already used. Make a new proof, with a new `jti`, for each request.".to_string()
            }
            Reason::DpopKey => "The DPoP proof is signed with another key than the one the access token is \
                                bound to (cnf.jkt)."
                .to_string(),
            Reason::DpopDowngrade => "The access token is bound to a DPoP key: send it as `Authorization: DPoP \
                                      <token>` with a `DPoP` proof header, not as a bearer token."
                .to_string(),
            Reason::DpopUnbound => "The access token is not bound to a DPoP key, so it cannot be sent with the \
                                    DPoP scheme: send it as `Authorization: Bearer <token>`, or request a \
                                    DPoP-bound token."
                .to_string(),
            Reason::DpopRequired => "This API accepts DPoP-bound access tokens only: request the token with a \
                                     DPoP proof, and send it as `Authorization: DPoP <token>` with a `DPoP` \
                                     proof header."
                .to_string(),
            Reason::CertMissing => "The access token is bound to a client certificate: call the API over \
                                    mutual TLS with that certificate."
                .to_string(),
            Reason::CertMismatch => "The access token is bound to another client certificate than the one \
                                     this connection presented."
                .to_string(),
            Reason::KeysUnavailable => "The issuer's signing keys are not available yet. Retry shortly.".to_string(),
            Reason::Denied => "A rule of this API refuses this request.".to_string(),
            Reason::NoRoute => "No rule allows this route.".to_string(),
            Reason::Internal => "The gateway could not check this request. Retry shortly.".to_string(),
        }
    }
}

fn join_or(items: &[String], fallback: &str) -> String {
    if items.is_empty() {
        fallback.to_string()
    } else {
        items.join(" or ")
    }
}
