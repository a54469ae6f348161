//! From the wire form to the compiled configuration, validating every field and naming it
//! (as a dotted path) in the error.

use jsonwebtoken::Algorithm;

use super::config::*;
use super::duration::parse_millis;
use super::http_uri::{compile_http_uri, HttpUri};
use super::introspection::{check_one_endpoint, compile_introspection};
use super::issuer::compile_issuers;
use super::rules::{compile_rule, Variants};
use super::wire::*;
use crate::jwks::KeySet;
use crate::token::vocabulary::{normalize_typ, parse_algorithm, JoseAlg};

impl Config {
    pub fn provider_index(&self, name: &str) -> Option<usize> {
        self.providers.iter().position(|p| p.name == name)
    }

    pub fn parse(text: &[u8]) -> Result<Config, ConfigError> {
        let raw: RawConfig = serde_json::from_slice(text).map_err(|e| err("", e.to_string()))?;
        if raw.providers.is_empty() {
            return Err(err("providers", "at least one provider is required"));
        }
        let mut providers = Vec::with_capacity(raw.providers.len());
        for (name, value) in raw.providers {
            let field = format!("providers.{name}");
            if name.is_empty() {
                return Err(err("providers", "provider names must not be empty"));
            }
            let rp: RawProvider = serde_json::from_value(value).map_err(|e| err(&field, e.to_string()))?;
            providers.push(compile_provider(&field, name, rp)?);
        }
        let realm = raw.realm.unwrap_or_else(|| DEFAULT_REALM.to_string());
        if realm.is_empty() || !is_quoted_string_safe(&realm) {
            return Err(err("realm", "must be non-empty printable ASCII without quotes or backslashes"));
        }
        let names: Vec<String> = providers.iter().map(|p| p.name.clone()).collect();
        let mut variants = Variants { names: &names, list: Vec::new() };
        let rules = match raw.rules {
            None => None,
            Some(values) => {
                let mut rules = Vec::with_capacity(values.len());
                for (i, value) in values.into_iter().enumerate() {
                    let field = format!("rules[{i}]");
                    let rr: RawRule = serde_json::from_value(value).map_err(|e| err(&field, e.to_string()))?;
                    rules.push(compile_rule(&field, rr, &mut variants)?);
                }
                Some(rules)
            }
        };
        let audience_variants = variants.list;
        let claims_read = rules.as_ref().is_some_and(|r| r.iter().any(|r| !r.claims.is_empty()));
        for p in &mut providers {
            p.keep_claims = claims_read;
        }
        let mut protected_headers: Vec<String> = vec![PAYLOAD_HEADER.to_string()];
        for p in &providers {
            let names = p.claim_to_headers.iter().map(|c| c.header_name.clone());
            for h in names.chain(p.forward_payload_header.clone()) {
                if !protected_headers.contains(&h) {
                    protected_headers.push(h);
                }
            }
        }
        let bypass_cors_preflight = raw.bypass_cors_preflight.unwrap_or(true);
        let config = Config {
            providers,
            realm,
            rules,
            protected_headers,
            bypass_cors_preflight,
            audience_variants,
            filter_state: raw.filter_state,
        };
        config.check_introspection_endpoints()?;
        Ok(config)
    }

    /// No requirement may show one opaque token to two introspection endpoints.
    fn check_introspection_endpoints(&self) -> Result<(), ConfigError> {
        let n = self.providers.len();
        let endpoint =
            |v: usize| self.providers.get(self.verifier(v).0)?.introspection.as_ref().map(|i| i.uri.as_str());
        match &self.rules {
            None => check_one_endpoint("providers", &Requirement::AllowMissing, n, endpoint),
            Some(rules) => rules.iter().enumerate().try_for_each(|(i, r)| match &r.requires {
                Some(req) => check_one_endpoint(&format!("rules[{i}].requires"), req, n, endpoint),
                None => Ok(()),
            }),
        }
    }
}

/// The one rule for every audience a configuration names (a provider's, a rule's
/// `provider_and_audiences`): printable, and compared exactly, so no pattern characters.
pub(super) fn check_audience(field: &str, a: &str, hint: &str) -> Result<(), ConfigError> {
    if a.is_empty() || !is_quoted_string_safe(a) {
        return Err(err(field, "audiences must be non-empty printable ASCII"));
    }
    if a.contains(['*', '{', '}']) {
        return Err(err(field, format!("is compared exactly, so `*`, `{{` and `}}` would never match: {hint}")));
    }
    Ok(())
}

/// RFC 6750 §3: attribute values are quoted-strings limited to %x20-21 / %x23-5B / %x5D-7E.
pub fn is_quoted_string_safe(s: &str) -> bool {
    s.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
}

fn is_header_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn compile_provider(field: &str, name: String, rp: RawProvider) -> Result<Provider, ConfigError> {
    let issuers = compile_issuers(field, rp.issuer, rp.issuers, rp.tenants)?;
    match (rp.audiences.is_empty(), rp.allow_any_audience) {
        (true, false) => {
            return Err(err(
                format!("{field}.audiences"),
                "must list at least one audience (the API identifier), or set allow_any_audience: true for an \
                 issuer whose access tokens carry none",
            ))
        }
        (false, true) => {
            return Err(err(format!("{field}.allow_any_audience"), "takes no `audiences`: list them, or allow any"))
        }
        _ => {}
    }
    for (i, a) in rp.audiences.iter().enumerate() {
        check_audience(
            &format!("{field}.audiences[{i}]"),
            a,
            "list each audience, or set allow_any_audience: true (with no audiences) for tokens that name none",
        )?;
    }
    let algorithms = match &rp.algorithms {
        None => DEFAULT_ALGORITHMS.to_vec(),
        Some(list) => algorithm_list(&format!("{field}.algorithms"), list)?,
    };
    let uses_hmac = algorithms.iter().copied().any(is_hmac);
    let keys = match (rp.remote_jwks, rp.local_jwks, rp.discovery) {
        (Some(remote), None, None) => {
            if uses_hmac {
                return Err(err(
                    format!("{field}.algorithms"),
                    "HS256/HS384/HS512 need a shared secret: use local_jwks with an `oct` key, never remote_jwks",
                ));
            }
            KeySource::Remote(compile_remote(&format!("{field}.remote_jwks"), remote, false)?)
        }
        (None, None, Some(discovery)) => {
            if uses_hmac {
                return Err(err(
                    format!("{field}.algorithms"),
                    "HS256/HS384/HS512 need a shared secret: use local_jwks with an `oct` key, never discovery",
                ));
            }
            KeySource::Remote(compile_remote(&format!("{field}.discovery"), discovery, true)?)
        }
        (None, Some(local), None) => {
            let f = format!("{field}.local_jwks.inline_string");
            let set = KeySet::parse(local.inline_string.as_bytes()).map_err(|e| err(&f, e.to_string()))?;
            if set.is_empty() {
                return Err(err(&f, "contains no usable key"));
            }
            if uses_hmac && !set.has_symmetric_key() {
                return Err(err(&f, "HS* algorithms are listed but the JWKS has no `oct` key"));
            }
            KeySource::Local(set)
        }
        _ => return Err(err(field, "exactly one of remote_jwks, local_jwks and discovery is required")),
    };
    let headers = match rp.from_headers {
        None => vec![HeaderSource { name: "authorization".into(), value_prefix: Some("Bearer ".into()) }],
        Some(list) => {
            let mut out = Vec::with_capacity(list.len());
            for (i, h) in list.into_iter().enumerate() {
                let lname = h.name.to_ascii_lowercase();
                if !is_header_name(&lname) || lname.starts_with(':') {
                    return Err(err(format!("{field}.from_headers[{i}].name"), "must be an HTTP header name"));
                }
                out.push(HeaderSource { name: lname, value_prefix: h.value_prefix.filter(|p| !p.is_empty()) });
            }
            out
        }
    };
    for (i, p) in rp.from_params.iter().enumerate() {
        if p.is_empty() {
            return Err(err(format!("{field}.from_params[{i}]"), "must not be empty"));
        }
    }
    for (i, c) in rp.from_cookies.iter().enumerate() {
        if c.is_empty() || c.contains(['=', ';', ' ']) {
            return Err(err(format!("{field}.from_cookies[{i}]"), "must be a cookie name"));
        }
    }
    if headers.is_empty() && rp.from_params.is_empty() && rp.from_cookies.is_empty() {
        return Err(err(
            field,
            "from_headers is empty and no from_params or from_cookies are set: no token could ever be found",
        ));
    }
    let forward_payload_header = match rp.forward_payload_header {
        None => None,
        Some(h) => {
            let l = h.to_ascii_lowercase();
            if !is_header_name(&l) {
                return Err(err(format!("{field}.forward_payload_header"), "must be an HTTP header name"));
            }
            Some(l)
        }
    };
    let mut claim_to_headers = Vec::with_capacity(rp.claim_to_headers.len());
    for (i, c) in rp.claim_to_headers.into_iter().enumerate() {
        let l = c.header_name.to_ascii_lowercase();
        if !is_header_name(&l) {
            return Err(err(format!("{field}.claim_to_headers[{i}].header_name"), "must be an HTTP header name"));
        }
        if headers.iter().any(|h| h.name == l) || l == "authorization" {
            return Err(err(
                format!("{field}.claim_to_headers[{i}].header_name"),
                "must not be a header a token is read from",
            ));
        }
        let claim_path: Vec<String> = c.claim_name.split('.').map(str::to_string).collect();
        if claim_path.iter().any(String::is_empty) {
            return Err(err(
                format!("{field}.claim_to_headers[{i}].claim_name"),
                "must be a claim name, dotted for nested claims",
            ));
        }
        claim_to_headers.push(ClaimToHeader { header_name: l, claim_path });
    }
    let max_lifetime_seconds = match rp.max_lifetime {
        None => None,
        Some(text) => {
            let ms = parse_millis(&text).map_err(|m| err(format!("{field}.max_lifetime"), m))?;
            if ms == 0 {
                return Err(err(format!("{field}.max_lifetime"), "must be greater than zero"));
            }
            Some(ms.div_ceil(1000))
        }
    };
    let require_typ = match rp.require_typ {
        None => None,
        Some(t) if t.is_empty() => return Err(err(format!("{field}.require_typ"), "must not be empty")),
        Some(t) => Some(normalize_typ(&t)),
    };
    let jwt_cache_size = rp.jwt_cache_config.and_then(|c| c.jwt_cache_size).unwrap_or(DEFAULT_JWT_CACHE_SIZE);
    let max_token_size = rp.max_token_size.unwrap_or(DEFAULT_MAX_TOKEN_SIZE);
    if max_token_size < 16 {
        return Err(err(format!("{field}.max_token_size"), "must be at least 16 bytes"));
    }
    let dpop = match rp.dpop {
        None => Dpop::default(),
        Some(raw) => compile_dpop(&format!("{field}.dpop"), raw)?,
    };
    let dpop_source = (dpop.mode != DpopMode::Disabled && headers.iter().any(HeaderSource::is_bearer_authorization))
        .then(HeaderSource::dpop_authorization);
    if dpop.mode == DpopMode::Required && dpop_source.is_none() {
        return Err(err(
            format!("{field}.dpop.mode"),
            "`required` needs the Authorization header with the `Bearer ` prefix among from_headers",
        ));
    }
    let payload_in_metadata = match rp.payload_in_metadata {
        None => None,
        Some(k) if k.is_empty() || !is_quoted_string_safe(&k) => {
            return Err(err(format!("{field}.payload_in_metadata"), "must be a non-empty printable ASCII key"))
        }
        Some(k) => Some(k),
    };
    let introspection = match rp.introspection {
        None => None,
        Some(raw) => {
            let discovery = match &keys {
                KeySource::Remote(r) if r.discovery => Some(r),
                _ => None,
            };
            Some(compile_introspection(&format!("{field}.introspection"), raw, discovery)?)
        }
    };
    let space_delimited_claims = rp.normalize_payload_in_metadata.map(|n| n.space_delimited_claims).unwrap_or_default();
    if let Some(i) = space_delimited_claims.iter().position(|c| c.is_empty()) {
        return Err(err(
            format!("{field}.normalize_payload_in_metadata.space_delimited_claims[{i}]"),
            "must be a claim name",
        ));
    }
    Ok(Provider {
        name,
        issuers: Some(issuers),
        audiences: rp.audiences,
        allow_any_audience: rp.allow_any_audience,
        keys,
        extraction: Extraction { headers, params: rp.from_params, cookies: rp.from_cookies, dpop: dpop_source },
        forward: rp.forward,
        forward_payload_header,
        claim_to_headers,
        clock_skew_seconds: rp.clock_skew_seconds.unwrap_or(DEFAULT_CLOCK_SKEW_SECONDS),
        max_lifetime_seconds,
        require_expiration: rp.require_expiration.unwrap_or(true),
        algorithms,
        id_token_audiences: rp.id_token_audiences,
        id_token_claims: rp
            .id_token_claims
            .unwrap_or_else(|| DEFAULT_ID_TOKEN_CLAIMS.iter().map(|s| s.to_string()).collect()),
        require_typ,
        allowed_client_ids: rp.allowed_client_ids,
        jwt_cache_size,
        max_token_size,
        dpop,
        payload_in_metadata,
        space_delimited_claims,
        keep_claims: false,
        introspection,
    })
}

/// A non-empty list of algorithm names jwt-guard knows; `field` names it in errors.
fn algorithm_list(field: &str, list: &[String]) -> Result<Vec<JoseAlg>, ConfigError> {
    if list.is_empty() {
        return Err(err(field, "must not be empty"));
    }
    list.iter().map(|name| parse_algorithm(name).map_err(|m| err(field, m))).collect()
}

fn is_hmac(alg: JoseAlg) -> bool {
    matches!(alg.algorithm(), Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

fn compile_dpop(field: &str, raw: RawDpop) -> Result<Dpop, ConfigError> {
    let mut d = Dpop::default();
    if let Some(mode) = raw.mode {
        d.mode = match mode.as_str() {
            "allowed" => DpopMode::Allowed,
            "required" => DpopMode::Required,
            "disabled" => DpopMode::Disabled,
            _ => return Err(err(format!("{field}.mode"), "must be `allowed`, `required` or `disabled`")),
        };
    }
    if let Some(list) = raw.algorithms {
        let algs = algorithm_list(&format!("{field}.algorithms"), &list)?;
        if algs.iter().copied().any(is_hmac) {
            return Err(err(
                format!("{field}.algorithms"),
                "a DPoP proof is signed with a private key: HS* is never allowed",
            ));
        }
        d.algorithms = algs;
    }
    if let Some(text) = raw.max_proof_age {
        let ms = parse_millis(&text).map_err(|m| err(format!("{field}.max_proof_age"), m))?;
        if ms < 1000 {
            return Err(err(format!("{field}.max_proof_age"), "must be at least 1s"));
        }
        d.max_proof_age_seconds = ms / 1000;
    }
    if let Some(origin) = raw.external_origin {
        d.external_origin = Some(normalize_origin(&origin).ok_or_else(|| {
            err(
                format!("{field}.external_origin"),
                "must be `https://host[:port]` or `http://host[:port]`, without a path",
            )
        })?);
    }
    if let Some(n) = raw.replay_cache_size {
        if n == 0 {
            return Err(err(format!("{field}.replay_cache_size"), "must be at least 1: replays are always refused"));
        }
        d.replay_cache_size = n;
    }
    d.require_nonce = raw.require_nonce;
    if let Some(text) = raw.nonce_lifetime {
        let ms = parse_millis(&text).map_err(|m| err(format!("{field}.nonce_lifetime"), m))?;
        if ms < 2000 {
            return Err(err(
                format!("{field}.nonce_lifetime"),
                "must be at least 2s (a nonce lives half to all of it)",
            ));
        }
        d.nonce_lifetime_seconds = ms / 1000;
    }
    Ok(d)
}

fn compile_remote(field: &str, raw: RawRemoteJwks, discovery: bool) -> Result<RemoteJwks, ConfigError> {
    let HttpUri { uri, authority, path, cluster, timeout_ms } =
        compile_http_uri(&format!("{field}.http_uri"), raw.http_uri, "the JWKS host")?;
    let cache_duration_ms = match raw.cache_duration {
        None => DEFAULT_CACHE_DURATION_MS,
        Some(t) => parse_millis(&t).map_err(|m| err(format!("{field}.cache_duration"), m))?,
    };
    if cache_duration_ms < 1000 {
        return Err(err(format!("{field}.cache_duration"), "must be at least 1s"));
    }
    let stale_if_error_ms = match raw.stale_if_error {
        None => DEFAULT_STALE_IF_ERROR_MS,
        Some(t) => parse_millis(&t).map_err(|m| err(format!("{field}.stale_if_error"), m))?,
    };
    let unknown_kid_refetch_interval_ms = match raw.unknown_kid_refetch_interval {
        None => DEFAULT_UNKNOWN_KID_REFETCH_INTERVAL_MS,
        Some(t) => parse_millis(&t).map_err(|m| err(format!("{field}.unknown_kid_refetch_interval"), m))?,
    };
    if unknown_kid_refetch_interval_ms < 1000 {
        return Err(err(
            format!("{field}.unknown_kid_refetch_interval"),
            "must be at least 1s: refetches are rate-limited",
        ));
    }
    Ok(RemoteJwks {
        authority,
        path,
        uri,
        discovery,
        cluster,
        timeout_ms,
        cache_duration_ms,
        stale_if_error_ms,
        unknown_kid_refetch_interval_ms,
    })
}
