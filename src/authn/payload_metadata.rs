//! A verified payload as Envoy's `header_to_metadata` filter takes it (`type: PROTOBUF_VALUE`,
//! `encode: BASE64`): standard base64 of a serialized `google.protobuf.Value` holding the payload
//! as a struct. A wasm filter cannot write dynamic metadata itself (envoyproxy/envoy#15148), so
//! this header is how Envoy RBAC and Istio's generated policies see what jwt_authn would have
//! written with `payload_in_metadata`.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::token::protobuf;

/// The header value for `claims`, with the `space_delimited` top-level string claims turned
/// into lists of words, as jwt_authn's `normalize_payload_in_metadata` does.
pub fn payload_metadata(claims: &Map<String, Value>, space_delimited: &[String]) -> String {
    let mut normalized = claims.clone();
    for name in space_delimited {
        if let Some(Value::String(s)) = normalized.get(name) {
            let words = s.split(' ').filter(|w| !w.is_empty()).map(|w| Value::String(w.to_string())).collect();
            normalized.insert(name.clone(), Value::Array(words));
        }
    }
    let mut out = Vec::with_capacity(claims.len() * 32);
    protobuf::value(&mut out, &Value::Object(normalized));
    base64::engine::general_purpose::STANDARD.encode(out)
}
