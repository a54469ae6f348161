//! The configuration as it arrives: JSON with jwt_authn's field names, deserialized strictly
//! (unknown fields are errors). `compile` turns it into the types the request path reads.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) providers: BTreeMap<String, Value>,
    #[serde(default)]
    pub(super) realm: Option<String>,
    #[serde(default)]
    pub(super) rules: Option<Vec<Value>>,
    #[serde(default)]
    pub(super) bypass_cors_preflight: Option<bool>,
    #[serde(default)]
    pub(super) filter_state: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    #[serde(default)]
    pub(super) issuer: Option<String>,
    #[serde(default)]
    pub(super) issuers: Option<Vec<String>>,
    #[serde(default)]
    pub(super) tenants: Option<Vec<String>>,
    #[serde(default)]
    pub(super) audiences: Vec<String>,
    #[serde(default)]
    pub(super) allow_any_audience: bool,
    #[serde(default)]
    pub(super) remote_jwks: Option<RawRemoteJwks>,
    #[serde(default)]
    pub(super) local_jwks: Option<RawDataSource>,
    #[serde(default)]
    pub(super) discovery: Option<RawRemoteJwks>,
    #[serde(default)]
    pub(super) from_headers: Option<Vec<RawHeader>>,
    #[serde(default)]
    pub(super) from_params: Vec<String>,
    #[serde(default)]
    pub(super) from_cookies: Vec<String>,
    #[serde(default)]
    pub(super) forward: bool,
    #[serde(default)]
    pub(super) forward_payload_header: Option<String>,
    #[serde(default)]
    pub(super) claim_to_headers: Vec<RawClaimToHeader>,
    #[serde(default)]
    pub(super) clock_skew_seconds: Option<u64>,
    #[serde(default)]
    pub(super) max_lifetime: Option<String>,
    #[serde(default)]
    pub(super) require_expiration: Option<bool>,
    #[serde(default)]
    pub(super) algorithms: Option<Vec<String>>,
    #[serde(default)]
    pub(super) id_token_audiences: Vec<String>,
    #[serde(default)]
    pub(super) id_token_claims: Option<Vec<String>>,
    #[serde(default)]
    pub(super) require_typ: Option<String>,
    #[serde(default)]
    pub(super) allowed_client_ids: Vec<String>,
    #[serde(default)]
    pub(super) jwt_cache_config: Option<RawJwtCacheConfig>,
    #[serde(default)]
    pub(super) max_token_size: Option<usize>,
    #[serde(default)]
    pub(super) dpop: Option<RawDpop>,
    #[serde(default)]
    pub(super) payload_in_metadata: Option<String>,
    #[serde(default)]
    pub(super) normalize_payload_in_metadata: Option<RawNormalizePayload>,
    #[serde(default)]
    pub(super) introspection: Option<RawIntrospection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIntrospection {
    #[serde(default)]
    pub(super) http_uri: Option<RawHttpUri>,
    pub(super) client_id: String,
    #[serde(default)]
    pub(super) client_secret_env: Option<String>,
    #[serde(default)]
    pub(super) client_secret: Option<String>,
    #[serde(default)]
    pub(super) auth_method: Option<String>,
    #[serde(default)]
    pub(super) cache_duration: Option<String>,
    #[serde(default)]
    pub(super) negative_cache_duration: Option<String>,
    #[serde(default)]
    pub(super) cache_size: Option<usize>,
    #[serde(default)]
    pub(super) max_in_flight: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNormalizePayload {
    #[serde(default)]
    pub(super) space_delimited_claims: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDpop {
    #[serde(default)]
    pub(super) mode: Option<String>,
    #[serde(default)]
    pub(super) algorithms: Option<Vec<String>>,
    #[serde(default)]
    pub(super) max_proof_age: Option<String>,
    #[serde(default)]
    pub(super) external_origin: Option<String>,
    #[serde(default)]
    pub(super) replay_cache_size: Option<usize>,
    #[serde(default)]
    pub(super) require_nonce: bool,
    #[serde(default)]
    pub(super) nonce_lifetime: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemoteJwks {
    pub(super) http_uri: RawHttpUri,
    #[serde(default)]
    pub(super) cache_duration: Option<String>,
    #[serde(default)]
    pub(super) stale_if_error: Option<String>,
    #[serde(default)]
    pub(super) unknown_kid_refetch_interval: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttpUri {
    pub(super) uri: String,
    #[serde(default)]
    pub(super) cluster: Option<String>,
    #[serde(default)]
    pub(super) timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDataSource {
    pub(super) inline_string: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeader {
    pub(super) name: String,
    #[serde(default)]
    pub(super) value_prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClaimToHeader {
    pub(super) header_name: String,
    pub(super) claim_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJwtCacheConfig {
    #[serde(default)]
    pub(super) jwt_cache_size: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    #[serde(rename = "match")]
    pub(super) matcher: RawMatch,
    #[serde(default)]
    pub(super) action: Option<String>,
    #[serde(default)]
    pub(super) requires: Option<Value>,
    #[serde(default)]
    pub(super) scopes: Vec<String>,
    /// Each entry is read on its own, so an error names `claims[i]`.
    #[serde(default)]
    pub(super) claims: Vec<Value>,
    #[serde(default)]
    pub(super) principals: Vec<String>,
    #[serde(default)]
    pub(super) not_principals: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClaimRule {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) path: Option<Vec<String>>,
    #[serde(default)]
    pub(super) values: Option<Vec<String>>,
    #[serde(default)]
    pub(super) not_values: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMatch {
    #[serde(default)]
    pub(super) prefix: Option<String>,
    #[serde(default)]
    pub(super) path: Option<String>,
    #[serde(default)]
    pub(super) path_separated_prefix: Option<String>,
    #[serde(default)]
    pub(super) suffix: Option<String>,
    #[serde(default)]
    pub(super) methods: Vec<String>,
    /// Each entry is read on its own, so an error names `headers[i]`.
    #[serde(default)]
    pub(super) headers: Vec<Value>,
    #[serde(default)]
    pub(super) hosts: Vec<String>,
    #[serde(default)]
    pub(super) not_hosts: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeaderMatcher {
    pub(super) name: String,
    #[serde(default)]
    pub(super) exact_match: Option<String>,
    #[serde(default)]
    pub(super) prefix_match: Option<String>,
    #[serde(default)]
    pub(super) suffix_match: Option<String>,
    #[serde(default)]
    pub(super) contains_match: Option<String>,
    #[serde(default)]
    pub(super) present_match: Option<bool>,
    #[serde(default)]
    pub(super) invert_match: bool,
}
