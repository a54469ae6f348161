//! jwt_authn's `HttpUri` (the address of a JWKS, a discovery document or an introspection
//! endpoint), checked once for all three.

use super::compile::is_quoted_string_safe;
use super::config::{err, split_http_url, ConfigError, DEFAULT_TIMEOUT_MS};
use super::duration::parse_millis;
use super::wire::RawHttpUri;

/// An `http_uri` (jwt_authn's `HttpUri`) checked: the URL, its authority and path for the
/// dispatch call, the cluster that reaches it (`what` says for the error), the timeout.
pub(super) struct HttpUri {
    pub(super) uri: String,
    pub(super) authority: String,
    pub(super) path: String,
    pub(super) cluster: String,
    pub(super) timeout_ms: u64,
}

pub(super) fn compile_http_uri(field: &str, raw: RawHttpUri, what: &str) -> Result<HttpUri, ConfigError> {
    let uri = raw.uri;
    let cluster = match raw.cluster {
        Some(c) if !c.is_empty() => c,
        _ => {
            return Err(err(format!("{field}.cluster"), format!("is required: the Envoy cluster that reaches {what}")))
        }
    };
    let (authority, path) =
        split_http_url(&uri).ok_or_else(|| err(format!("{field}.uri"), "must be an http:// or https:// URL"))?;
    if authority.is_empty() || authority.contains('@') || !is_quoted_string_safe(path) || path.contains(' ') {
        return Err(err(format!("{field}.uri"), "must be an absolute URL with a host"));
    }
    let timeout_ms = match raw.timeout {
        None => DEFAULT_TIMEOUT_MS,
        Some(t) => parse_millis(&t).map_err(|m| err(format!("{field}.timeout"), m))?,
    };
    if timeout_ms == 0 {
        return Err(err(format!("{field}.timeout"), "must be greater than zero"));
    }
    Ok(HttpUri { authority: authority.to_string(), path: path.to_string(), uri, cluster, timeout_ms })
}
