//! What kind of request this is, where it changes what jwt-guard does: a CORS preflight passes
//! untouched (`bypass_cors_preflight`), and a gRPC request is answered in gRPC's terms.

use crate::deny::Protocol;

use super::extractor::{header_value as header, Headers};

/// A CORS preflight as the Fetch standard sends it: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`, and never credentials. Any other `OPTIONS` is an ordinary
/// request.
pub fn is_cors_preflight(method: &str, headers: &Headers<'_>) -> bool {
    method == "OPTIONS"
        && header(headers, "origin").is_some()
        && header(headers, "access-control-request-method").is_some()
}

/// gRPC as Envoy tells it (`application/grpc`, `application/grpc+proto`, `application/grpc;…`).
pub fn protocol(headers: &Headers<'_>) -> Protocol {
    match header(headers, "content-type") {
        Some(ct)
            if ct == b"application/grpc"
                || ct.starts_with(b"application/grpc+")
                || ct.starts_with(b"application/grpc;") =>
        {
            Protocol::Grpc
        }
        _ => Protocol::Http,
    }
}
