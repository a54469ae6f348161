//! The compiled configuration the request path reads (so no request parses JSON or
//! re-validates it), its defaults, and the error that names a bad field.

use jsonwebtoken::Algorithm;

pub use super::claim_rule::{ClaimRule, Pattern};
pub use super::introspection::{AuthMethod, ClientSecret, Introspection};
pub use super::issuer::{IssuerMismatch, IssuerTemplate, Issuers, Tenants};
pub use super::route_match::{HeaderCondition, HeaderTest, PathMatch, PrincipalPattern, RouteMatch};
use crate::jwks::KeySet;
use crate::token::vocabulary::JoseAlg;

/// A configuration error names the offending field, as a dotted path, so the single log line
/// Envoy shows is enough to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "invalid jwt-guard configuration: {}", self.message)
        } else {
            write!(f, "invalid jwt-guard configuration: {}: {}", self.field, self.message)
        }
    }
}

/// An `http://` or `https://` URL as the authority and the path (`/` when it has none): the
/// one way a JWKS, discovery or `jwks_uri` address is taken apart. `None` for other schemes.
pub fn split_http_url(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("https://").or_else(|| uri.strip_prefix("http://"))?;
    Some(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

/// `scheme://authority` in the form RFC 3986 §6.2.2-6.2.3 normalization gives it: scheme and
/// host lower-cased, the scheme's default port dropped. `None` unless it is an http(s) origin
/// with a host and nothing after it (a trailing `/` is allowed).
pub fn normalize_origin(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    Some(format!("{scheme}://{}", normalize_authority(&scheme, authority)?))
}

/// An `:authority` as it compares in a DPoP `htu`: lower-cased, the default port dropped.
/// `None` for an empty authority or one with user info, a path, a query or whitespace.
pub fn normalize_authority(scheme: &str, authority: &str) -> Option<String> {
    let default_port = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    if authority.is_empty()
        || authority.bytes().any(|b| matches!(b, b'/' | b'?' | b'#' | b'@') || b <= b' ' || b >= 0x7f)
    {
        return None;
    }
    let lower = authority.to_ascii_lowercase();
    Some(lower.strip_suffix(default_port).map(str::to_string).unwrap_or(lower))
}

impl Config {
    /// What judges `Requirement::Provider(v)`: provider `v`, or past the providers an audience
    /// variant of one. The provider's index and the audiences to check.
    pub fn verifier(&self, v: usize) -> (usize, &[String]) {
        match v.checked_sub(self.providers.len()).and_then(|k| self.audience_variants.get(k)) {
            Some(variant) => (variant.provider, &variant.audiences),
            None => (v, self.providers.get(v).map_or(&[][..], |p| &p.audiences)),
        }
    }

    pub fn verifier_count(&self) -> usize {
        self.providers.len() + self.audience_variants.len()
    }

    /// What `check-config` and the plugin's start-up warn about: accepted, but probably not meant.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.providers {
            if p.allow_any_audience && p.id_token_audiences.is_empty() && p.require_typ.is_none() {
                out.push(format!(
                    "providers.{}: allow_any_audience with neither id_token_audiences nor require_typ: an ID token \
                     is then told from an access token by its claims ({}) alone",
                    p.name,
                    if p.id_token_claims.is_empty() {
                        "none configured".to_string()
                    } else {
                        p.id_token_claims.join(", ")
                    }
                ));
            }
            if matches!(p.introspection.as_ref().map(|i| &i.secret), Some(ClientSecret::Inline(_))) {
                out.push(format!(
                    "providers.{}.introspection: client_secret is inline in the configuration; for anything but \
                     local use, name an environment variable of the VM in client_secret_env",
                    p.name
                ));
            }
        }
        out
    }

    /// Reads each `client_secret_env` from `env` (the VM's environment); the error names the
    /// provider and the variable, never a value.
    pub fn resolve_secrets(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for p in &mut self.providers {
            let Some(intro) = &mut p.introspection else { continue };
            if let ClientSecret::Env(name) = &intro.secret {
                match env(name) {
                    Some(v) if !v.is_empty() => intro.secret = ClientSecret::Resolved(v),
                    _ => {
                        return Err(err(
                            format!("providers.{}.introspection.client_secret_env", p.name),
                            format!(
                                "the VM has no environment variable {name} (set it in vm_config.environment_variables, \
                                 or Istio's WasmPlugin vmConfig.env)"
                            ),
                        ))
                    }
                }
            }
        }
        Ok(())
    }
}

pub(super) fn err(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError { field: field.into(), message: message.into() }
}

pub const DEFAULT_REALM: &str = "jwt-guard";
pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;
pub const DEFAULT_CACHE_DURATION_MS: u64 = 600_000;
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// About 1.1 KB per entry inside V8 for a 641-character RS256 token (`make bench-core`), so at
/// most about 11 MB per worker. With 5,000 users in Zipf order it hits 98.6% of requests,
/// against 75% at 1,000, where the misses' RSA checks halve throughput (`make bench`).
pub const DEFAULT_JWT_CACHE_SIZE: usize = 10_000;
pub const DEFAULT_STALE_IF_ERROR_MS: u64 = 24 * 3600 * 1000;
pub const DEFAULT_UNKNOWN_KID_REFETCH_INTERVAL_MS: u64 = 30_000;
pub const DEFAULT_MAX_TOKEN_SIZE: usize = 8 * 1024;
pub const DEFAULT_ID_TOKEN_CLAIMS: [&str; 3] = ["nonce", "at_hash", "c_hash"];
/// Asymmetric algorithms only: HS* needs a shared secret and is opt-in.
pub const DEFAULT_ALGORITHMS: [JoseAlg; 10] = [
    JoseAlg::of(Algorithm::RS256),
    JoseAlg::of(Algorithm::RS384),
    JoseAlg::of(Algorithm::RS512),
    JoseAlg::of(Algorithm::PS256),
    JoseAlg::of(Algorithm::PS384),
    JoseAlg::of(Algorithm::PS512),
    JoseAlg::of(Algorithm::ES256),
    JoseAlg::of(Algorithm::ES384),
    JoseAlg::of(Algorithm::EdDSA),
    JoseAlg::ED25519,
];

#[derive(Debug, Clone)]
pub struct Config {
    pub providers: Vec<Provider>,
    pub realm: String,
    /// `None`: no `rules` given, so every request needs a valid token from any provider.
    pub rules: Option<Vec<Rule>>,
    /// Header names a client must never set: the claim headers of every provider.
    pub protected_headers: Vec<String>,
    /// jwt_authn's field, on by default as Istio sets it: a CORS preflight carries no
    /// credentials (Fetch standard), so judging it would only block the browser's real request.
    pub bypass_cors_preflight: bool,
    /// The `provider_and_audiences` of the rules: providers judged with other audiences.
    pub audience_variants: Vec<AudienceVariant>,
    /// Set `wasm.jwt_guard.principal` and `wasm.jwt_guard.reason` on every request decided:
    /// two host calls, so opt-in (about 3% of a cached request inside Envoy).
    pub filter_state: bool,
}

/// jwt_authn's `provider_and_audiences`: a provider whose tokens a rule checks against its own
/// audiences. It has a verified-token cache of its own (a verdict depends on the audiences).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceVariant {
    pub provider: usize,
    pub audiences: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    /// Always set from configuration (`issuer` or `issuers` is required there); `None` means
    /// "not checked", as in jwt_authn, and is only used to run peer test vectors through the core.
    pub issuers: Option<Issuers>,
    /// Empty means "any audience", as in jwt_authn: from configuration only with
    /// `allow_any_audience`, which says so explicitly.
    pub audiences: Vec<String>,
    /// Said explicitly in configuration: the audience is not checked (`audiences` is empty).
    pub allow_any_audience: bool,
    pub keys: KeySource,
    pub extraction: Extraction,
    pub forward: bool,
    pub forward_payload_header: Option<String>,
    pub claim_to_headers: Vec<ClaimToHeader>,
    pub clock_skew_seconds: u64,
    pub max_lifetime_seconds: Option<u64>,
    pub require_expiration: bool,
    pub algorithms: Vec<JoseAlg>,
    pub id_token_audiences: Vec<String>,
    pub id_token_claims: Vec<String>,
    /// Lower-cased, without the optional `application/` prefix (RFC 7515 §4.1.9).
    pub require_typ: Option<String>,
    pub allowed_client_ids: Vec<String>,
    pub jwt_cache_size: usize,
    pub max_token_size: usize,
    pub dpop: Dpop,
    /// jwt_authn's field: the verified payload is handed on in `PAYLOAD_HEADER` for Envoy's
    /// `header_to_metadata` to write under this key.
    pub payload_in_metadata: Option<String>,
    /// Top-level string claims turned into lists of words in that payload (jwt_authn's
    /// `normalize_payload_in_metadata`), and matched word by word by claim rules.
    pub space_delimited_claims: Vec<String>,
    /// A verified token keeps its claims, because a rule reads them (`claims`).
    pub keep_claims: bool,
    /// RFC 7662: tokens that are not JWTs are checked at this endpoint.
    pub introspection: Option<Introspection>,
}

/// The request header that carries a verified payload to `header_to_metadata`: standard
/// base64 of a serialized `google.protobuf.Value`. A client's own is removed on every request.
pub const PAYLOAD_HEADER: &str = "x-jwt-guard-payload";

/// DPoP (RFC 9449): whether `Authorization: DPoP` is taken, and how proofs are checked. Tokens
/// bound to a key (`cnf.jkt`) are refused as bearer tokens in every mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dpop {
    pub mode: DpopMode,
    /// Asymmetric only: a proof is signed with the client's private key.
    pub algorithms: Vec<JoseAlg>,
    /// A proof's `iat` may be at most this old (and at most the clock skew in the future).
    pub max_proof_age_seconds: u64,
    /// `scheme://authority` as clients see the API, when it differs from what Envoy sees
    /// (TLS terminated before Envoy). `None`: `:scheme` and `:authority` of the request.
    pub external_origin: Option<String>,
    /// Proofs remembered by the workers of one Envoy for `max_proof_age_seconds`, to refuse
    /// replays.
    pub replay_cache_size: usize,
    /// RFC 9449 §8-9: proofs must carry a nonce this Envoy issued (`DPoP-Nonce`).
    pub require_nonce: bool,
    /// A nonce is accepted for at most this long (and at least half of it).
    pub nonce_lifetime_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopMode {
    /// DPoP and Bearer both accepted; a DPoP request is fully checked.
    Allowed,
    /// Only DPoP-bound tokens with a valid proof.
    Required,
    /// `Authorization: DPoP` is not read (so bound tokens are never accepted).
    Disabled,
}

pub const DEFAULT_DPOP_MAX_PROOF_AGE_SECONDS: u64 = 60;
pub const DEFAULT_DPOP_REPLAY_CACHE_SIZE: usize = 10_000;
pub const DEFAULT_DPOP_NONCE_LIFETIME_SECONDS: u64 = 300;
pub const DEFAULT_DPOP_ALGORITHMS: [JoseAlg; 8] = [
    JoseAlg::of(Algorithm::ES256),
    JoseAlg::of(Algorithm::ES384),
    JoseAlg::of(Algorithm::RS256),
    JoseAlg::of(Algorithm::PS256),
    JoseAlg::of(Algorithm::PS384),
    JoseAlg::of(Algorithm::PS512),
    JoseAlg::of(Algorithm::EdDSA),
    JoseAlg::ED25519,
];

impl Default for Dpop {
    fn default() -> Dpop {
        Dpop {
            mode: DpopMode::Allowed,
            algorithms: DEFAULT_DPOP_ALGORITHMS.to_vec(),
            max_proof_age_seconds: DEFAULT_DPOP_MAX_PROOF_AGE_SECONDS,
            external_origin: None,
            replay_cache_size: DEFAULT_DPOP_REPLAY_CACHE_SIZE,
            require_nonce: false,
            nonce_lifetime_seconds: DEFAULT_DPOP_NONCE_LIFETIME_SECONDS,
        }
    }
}

#[derive(Debug, Clone)]
pub enum KeySource {
    Remote(RemoteJwks),
    Local(KeySet),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    /// The JWKS URL, or with `discovery` the OpenID configuration URL.
    pub uri: String,
    /// `uri` is an OIDC discovery document whose `jwks_uri` names the JWKS.
    pub discovery: bool,
    pub cluster: String,
    /// `:authority` and `:path` for the dispatch call, taken from `uri`.
    pub authority: String,
    pub path: String,
    pub timeout_ms: u64,
    pub cache_duration_ms: u64,
    /// How long keys that cannot be refreshed are still trusted.
    pub stale_if_error_ms: u64,
    /// At most one refetch for an unknown `kid` per this interval.
    pub unknown_kid_refetch_interval_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extraction {
    pub headers: Vec<HeaderSource>,
    pub params: Vec<String>,
    pub cookies: Vec<String>,
    /// `Authorization: DPoP <token>`, read right after the Bearer Authorization source when DPoP
    /// is not disabled and that source is among `headers`. Built once here, not per request.
    pub dpop: Option<HeaderSource>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderSource {
    /// Lower-cased.
    pub name: String,
    pub value_prefix: Option<String>,
}

impl HeaderSource {
    /// `Authorization: Bearer`, the source the DPoP scheme goes beside.
    pub fn is_bearer_authorization(&self) -> bool {
        self.name == "authorization" && self.value_prefix.as_deref() == Some("Bearer ")
    }

    /// `Authorization: DPoP` (RFC 9449 §7.1).
    pub fn dpop_authorization() -> HeaderSource {
        HeaderSource { name: "authorization".to_string(), value_prefix: Some("DPoP ".to_string()) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToHeader {
    pub header_name: String,
    /// The claim path, split on `.` for nested claims.
    pub claim_path: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub matcher: RouteMatch,
    pub action: RuleAction,
    /// `None`: the route needs no token.
    pub requires: Option<Requirement>,
    pub scopes: Vec<String>,
    /// All must hold for one verified token.
    pub claims: Vec<ClaimRule>,
    /// One must match the verified token's `<iss>/<sub>`, when not empty.
    pub principals: Vec<PrincipalPattern>,
    /// None may match it.
    pub not_principals: Vec<PrincipalPattern>,
}

/// What a matching rule does with its conditions (`scopes`, `claims`, `principals`,
/// `not_principals`). `requires` always authenticates first: a token that fails it is refused
/// whatever the action. `Allow` and `Deny` are Istio's ALLOW and DENY, so several rules can
/// cover one request the way several policies do: an unmet `Allow` and a `Deny` whose
/// conditions do not all hold hand the request to the next matching rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// The conditions hold: allowed; otherwise refused. The first matching rule decides.
    Require,
    /// The conditions hold: allowed; otherwise the next matching rule decides.
    Allow,
    /// The conditions hold (Istio's semantics for a request without a token: only `not_`
    /// conditions can hold): refused with `denied`; otherwise the next matching rule decides.
    Deny,
}

/// jwt_authn's `JwtRequirement`, with providers resolved to indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// A verifier (`Config::verifier`): a provider, or a provider with a rule's audiences.
    Provider(usize),
    Any(Vec<Requirement>),
    All(Vec<Requirement>),
    AllowMissing,
    AllowMissingOrFailed,
}

impl Requirement {
    /// The verifiers it judges, in order: `allow_missing` and `allow_missing_or_failed` judge
    /// every provider's token (`providers` of them).
    pub fn verifiers(&self, providers: usize) -> Vec<usize> {
        match self {
            Requirement::Provider(i) => vec![*i],
            Requirement::Any(list) | Requirement::All(list) => {
                list.iter().flat_map(|r| r.verifiers(providers)).collect()
            }
            Requirement::AllowMissing | Requirement::AllowMissingOrFailed => (0..providers).collect(),
        }
    }
}
