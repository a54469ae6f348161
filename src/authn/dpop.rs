//! RFC 9449 DPoP proofs, checked as §4.3 lists: one `DPoP` header holding a JWS whose `typ` is
//! `dpop+jwt`, signed with an asymmetric `alg` we allow by the public `jwk` in its own header
//! (no private members), for this request's method (`htm`) and URL (`htu`), fresh (`iat`),
//! unique (`jti`, which the caller remembers) and for this access token (`ath`). The key's
//! RFC 7638 thumbprint is what the token's `cnf.jkt` must name.
//!
//! With `require_nonce`, a proof must carry a nonce this Envoy issued (`dpop_nonce`, §8-9), so
//! a proof is good at one Envoy only; within it the proof memory (`decision::proof_memory`)
//! accepts it once.

use std::fmt::Write as _;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::client_keys::ClientKeys;
use super::dpop_nonce::{self as nonce, NonceCheck, NonceSecret};
use crate::crypto;
use crate::deny::Reason;
use crate::jwks::{jwk_thumbprint, Family, KeySet};
use crate::policy::{normalize_authority, Dpop};
use crate::token::base64url;
use crate::token::percent::escape_at;
use crate::token::vocabulary::{normalize_typ, parse_algorithm};
use crate::token::{self, Shape};

/// Proofs are small (a header with one public key, five claims); bigger ones are refused
/// before they are decoded.
pub const MAX_PROOF_BYTES: usize = 8 * 1024;
/// `jti`s longer than this are refused: the replay memory holds each one.
pub const MAX_JTI_BYTES: usize = 256;

/// JWK members that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What a request contributes to checking its proof.
pub struct ProofRequest<'a> {
    pub method: &'a str,
    /// The URL the client addressed, as `request_htu` makes it.
    pub htu: &'a str,
    /// The access token the proof must be for (`ath`).
    pub token: &'a str,
    /// The RFC 7638 thumbprint the token's `cnf.jkt` names. A proof by another key is refused
    /// before its signature is checked: a stolen token sent with the thief's own key costs a
    /// hash, not a signature check (3 ms for ES384 in V8).
    pub jkt: &'a str,
    pub now: u64,
    /// This Envoy's nonce secret, for a provider with `require_nonce` (`None`: it could not be
    /// read, and the proof is refused with 503).
    pub nonce_secret: Option<&'a NonceSecret>,
}

/// A proof that passed every check but the replay memory, which the caller keeps with these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub jti: String,
    pub iat: u64,
    /// Its nonce is in its last window: the response hands out the next one (RFC 9449 §8.2).
    pub renew_nonce: bool,
}

/// `proof` is the `DPoP` header's value as sent: bounded before it is even read as text.
/// `keys`: the client keys this verifier has seen (`client_keys`).
pub fn check_proof(
    proof: &[u8],
    req: &ProofRequest<'_>,
    dpop: &Dpop,
    skew: u64,
    keys: &mut ClientKeys,
) -> Result<Proof, Reason> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(Reason::DpopProof("the proof is larger than 8 KiB"));
    }
    let proof = std::str::from_utf8(proof).map_err(|_| Reason::DpopProof("the `DPoP` header is not valid UTF-8"))?;
    if token::shape(proof) != Shape::Jws {
        return Err(Reason::DpopProof("the proof is not a compact JWS"));
    }
    let jwt = token::parse(proof).map_err(|_| Reason::DpopProof("the proof is not a well-formed JWS"))?;
    if jwt.header.typ.as_deref().map(normalize_typ).as_deref() != Some("dpop+jwt") {
        return Err(Reason::DpopProof("its `typ` is not `dpop+jwt`"));
    }
    let alg = parse_algorithm(&jwt.header.alg)
        .ok()
        .filter(|a| dpop.algorithms.contains(a))
        .ok_or(Reason::DpopProof("its `alg` is not one this API accepts for proofs"))?;
    if !jwt.header.crit.is_empty() {
        return Err(Reason::DpopProof("it lists a `crit` extension"));
    }
    let Some(jwk_value @ Value::Object(jwk)) = jwt.header.all.get("jwk") else {
        return Err(Reason::DpopProof("its header has no `jwk` object"));
    };
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(Reason::DpopProof("its `jwk` holds private key members"));
    }
    let jkt = jwk_thumbprint(jwk).ok_or(Reason::DpopProof("its `jwk` has no thumbprint"))?;
    if jkt != req.jkt {
        return Err(Reason::DpopKey);
    }
    // A returning client's key comes prepared; a new one is parsed (and prepared on its return).
    let key = match keys.get(&jkt, jwk) {
        Some(k) if k.prepared.is_some() => k,
        seen => {
            let parsed =
                KeySet::one_key(jwk_value).map_err(|_| Reason::DpopProof("its `jwk` is not a usable public key"))?;
            keys.remember(&jkt, jwk, parsed, seen.is_some())
        }
    };
    if Family::for_algorithm(alg.algorithm()) != Some(key.family) || key.alg.is_some_and(|a| a != alg) {
        return Err(Reason::DpopProof("its `alg` does not fit its `jwk`"));
    }
    let (message, signature) = (jwt.signing_input.as_bytes(), &jwt.signature);
    let verified = match key.prepared.as_deref() {
        Some(p) => crypto::verify(message, signature, &key.decoding, Some(p), alg.algorithm()),
        None => crypto::verify_once(message, signature, &key.decoding, alg.algorithm()),
    };
    if !matches!(verified, Ok(true)) {
        return Err(Reason::DpopProof("its signature does not verify with its `jwk`"));
    }
    let claims = &jwt.claims.all;
    let jti = match claims.get("jti") {
        Some(Value::String(j)) if !j.is_empty() && j.len() <= MAX_JTI_BYTES => j.clone(),
        _ => return Err(Reason::DpopProof("it has no `jti` string of at most 256 bytes")),
    };
    match claims.get("htm") {
        Some(Value::String(m)) if m == req.method => {}
        Some(Value::String(_)) => return Err(Reason::DpopMismatch("`htm` is not this request's method")),
        _ => return Err(Reason::DpopProof("it has no `htm` string")),
    }
    match claims.get("htu") {
        Some(Value::String(u)) if normalize_htu(u).as_deref() == Some(req.htu) => {}
        Some(Value::String(_)) => return Err(Reason::DpopMismatch("`htu` is not this request's URL")),
        _ => return Err(Reason::DpopProof("it has no `htu` string")),
    }
    let Some(iat) = jwt.claims.iat else {
        return Err(Reason::DpopProof("it has no `iat`"));
    };
    if iat.saturating_add(dpop.max_proof_age_seconds) < req.now || iat > req.now.saturating_add(skew) {
        return Err(Reason::DpopStale);
    }
    match claims.get("ath") {
        Some(Value::String(a)) if *a == access_token_hash(req.token) => {}
        Some(Value::String(_)) => return Err(Reason::DpopMismatch("`ath` is not the hash of this access token")),
        _ => return Err(Reason::DpopProof("it has no `ath` (the hash of the access token)")),
    }
    let mut renew_nonce = false;
    if dpop.require_nonce {
        let secret = req.nonce_secret.ok_or(Reason::Internal)?;
        match claims.get("nonce") {
            Some(Value::String(n)) => match nonce::check(n, secret, req.now, dpop.nonce_lifetime_seconds) {
                NonceCheck::Fresh => {}
                NonceCheck::Ending => renew_nonce = true,
                NonceCheck::Invalid => return Err(Reason::DpopNonce),
            },
            _ => return Err(Reason::DpopNonce),
        }
    }
    Ok(Proof { jti, iat, renew_nonce })
}

/// `ath`: base64url(SHA-256(the access token's ASCII)), RFC 9449 §4.2.
pub fn access_token_hash(token: &str) -> String {
    base64url::encode(&Sha256::digest(token.as_bytes()))
}

/// An `htu` as it compares (RFC 9449 §4.3 point 9, RFC 3986 §6.2.2 and §6.2.3): scheme and host
/// lower-cased, the default port dropped, query and fragment removed, and the path normalized
/// (`normalize_path`). Nothing else is equated: the match is never wider than RFC 3986's.
pub fn normalize_htu(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    url(scheme, authority, path)
}

/// `scheme://authority/path` with the scheme, authority and path normalized.
fn url(scheme: &str, authority: &str, path: &str) -> Option<String> {
    let scheme = scheme.to_ascii_lowercase();
    Some(format!("{scheme}://{}{}", normalize_authority(&scheme, authority)?, normalize_path(path)?))
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// An absolute path as RFC 3986 §6.2.2 compares it: percent-encodings of unreserved characters
/// decoded (`%7E` is `~`), the others' hex digits upper-cased (`%2f` is `%2F`, and stays encoded:
/// it is not `/`), then dot segments removed (§5.2.4). `None` for a `%` not followed by two hex
/// digits.
pub fn normalize_path(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let v = escape_at(bytes, i)?;
            if is_unreserved(v) {
                out.push(v as char);
            } else {
                let _ = write!(out, "%{v:02X}");
            }
            i += 3;
        } else {
            // Multi-byte UTF-8 stays as it is: copy the whole character.
            let ch = path[i..].chars().next()?;
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    Some(remove_dot_segments(&out))
}

/// RFC 3986 §5.2.4, for an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut input = path;
    let mut output: Vec<&str> = Vec::new();
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../").or_else(|| input.strip_prefix("./")) {
            input = rest;
        } else if input.starts_with("/./") {
            input = &input[2..];
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") {
            input = &input[3..];
            output.pop();
        } else if input == "/.." {
            input = "/";
            output.pop();
        } else if input == "." || input == ".." {
            input = "";
        } else {
            // The first segment, with its leading `/`, up to the next `/`.
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |j| j + start);
            output.push(&input[..end]);
            input = &input[end..];
        }
    }
    output.concat()
}

/// The URL the client addressed, normalized: `external_origin` when configured (TLS ended
/// before Envoy, which then sees `http`), else the request's `:scheme` and `:authority`; then
/// `:path` without its query. `None` when the request lacks what it takes.
pub fn request_htu(dpop: &Dpop, scheme: &str, authority: &str, path: &str) -> Option<String> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/') {
        return None;
    }
    match &dpop.external_origin {
        Some(origin) => Some(format!("{origin}{}", normalize_path(path)?)),
        None => url(scheme, authority, path),
    }
}
