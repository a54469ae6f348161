//! The configuration: its wire form (jwt_authn's field names), validation with field paths,
//! and the compiled form every other stage reads.

pub mod claim_rule;
mod compile;
mod config;
pub mod duration;
mod http_uri;
pub mod introspection;
pub mod issuer;
pub mod route_match;
mod rules;
mod wire;

pub use config::{
    normalize_authority, normalize_origin, split_http_url, AudienceVariant, AuthMethod, ClaimRule, ClaimToHeader,
    ClientSecret, Config, ConfigError, Dpop, DpopMode, Extraction, HeaderCondition, HeaderSource, HeaderTest,
    Introspection, IssuerMismatch, IssuerTemplate, Issuers, KeySource, PathMatch, Pattern, PrincipalPattern, Provider,
    RemoteJwks, Requirement, RouteMatch, Rule, RuleAction, Tenants, DEFAULT_ALGORITHMS, DEFAULT_CACHE_DURATION_MS,
    DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_DPOP_ALGORITHMS, DEFAULT_DPOP_MAX_PROOF_AGE_SECONDS,
    DEFAULT_DPOP_REPLAY_CACHE_SIZE, DEFAULT_ID_TOKEN_CLAIMS, DEFAULT_JWT_CACHE_SIZE, DEFAULT_MAX_TOKEN_SIZE,
    DEFAULT_REALM, DEFAULT_STALE_IF_ERROR_MS, DEFAULT_TIMEOUT_MS, DEFAULT_UNKNOWN_KID_REFETCH_INTERVAL_MS,
    PAYLOAD_HEADER,
};
