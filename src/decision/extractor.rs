//! Finding the bearer token in a request (RFC 6750 §2): configured headers, query parameters
//! and cookies. A client must use exactly one method, so tokens in two places, repeated
//! Authorization headers and empty bearer values are refused as malformed requests (400).

use crate::deny::Reason;
use crate::policy::{Extraction, HeaderSource};
use crate::token::percent::escape_at;

/// Request headers as the host gives them: lower-case names, raw value bytes (values need not
/// be UTF-8, and must not be able to panic us).
pub type Headers<'a> = [(&'a str, &'a [u8])];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Header(String),
    Param(String),
    Cookie(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub token: String,
    pub location: Location,
    /// Sent as `Authorization: DPoP <token>` (RFC 9449 §7.1), so it needs a proof.
    pub dpop: bool,
}

/// The first value of header `name`.
pub fn header_value<'h>(headers: &Headers<'h>, name: &str) -> Option<&'h [u8]> {
    headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

/// The first value of header `name` as text; `None` when it is absent or not UTF-8.
pub fn header_text<'h>(headers: &Headers<'h>, name: &str) -> Option<&'h str> {
    header_value(headers, name).and_then(|v| std::str::from_utf8(v).ok())
}

/// `find_token`, with the token's characters checked at once (the request path defers that check
/// until it knows the token is not a cached, verified one).
pub fn find_checked_token(ex: &Extraction, path: &str, headers: &Headers<'_>) -> Result<Option<Found>, Reason> {
    let found = find_token(ex, path, headers)?;
    if let Some(f) = &found {
        f.check()?;
    }
    Ok(found)
}

impl Found {
    /// The character check of a header token (RFC 6750 §2.1 b64token), which
    /// `find_token` leaves to the caller: a token already verified (in the cache) is a
    /// JWS, base64url and dots, and passes it by construction, so a cache hit can skip it.
    pub fn check(&self) -> Result<(), Reason> {
        match self.location {
            Location::Header(_) if !is_b64token(&self.token) => Err(Reason::InvalidRequest(
                "the credential header must be the scheme, one space and the token, without other whitespace",
            )),
            _ => Ok(()),
        }
    }
}

/// The one token the extraction finds, `None` if there is none, or a 400 reason. Its characters
/// are not checked yet: see `Found::check`.
pub fn find_token(ex: &Extraction, path: &str, headers: &Headers<'_>) -> Result<Option<Found>, Reason> {
    let mut found: Option<Found> = None;
    let mut keep = |f: Found| -> Result<(), Reason> {
        if found.is_some() {
            return Err(Reason::InvalidRequest("the request carries more than one bearer token; send exactly one"));
        }
        found = Some(f);
        Ok(())
    };
    for source in &ex.headers {
        if let Some(token) = from_header(source, headers)? {
            keep(Found { token, location: Location::Header(source.name.clone()), dpop: false })?;
        }
        if let Some(dpop) = ex.dpop.as_ref().filter(|_| source.is_bearer_authorization()) {
            if let Some(token) = from_header(dpop, headers)? {
                keep(Found { token, location: Location::Header(dpop.name.clone()), dpop: true })?;
            }
        }
    }
    if !ex.params.is_empty() {
        let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
        if query.len() > MAX_CREDENTIAL_FIELD_BYTES {
            return Err(TOO_LARGE);
        }
        for name in &ex.params {
            if let Some(token) = from_query(name, query)? {
                keep(Found { token, location: Location::Param(name.clone()), dpop: false })?;
            }
        }
    }
    if !ex.cookies.is_empty() {
        for name in &ex.cookies {
            if let Some(token) = from_cookies(name, headers)? {
                keep(Found { token, location: Location::Cookie(name.clone()), dpop: false })?;
            }
        }
    }
    Ok(found)
}

const EMPTY: Reason = Reason::InvalidRequest("the bearer token is empty");

/// Credential-bearing headers, cookie headers and query strings larger than this are refused
/// (400) without being scanned. Tokens themselves are bounded by `max_token_size`.
pub const MAX_CREDENTIAL_FIELD_BYTES: usize = 16 * 1024;
/// A credential field over the cap holds a token over any `max_token_size`: the same answer.
const TOO_LARGE: Reason = Reason::TooLarge;

/// RFC 6750 §2.1 b64token, the only characters a bearer credential may hold.
fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    // One table load per byte: every cache miss checks every byte of its token.
    !body.is_empty() && body.bytes().all(|b| B64TOKEN[usize::from(b)])
}

/// `B64TOKEN[b]`: whether byte `b` is a b64token character (`=` only trails, so not here).
const B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

fn from_header(source: &HeaderSource, headers: &Headers<'_>) -> Result<Option<String>, Reason> {
    let mut token: Option<String> = None;
    for (name, raw) in headers {
        if *name != source.name.as_str() {
            continue;
        }
        if raw.len() > MAX_CREDENTIAL_FIELD_BYTES {
            return Err(TOO_LARGE);
        }
        let Ok(value) = std::str::from_utf8(raw) else {
            return Err(Reason::InvalidRequest("a credential header is not valid UTF-8"));
        };
        let candidate = match &source.value_prefix {
            None => Some(value),
            Some(prefix) => strip_prefix_ignore_case(value, prefix).or_else(|| {
                // "Bearer" with nothing usable after it is an empty credential, not another scheme.
                let scheme = prefix.trim_end();
                let head = value.split([' ', '\t']).next().unwrap_or("");
                head.eq_ignore_ascii_case(scheme).then_some("")
            }),
        };
        let Some(candidate) = candidate else { continue };
        if token.is_some() {
            return Err(Reason::InvalidRequest("the request repeats a credential header; send exactly one"));
        }
        if candidate.trim().is_empty() {
            return Err(EMPTY);
        }
        token = Some(candidate.to_string());
    }
    Ok(token)
}

fn strip_prefix_ignore_case<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &value[prefix.len()..])
}

/// Percent-decodes a query component. `+` stays `+`: bearer tokens may contain it and
/// RFC 6750 §2.3 uses RFC 3986 encoding, not form encoding.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(escape_at(bytes, i)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn from_query(name: &str, query: &str) -> Result<Option<String>, Reason> {
    let mut token = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(k).ok_or(Reason::InvalidRequest("the query string has a bad percent-encoding"))?;
        if key != name {
            continue;
        }
        if token.is_some() {
            return Err(Reason::InvalidRequest("the query repeats the token parameter; send exactly one"));
        }
        let value = percent_decode(v).ok_or(Reason::InvalidRequest("the query string has a bad percent-encoding"))?;
        if value.is_empty() {
            return Err(EMPTY);
        }
        token = Some(value);
    }
    Ok(token)
}

fn from_cookies(name: &str, headers: &Headers<'_>) -> Result<Option<String>, Reason> {
    let mut token = None;
    for (hname, raw) in headers {
        if *hname != "cookie" {
            continue;
        }
        if raw.len() > MAX_CREDENTIAL_FIELD_BYTES {
            return Err(TOO_LARGE);
        }
        let Ok(value) = std::str::from_utf8(raw) else {
            return Err(Reason::InvalidRequest("the cookie header is not valid UTF-8"));
        };
        for pair in value.split(';') {
            let pair = pair.trim_matches(' ');
            let Some((k, v)) = pair.split_once('=') else { continue };
            if k != name {
                continue;
            }
            if token.is_some() {
                return Err(Reason::InvalidRequest("the token cookie is repeated; send exactly one"));
            }
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            if v.is_empty() {
                return Err(EMPTY);
            }
            token = Some(v.to_string());
        }
    }
    Ok(token)
}

/// The request path without the query parameter named `name` (for `forward: false`).
pub fn remove_query_param(path: &str, name: &str) -> String {
    let Some((base, query)) = path.split_once('?') else {
        return path.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let k = p.split_once('=').map(|(k, _)| k).unwrap_or(p);
            percent_decode(k).as_deref() != Some(name)
        })
        .collect();
    if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// A `cookie` header value without the cookie named `name`; `None` when nothing is left.
pub fn remove_cookie(value: &str, name: &str) -> Option<String> {
    let kept: Vec<&str> = value
        .split(';')
        .map(|p| p.trim_matches(' '))
        .filter(|p| !p.is_empty() && p.split_once('=').map(|(k, _)| k) != Some(name))
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}
