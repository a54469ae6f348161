//! RFC 6750 §3 responses: the `WWW-Authenticate` challenge and a JSON body, built from a
//! `Reason`. The realm is configured (never the request URI) and no part of the token is ever
//! echoed. A gRPC request gets the same challenge, its gRPC status, and the description as
//! the body, which Envoy sends as `grpc-message` (a gRPC client shows it as the status message;
//! JSON there would be shown raw).

use serde_json::json;

use crate::deny::{ErrorCode, Reason};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u32,
    /// For a gRPC request: the `grpc-status` Envoy sends (the body becomes `grpc-message`).
    pub grpc_status: Option<u32>,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// The authentication scheme a challenge names (RFC 9449 §7.1). `Dpop` carries the proof
/// algorithms accepted, space-separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheme<'a> {
    #[default]
    Bearer,
    Dpop(&'a str),
}

/// How the client speaks: it decides the shape of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Http,
    Grpc,
}

/// The gRPC status for an HTTP status we answer with. Not gRPC's own HTTP-to-gRPC table (used
/// when a proxy only sees an HTTP status), which turns 400 into INTERNAL: a malformed request is
/// the client's, so INVALID_ARGUMENT.
pub fn grpc_status(http_status: u32) -> u32 {
    match http_status {
        400 => 3,  // INVALID_ARGUMENT
        401 => 16, // UNAUTHENTICATED
        403 => 7,  // PERMISSION_DENIED
        404 => 5,  // NOT_FOUND
        503 => 14, // UNAVAILABLE
        _ => 13,   // INTERNAL
    }
}

/// Replaces what a quoted-string may not hold (RFC 6750 §3: %x20-21 / %x23-5B / %x5D-7E).
fn quoted(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            c if (' '..='~').contains(&c) => c,
            _ => ' ',
        })
        .collect()
}

pub fn for_reason(
    reason: &Reason,
    realm: &str,
    audiences: &[String],
    protocol: Protocol,
    scheme: Scheme<'_>,
) -> Response {
    let code = reason.error_code();
    // `Bearer realm="api"` or `DPoP realm="api", algs="ES256 ..."`: what every challenge starts with.
    let head = match scheme {
        Scheme::Bearer => format!("Bearer realm=\"{}\"", quoted(realm)),
        Scheme::Dpop(algs) => format!("DPoP realm=\"{}\", algs=\"{}\"", quoted(realm), quoted(algs)),
    };
    let description = reason.description(audiences);
    // gRPC: Envoy sets content-type application/grpc itself; ours would replace it.
    let mut headers = match protocol {
        Protocol::Http => vec![("content-type".to_string(), "application/json".to_string())],
        Protocol::Grpc => vec![],
    };
    let challenge = match code {
        ErrorCode::MissingToken => Some(head),
        ErrorCode::InvalidRequest | ErrorCode::InvalidToken | ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce => {
            Some(format!("{head}, error=\"{}\", error_description=\"{}\"", code.body_code(), quoted(&description)))
        }
        ErrorCode::InsufficientScope => {
            // `scope` names what to ask for; a claim rule's values are never named.
            let scope = match reason {
                Reason::Scope(s) => format!(", scope=\"{}\"", quoted(s)),
                _ => String::new(),
            };
            Some(format!("{head}, error=\"insufficient_scope\", error_description=\"{}\"{scope}", quoted(&description)))
        }
        ErrorCode::Unavailable => {
            headers.push(("retry-after".to_string(), "1".to_string()));
            None
        }
        ErrorCode::AccessDenied => None,
    };
    if let Some(c) = challenge {
        headers.push(("www-authenticate".to_string(), c));
    }
    let status = reason.status();
    match protocol {
        Protocol::Http => {
            let body = json!({"error": code.body_code(), "error_description": description}).to_string();
            Response { status, grpc_status: None, headers, body }
        }
        Protocol::Grpc => Response { status, grpc_status: Some(grpc_status(status)), headers, body: description },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(r: &Response) -> Option<&str> {
        r.headers.iter().find(|(k, _)| k == "www-authenticate").map(|(_, v)| v.as_str())
    }

    #[test]
    fn missing_token_has_no_error_attribute() {
        let r = for_reason(&Reason::Missing, "api", &[], Protocol::Http, Scheme::Bearer);
        assert_eq!(r.status, 401);
        assert_eq!(challenge(&r), Some("Bearer realm=\"api\""));
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["error"], "missing_token");
    }

    #[test]
    fn invalid_token_challenge_and_body() {
        let aud = vec!["https://api.example.com".to_string()];
        let r = for_reason(&Reason::IdToken, "api", &aud, Protocol::Http, Scheme::Bearer);
        assert_eq!(r.status, 401);
        let c = challenge(&r).unwrap();
        assert!(c.starts_with("Bearer realm=\"api\", error=\"invalid_token\", error_description=\""), "{c}");
        assert!(c.contains("ID token"));
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["error"], "invalid_token");
        assert!(body["error_description"].as_str().unwrap().contains("access tokens only"));
        assert!(r.headers.contains(&("content-type".into(), "application/json".into())));
    }

    #[test]
    fn invalid_request_is_400() {
        let r = for_reason(&Reason::InvalidRequest("x"), "api", &[], Protocol::Http, Scheme::Bearer);
        assert_eq!(r.status, 400);
        assert!(challenge(&r).unwrap().contains("error=\"invalid_request\""));
    }

    #[test]
    fn insufficient_scope_names_the_scope() {
        let r = for_reason(&Reason::Scope("admin:write".into()), "api", &[], Protocol::Http, Scheme::Bearer);
        assert_eq!(r.status, 403);
        assert!(challenge(&r).unwrap().ends_with("scope=\"admin:write\""));
    }

    #[test]
    fn unavailable_has_no_challenge() {
        let r = for_reason(&Reason::KeysUnavailable, "api", &[], Protocol::Http, Scheme::Bearer);
        assert_eq!(r.status, 503);
        assert_eq!(challenge(&r), None);
    }

    #[test]
    fn grpc_gets_its_status_and_the_plain_description() {
        let aud = vec!["https://api.example.com".to_string()];
        for (reason, http, grpc) in [
            (Reason::IdToken, 401, 16),
            (Reason::Missing, 401, 16),
            (Reason::Scope("admin:write".into()), 403, 7),
            (Reason::KeysUnavailable, 503, 14),
            (Reason::InvalidRequest("x"), 400, 3),
        ] {
            let h = for_reason(&reason, "api", &aud, Protocol::Http, Scheme::Bearer);
            let g = for_reason(&reason, "api", &aud, Protocol::Grpc, Scheme::Bearer);
            assert_eq!((g.status, g.grpc_status, h.grpc_status), (http, Some(grpc), None), "{reason:?}");
            assert_eq!(g.body, reason.description(&aud), "grpc-message is the description, not JSON");
            assert_eq!(challenge(&g), challenge(&h), "the same challenge");
            assert!(!g.headers.iter().any(|(k, _)| k == "content-type"), "Envoy's application/grpc stays");
        }
    }

    #[test]
    fn dpop_challenges_name_the_scheme_and_its_algorithms() {
        let r = for_reason(&Reason::DpopReplay, "api", &[], Protocol::Http, Scheme::Dpop("ES256 EdDSA"));
        assert_eq!(r.status, 401);
        let c = challenge(&r).unwrap();
        assert!(
            c.starts_with(
                "DPoP realm=\"api\", algs=\"ES256 EdDSA\", error=\"invalid_dpop_proof\", error_description=\""
            ),
            "{c}"
        );
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["error"], "invalid_dpop_proof");
        let r = for_reason(&Reason::Missing, "api", &[], Protocol::Http, Scheme::Dpop("ES256"));
        assert_eq!(challenge(&r), Some("DPoP realm=\"api\", algs=\"ES256\""));
        let r = for_reason(&Reason::DpopDowngrade, "api", &[], Protocol::Http, Scheme::Dpop("ES256"));
        assert!(challenge(&r).unwrap().contains("error=\"invalid_token\""));
    }

    #[test]
    fn quoted_strings_are_sanitized() {
        assert_eq!(quoted("a\"b\\c\nd"), "a'b/c d");
    }
}
