//! The sentence each refusal carries (`error_description`): what happened and what the client
//! developer can do about it, never the token or the request URI.

use super::reason::Reason;

impl Reason {
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
            Reason::Inactive => "The authorization server says this token is not active (revoked, expired or \
                                 unknown). Obtain a new access token."
                .to_string(),
            Reason::RefreshToken => "A refresh token was sent. Refresh tokens are for the authorization server \
                                     only; send an access token."
                .to_string(),
            Reason::IntrospectionResponse => "The authorization server's introspection answer could not be read, \
                                              so the token cannot be accepted."
                .to_string(),
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
            Reason::DpopNonce => "This API requires a server nonce in the DPoP proof: make a new proof whose \
                                  `nonce` claim is the DPoP-Nonce this response carries, and send the request again."
                .to_string(),
            Reason::DpopReplayCacheFull => {
                "Too many DPoP proofs are live right now to remember another. Retry shortly.".to_string()
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
            Reason::IntrospectionUnavailable => {
                "The authorization server could not be asked about this token. Retry shortly.".to_string()
            }
            Reason::IntrospectionOverloaded => {
                "Too many tokens are being checked with the authorization server right now. Retry shortly.".to_string()
            }
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
