//! Turning a bearer string into a parsed JWS: shape detection (JWS, JWE, opaque), strict
//! base64url, a JOSE header and a claim set whose registered claims have the types RFC 7519
//! gives them. Nothing here checks signatures or policy.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::deny::Reason;
use crate::token::base64url;

/// What a bearer string looks like before anything is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Jws,
    Jwe,
    Opaque,
    Malformed,
}

pub fn shape(token: &str) -> Shape {
    match token.bytes().filter(|b| *b == b'.').count() {
        2 => Shape::Jws,
        4 => Shape::Jwe,
        0 => Shape::Opaque,
        _ => Shape::Malformed,
    }
}

/// The JOSE header fields we act on, type-checked, plus the whole header for members only
/// some tokens carry (a DPoP proof's `jwk`), so no caller decodes it twice.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub alg: String,
    pub kid: Option<String>,
    pub typ: Option<String>,
    pub crit: Vec<String>,
    pub all: Map<String, Value>,
}

/// The registered claims, type-checked, plus the whole claim set for forwarding and scopes.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub aud: Vec<String>,
    pub exp: Option<u64>,
    pub nbf: Option<u64>,
    pub iat: Option<u64>,
    pub all: Map<String, Value>,
}

impl Claims {
    /// The client the token was issued to: RFC 9068 `client_id`, falling back to OIDC `azp`
    /// (Auth0 and Okta access tokens carry `azp`).
    pub fn client_id(&self) -> Option<&str> {
        self.all.get("client_id").or_else(|| self.all.get("azp")).and_then(Value::as_str)
    }
}

#[derive(Debug, Clone)]
pub struct Jwt<'a> {
    pub header: Header,
    pub claims: Claims,
    /// `base64url(header) "." base64url(payload)`: what the signature covers.
    pub signing_input: &'a str,
    pub payload_b64: &'a str,
    /// Decoded from canonical base64url.
    pub signature: Vec<u8>,
}

/// A JSON object that refuses duplicate member names (RFC 7515 §4: a JOSE header with
/// duplicates must be rejected; for claims, duplicates are a classic parser-differential
/// attack). serde_json alone keeps the last duplicate silently.
struct UniqueObject(Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UniqueObject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueObject, A::Error> {
                let mut map = Map::new();
                while let Some(key) = access.next_key::<String>()? {
                    if map.contains_key(&key) {
                        return Err(de::Error::custom(format!("duplicate member {key:?}")));
                    }
                    let value: Value = access.next_value()?;
                    map.insert(key, value);
                }
                Ok(UniqueObject(map))
            }
        }
        d.deserialize_map(V)
    }
}

/// Headers and claims are flat in practice; anything deeper than this is refused before
/// parsing, so hostile nesting costs nothing (serde_json alone allows 128 levels).
pub const MAX_JSON_DEPTH: usize = 16;

/// The deepest `{`/`[` nesting in a JSON text, ignoring brackets inside strings.
pub fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn decode_object(segment: &str, what: &'static str, dup: &'static str) -> Result<Map<String, Value>, Reason> {
    let bytes = base64url::decode(segment.as_bytes()).map_err(|_| Reason::Malformed(what))?;
    if json_depth(&bytes) > MAX_JSON_DEPTH {
        return Err(Reason::Malformed("the JSON is nested too deeply"));
    }
    match serde_json::from_slice::<UniqueObject>(&bytes) {
        Ok(o) => Ok(o.0),
        Err(e) if e.to_string().contains("duplicate member") => Err(Reason::Malformed(dup)),
        Err(_) => Err(Reason::Malformed(what)),
    }
}

fn string_member(map: &Map<String, Value>, name: &str, what: &'static str) -> Result<Option<String>, Reason> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Reason::Malformed(what)),
    }
}

/// RFC 7519 NumericDate: a non-negative number of seconds. Fractions are truncated; values
/// that do not fit an i64 are refused rather than saturated, so "never expires" cannot be
/// spelled as 1e300.
fn numeric_date(map: &Map<String, Value>, name: &str, what: &'static str) -> Result<Option<u64>, Reason> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                return if u <= i64::MAX as u64 { Ok(Some(u)) } else { Err(Reason::Malformed(what)) };
            }
            match n.as_f64() {
                Some(f) if (0.0..9.2e18).contains(&f) => Ok(Some(f.trunc() as u64)),
                _ => Err(Reason::Malformed(what)),
            }
        }
        Some(_) => Err(Reason::Malformed(what)),
    }
}

/// The whole JOSE header as a JSON object, for the members `Header` does not keep (a DPoP
/// proof's `jwk`), with the same strictness.
pub fn parse_header(segment: &str) -> Result<Header, Reason> {
    let map = decode_object(segment, "the header is not base64url-encoded JSON", "the header repeats a member")?;
    let alg = match map.get("alg") {
        Some(Value::String(a)) => a.clone(),
        _ => return Err(Reason::Malformed("the header has no `alg` string")),
    };
    let kid = string_member(&map, "kid", "the header `kid` is not a string")?;
    let typ = string_member(&map, "typ", "the header `typ` is not a string")?;
    let crit = match map.get("crit") {
        None => Vec::new(),
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut names = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) if !s.is_empty() => names.push(s.clone()),
                    _ => return Err(Reason::Malformed("the header `crit` is not a list of names")),
                }
            }
            names
        }
        Some(_) => return Err(Reason::Malformed("the header `crit` is not a non-empty list")),
    };
    Ok(Header { alg, kid, typ, crit, all: map })
}

pub fn parse_claims(segment: &str) -> Result<Claims, Reason> {
    let all = decode_object(segment, "the payload is not base64url-encoded JSON", "the payload repeats a claim")?;
    let aud = match all.get("aud") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) => out.push(s.clone()),
                    _ => return Err(Reason::Malformed("`aud` is not a string or a list of strings")),
                }
            }
            out
        }
        Some(_) => return Err(Reason::Malformed("`aud` is not a string or a list of strings")),
    };
    string_member(&all, "jti", "`jti` is not a string")?;
    Ok(Claims {
        iss: string_member(&all, "iss", "`iss` is not a string")?,
        sub: string_member(&all, "sub", "`sub` is not a string")?,
        aud,
        exp: numeric_date(&all, "exp", "`exp` is not a NumericDate")?,
        nbf: numeric_date(&all, "nbf", "`nbf` is not a NumericDate")?,
        iat: numeric_date(&all, "iat", "`iat` is not a NumericDate")?,
        all,
    })
}

/// Splits and decodes a compact JWS. The caller has already checked the shape and size.
pub fn parse(token: &str) -> Result<Jwt<'_>, Reason> {
    let mut parts = token.splitn(3, '.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Reason::Malformed("a JWS has three dot-separated parts"));
    };
    if h.is_empty() || p.is_empty() {
        return Err(Reason::Malformed("a JWS part is empty"));
    }
    let header = parse_header(h)?;
    if s.is_empty() {
        // `alg: none` tokens are the usual reason for an empty signature: say so.
        return Err(if header.alg == "none" { Reason::Algorithm } else { Reason::Malformed("a JWS part is empty") });
    }
    let claims = parse_claims(p)?;
    let signature = base64url::decode(s.as_bytes()).map_err(|_| Reason::Malformed("the signature is not base64url"))?;
    let signing_input = &token[..h.len() + 1 + p.len()];
    Ok(Jwt { header, claims, signing_input, payload_b64: p, signature })
}

/// What the logs may say about a token: never the token itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub kid: Option<String>,
    pub iss: Option<String>,
    pub sub: Option<String>,
    /// `client_id`, else `azp`, else the first `aud`: for ID tokens, the client that sent it.
    pub client: Option<String>,
    /// 16 hex digits of a 64-bit FNV-1a hash, to correlate log lines about the same token.
    pub fingerprint: String,
}

pub fn fingerprint(token: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in token.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Best-effort, unverified summary for logs. Values are cut to 128 characters and stripped
/// of control characters so a token cannot forge or flood log lines.
pub fn summarize(token: &str) -> Summary {
    let clean = |s: &str| -> String { s.chars().filter(|c| !c.is_control()).take(128).collect() };
    let mut out = Summary { fingerprint: fingerprint(token), ..Summary::default() };
    let mut parts = token.split('.');
    if let Some(h) = parts.next().and_then(|h| parse_header(h).ok()) {
        out.kid = h.kid.as_deref().map(clean);
    }
    if let Some(c) = parts.next().and_then(|p| parse_claims(p).ok()) {
        out.iss = c.iss.as_deref().map(clean);
        out.sub = c.sub.as_deref().map(clean);
        let client = c.client_id().map(str::to_string).or_else(|| c.aud.first().cloned());
        out.client = client.as_deref().map(clean);
    }
    out
}
