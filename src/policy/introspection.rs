//! A provider's RFC 7662 introspection endpoint, for access tokens that are not JWTs: where it
//! is, how jwt-guard authenticates to it, and how long and how much of its answers are kept.

use super::config::{err, ConfigError, RemoteJwks, Requirement};
use super::duration::parse_millis;
use super::http_uri::{compile_http_uri, HttpUri};
use super::wire::RawIntrospection;

pub const DEFAULT_INTROSPECTION_CACHE_SECONDS: u64 = 300;
pub const DEFAULT_INTROSPECTION_NEGATIVE_CACHE_SECONDS: u64 = 30;
/// Answers kept per endpoint (shared by the workers of one Envoy) and per worker.
pub const DEFAULT_INTROSPECTION_CACHE_SIZE: usize = 10_000;
/// Introspection calls one worker may have open at once; past it, 503 and `Retry-After`.
pub const DEFAULT_INTROSPECTION_MAX_IN_FLIGHT: usize = 32;
pub const MAX_INTROSPECTION_CACHE_SIZE: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspection {
    /// The endpoint's URL; with `discovered`, the discovery document's (which names it).
    pub uri: String,
    pub cluster: String,
    /// `:authority` and `:path` for the dispatch call, taken from `uri`; with `discovered`,
    /// the path comes from the document's `introspection_endpoint` at run time.
    pub authority: String,
    pub path: String,
    /// RFC 8414 / OIDC discovery's `introspection_endpoint` names the endpoint.
    pub discovered: bool,
    pub timeout_ms: u64,
    pub client_id: String,
    pub secret: ClientSecret,
    pub auth_method: AuthMethod,
    /// An active answer is kept until the token's `exp` or this long, whichever comes first.
    pub cache_seconds: u64,
    /// An inactive answer is kept this long.
    pub negative_cache_seconds: u64,
    pub cache_size: usize,
    pub max_in_flight: usize,
}

/// Where the client secret comes from. `Env` is resolved when the VM starts
/// (`Config::resolve_secrets`), from `vm_config.environment_variables` (Istio:
/// `WasmPlugin.vmConfig.env`).
#[derive(Clone, PartialEq, Eq)]
pub enum ClientSecret {
    Env(String),
    Inline(String),
    /// An `Env` secret read from the VM's environment.
    Resolved(String),
}

impl std::fmt::Debug for ClientSecret {
    /// Never the secret itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientSecret::Env(name) => write!(f, "Env({name})"),
            ClientSecret::Inline(_) => write!(f, "Inline(..)"),
            ClientSecret::Resolved(_) => write!(f, "Resolved(..)"),
        }
    }
}

impl ClientSecret {
    /// The secret, once known (an `Env` one only after `Config::resolve_secrets`).
    pub fn value(&self) -> Option<&str> {
        match self {
            ClientSecret::Env(_) => None,
            ClientSecret::Inline(s) | ClientSecret::Resolved(s) => Some(s),
        }
    }
}

/// RFC 6749 §2.3.1 client authentication (OIDC's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic with the form-encoded id and secret (the default, and RFC 6749's MUST).
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

fn seconds(field: &str, value: Option<String>, default: u64) -> Result<u64, ConfigError> {
    match value {
        None => Ok(default),
        Some(t) => Ok(parse_millis(&t).map_err(|m| err(field, m))? / 1000),
    }
}

/// `discovery`: the provider's discovery document's address, when it uses one; an
/// `introspection` without `http_uri` then takes the document's `introspection_endpoint`.
pub(super) fn compile_introspection(
    field: &str,
    raw: RawIntrospection,
    discovery: Option<&RemoteJwks>,
) -> Result<Introspection, ConfigError> {
    let (HttpUri { uri, authority, path, cluster, timeout_ms }, discovered) = match (raw.http_uri, discovery) {
        (Some(h), _) => (compile_http_uri(&format!("{field}.http_uri"), h, "the introspection endpoint")?, false),
        (None, Some(d)) => (
            HttpUri {
                uri: d.uri.clone(),
                authority: d.authority.clone(),
                path: String::new(),
                cluster: d.cluster.clone(),
                timeout_ms: d.timeout_ms,
            },
            true,
        ),
        (None, None) => {
            return Err(err(
                format!("{field}.http_uri"),
                "is required unless the provider uses `discovery`, whose `introspection_endpoint` then names it",
            ))
        }
    };
    if raw.client_id.is_empty() || raw.client_id.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err(err(format!("{field}.client_id"), "must be a non-empty printable string"));
    }
    let secret = match (raw.client_secret_env, raw.client_secret) {
        (Some(name), None) if !name.is_empty() && !name.contains('=') => ClientSecret::Env(name),
        (Some(_), None) => return Err(err(format!("{field}.client_secret_env"), "must name an environment variable")),
        (None, Some(s)) if !s.is_empty() => ClientSecret::Inline(s),
        (None, Some(_)) => return Err(err(format!("{field}.client_secret"), "must not be empty")),
        _ => {
            return Err(err(
                field,
                "exactly one of client_secret_env (the name of a variable in vm_config.environment_variables) and \
                 client_secret is required",
            ))
        }
    };
    let auth_method = match raw.auth_method.as_deref() {
        None | Some("client_secret_basic") => AuthMethod::Basic,
        Some("client_secret_post") => AuthMethod::Post,
        Some(_) => {
            return Err(err(format!("{field}.auth_method"), "must be client_secret_basic or client_secret_post"))
        }
    };
    let cache_seconds =
        seconds(&format!("{field}.cache_duration"), raw.cache_duration, DEFAULT_INTROSPECTION_CACHE_SECONDS)?;
    let negative_cache_seconds = seconds(
        &format!("{field}.negative_cache_duration"),
        raw.negative_cache_duration,
        DEFAULT_INTROSPECTION_NEGATIVE_CACHE_SECONDS,
    )?;
    let cache_size = raw.cache_size.unwrap_or(DEFAULT_INTROSPECTION_CACHE_SIZE);
    if cache_size == 0 || cache_size > MAX_INTROSPECTION_CACHE_SIZE {
        return Err(err(
            format!("{field}.cache_size"),
            format!("must be between 1 and {MAX_INTROSPECTION_CACHE_SIZE} (answers are also the single-flight slots)"),
        ));
    }
    let max_in_flight = raw.max_in_flight.unwrap_or(DEFAULT_INTROSPECTION_MAX_IN_FLIGHT);
    if max_in_flight == 0 {
        return Err(err(format!("{field}.max_in_flight"), "must be at least 1"));
    }
    Ok(Introspection {
        authority,
        path,
        discovered,
        uri,
        cluster,
        timeout_ms,
        client_id: raw.client_id,
        secret,
        auth_method,
        cache_seconds,
        negative_cache_seconds,
        cache_size,
        max_in_flight,
    })
}

/// The introspection endpoints a requirement could show one token to: more than one means a
/// token could reach an authorization server that did not issue it, which the configuration
/// refuses. `endpoint(v)` is verifier `v`'s endpoint, if its provider introspects.
pub(super) fn check_one_endpoint<'a>(
    field: &str,
    requirement: &Requirement,
    providers: usize,
    endpoint: impl Fn(usize) -> Option<&'a str>,
) -> Result<(), ConfigError> {
    let mut seen: Option<&str> = None;
    for v in requirement.verifiers(providers) {
        match (seen, endpoint(v)) {
            (Some(a), Some(b)) if a != b => {
                return Err(err(
                    field,
                    format!(
                        "could send one opaque token to two introspection endpoints ({a} and {b}): a token must \
                         never reach an authorization server that may not have issued it; give each its own rule"
                    ),
                ))
            }
            (None, Some(b)) => seen = Some(b),
            _ => {}
        }
    }
    Ok(())
}
