//! One RFC 7662 call: the request jwt-guard sends (form body, client authentication, headers)
//! and what it makes of the answer. Pure: the runtime dispatches and reads through the host.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::policy::{AuthMethod, Introspection};

/// Every call the filter makes says who it is, so an IdP's logs and rate limits can tell it.
pub const USER_AGENT: &str = concat!("jwt-guard/", env!("CARGO_PKG_VERSION"));

/// An answer larger than this is not read: introspection answers are a few hundred bytes.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What to send: the headers (pseudo-headers included) and the form body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRequest {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// `application/x-www-form-urlencoded` encoding (the WHATWG URL standard's byte set): what
/// RFC 7662 §2.1 sends and RFC 6749 §2.3.1 applies to the Basic credentials too.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The request for `token` to the endpoint's `path` (the configured one, or the one discovery
/// found); `None` while the client secret is unknown (an unresolved `client_secret_env`), which
/// the caller answers with 503.
pub fn request(intro: &Introspection, path: &str, token: &str) -> Option<CallRequest> {
    let secret = intro.secret.value()?;
    let mut body = format!("token={}&token_type_hint=access_token", form_encode(token));
    let mut headers = vec![
        (":method".to_string(), "POST".to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), intro.authority.clone()),
        ("content-type".to_string(), "application/x-www-form-urlencoded".to_string()),
        ("accept".to_string(), "application/json".to_string()),
        ("user-agent".to_string(), USER_AGENT.to_string()),
    ];
    match intro.auth_method {
        AuthMethod::Basic => {
            let credentials = format!("{}:{}", form_encode(&intro.client_id), form_encode(secret));
            let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
            headers.push(("authorization".to_string(), format!("Basic {encoded}")));
        }
        AuthMethod::Post => {
            body.push_str(&format!(
                "&client_id={}&client_secret={}",
                form_encode(&intro.client_id),
                form_encode(secret)
            ));
        }
    }
    Some(CallRequest { headers, body: body.into_bytes() })
}

/// What an answer means for the token.
#[derive(Debug, Clone, PartialEq)]
pub enum CallResult {
    /// 200 with a JSON object: the endpoint's verdict (`active` is checked with the rest).
    Answer(Map<String, Value>),
    /// 200, but not a JSON object: the token cannot be accepted on it (401).
    Unreadable,
    /// No usable answer (unreachable, timeout, 5xx, another status, too large): 503.
    Failed(String),
}

/// Reads an answer: `status` and `body`, or why there is none.
pub fn read_result(answer: Result<(u32, Vec<u8>), String>) -> CallResult {
    let (status, body) = match answer {
        Ok(a) => a,
        Err(why) => return CallResult::Failed(why),
    };
    if status != 200 {
        // 401/403: jwt-guard's own credentials were refused, a configuration error; 5xx: the
        // server is failing. Neither says anything about the token.
        return CallResult::Failed(format!("status {status}"));
    }
    if body.len() > MAX_ANSWER_BYTES {
        return CallResult::Failed(format!("an answer of {} bytes", body.len()));
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => CallResult::Answer(map),
        _ => CallResult::Unreadable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::provider_with;
    use serde_json::json;

    fn intro(patch: Value) -> Introspection {
        let mut base = json!({"http_uri": {"uri": "https://idp.example/oauth/introspect", "cluster": "idp"},
            "client_id": "api one", "client_secret": "s3:cr&t"});
        if let (Value::Object(b), Value::Object(p)) = (&mut base, patch) {
            b.extend(p);
        }
        provider_with(json!({"introspection": base})).introspection.unwrap()
    }

    fn header<'a>(r: &'a CallRequest, name: &str) -> Option<&'a str> {
        r.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn basic_authentication_form_encodes_id_and_secret_and_sends_the_hint() {
        let i = intro(json!({}));
        let r = request(&i, &i.path, "ab+c/d=").unwrap();
        assert_eq!(String::from_utf8(r.body.clone()).unwrap(), "token=ab%2Bc%2Fd%3D&token_type_hint=access_token");
        let basic = base64::engine::general_purpose::STANDARD.encode("api+one:s3%3Acr%26t");
        assert_eq!(header(&r, "authorization"), Some(format!("Basic {basic}").as_str()));
        assert_eq!(header(&r, ":method"), Some("POST"));
        assert_eq!(header(&r, ":path"), Some("/oauth/introspect"));
        assert_eq!(header(&r, ":authority"), Some("idp.example"));
        assert_eq!(header(&r, "content-type"), Some("application/x-www-form-urlencoded"));
        assert!(header(&r, "user-agent").unwrap().starts_with("jwt-guard/"));
    }

    #[test]
    fn post_authentication_puts_the_credentials_in_the_body_only() {
        let i = intro(json!({"auth_method": "client_secret_post"}));
        let r = request(&i, &i.path, "t").unwrap();
        assert_eq!(
            String::from_utf8(r.body.clone()).unwrap(),
            "token=t&token_type_hint=access_token&client_id=api+one&client_secret=s3%3Acr%26t"
        );
        assert_eq!(header(&r, "authorization"), None);
    }

    #[test]
    fn no_request_without_a_secret() {
        let i = intro(json!({"client_secret": null, "client_secret_env": "SECRET"}));
        assert!(request(&i, &i.path, "t").is_none(), "an unresolved client_secret_env sends nothing");
    }

    #[test]
    fn answers_are_read_strictly() {
        assert_eq!(
            read_result(Ok((200, br#"{"active":false}"#.to_vec()))),
            CallResult::Answer(json!({"active": false}).as_object().unwrap().clone())
        );
        assert_eq!(read_result(Ok((200, b"[]".to_vec()))), CallResult::Unreadable);
        assert_eq!(read_result(Ok((200, b"<html>".to_vec()))), CallResult::Unreadable);
        assert!(matches!(read_result(Ok((503, b"{}".to_vec()))), CallResult::Failed(_)));
        assert!(matches!(read_result(Ok((401, b"{}".to_vec()))), CallResult::Failed(_)));
        assert!(matches!(read_result(Err("reset".into())), CallResult::Failed(_)));
        let big = format!("{{\"active\":true,\"x\":\"{}\"}}", "a".repeat(MAX_ANSWER_BYTES));
        assert!(matches!(read_result(Ok((200, big.into_bytes()))), CallResult::Failed(_)));
    }
}
