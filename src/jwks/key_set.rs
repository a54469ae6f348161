//! The key set: a JWKS document parsed once into verification keys, with the key-selection rule
//! every verification uses. A key that cannot be used is skipped, never fatal, so one odd key
//! (an `enc` key, an unknown `kty`, P-521) does not take the issuer's good keys down with it.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use crate::crypto::rsa::{is_supported_exponent, strip_leading_zeros};
use crate::crypto::{prepare, Curve, Prepared};
use crate::token::base64url;
use crate::token::vocabulary::{parse_algorithm, JoseAlg};

/// A token is checked against at most this many keys: an issuer's previous, current and next
/// key (Envoy's own jwt_authn tests send kid-less tokens against a JWKS of three). Trying every
/// key would let one forged kid-less token cost a signature check per key in the set.
pub const MAX_CANDIDATES: usize = 3;

/// RSA moduli from 2048 to 4096 bits: the sizes every verifier here takes (RustCrypto's `rsa`
/// refuses larger ones). Larger keys are skipped, with a warning, rather than kept and never
/// verifying.
const RSA_BYTES: std::ops::RangeInclusive<usize> = 256..=512;

/// Keys prepared for the fast verifiers, per key set. Each costs memory in every VM (about
/// 2 KB for RSA, 400 KB for P-256, 900 KB for P-384) and setup time when the set is adopted.
/// Keys past the cap still verify, through jsonwebtoken's verifier, a few times slower.
fn prepare_cap(curve: Curve) -> usize {
    match curve {
        Curve::Rsa => 256,
        Curve::P256 => 16,
        Curve::P384 => 4,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
    Oct,
}

impl Family {
    /// The only key family that may check each algorithm. This table is what makes alg
    /// confusion (an HS256 token "signed" with an RSA public key) impossible.
    pub fn for_algorithm(alg: Algorithm) -> Option<Family> {
        Some(match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => Family::Rsa,
            Algorithm::ES256 => Family::P256,
            Algorithm::ES384 => Family::P384,
            Algorithm::EdDSA => Family::Ed25519,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Family::Oct,
            _ => return None,
        })
    }
}

/// RFC 7518 §3.2: an HMAC key must be at least as long as the hash output.
fn min_hmac_key_len(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

#[derive(Clone)]
pub struct Key {
    pub kid: Option<String>,
    pub alg: Option<JoseAlg>,
    pub family: Family,
    /// Byte length of the secret for `oct` keys, the modulus for RSA.
    pub size: usize,
    pub decoding: DecodingKey,
    /// Set up for its fast verifier when the key set was parsed.
    pub prepared: Option<Arc<Prepared>>,
}

impl std::fmt::Debug for Key {
    // Never print key material, not even public moduli: logs stay short and secrets stay secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("kid", &self.kid).field("alg", &self.alg).field("family", &self.family).finish()
    }
}

#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Key>,
    /// Keys present in the document but unusable, with why; for logs.
    pub skipped: Vec<String>,
    /// Usable keys worth a warning (not prepared past the cap); for logs.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksError {
    NotJson(String),
    NoKeysMember,
    NoUsableKeys(Vec<String>),
}

impl std::fmt::Display for JwksError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksError::NotJson(e) => write!(f, "JWKS is not JSON: {e}"),
            JwksError::NoKeysMember => write!(f, "JWKS has no `keys` array"),
            JwksError::NoUsableKeys(why) if why.is_empty() => write!(f, "JWKS `keys` is empty"),
            JwksError::NoUsableKeys(why) => write!(f, "JWKS has no usable key ({})", why.join("; ")),
        }
    }
}

/// Why no key could be picked for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectError {
    /// The token names a kid that no key has.
    UnknownKid,
    /// Keys with that kid (or no kid) exist, but none can check this algorithm.
    NoCompatibleKey,
    /// More than `MAX_CANDIDATES` keys fit; carries how many.
    Ambiguous(usize),
}

impl KeySet {
    pub fn from_keys(keys: Vec<Key>) -> KeySet {
        let mut set = KeySet { keys, skipped: Vec::new(), warnings: Vec::new() };
        set.prepare();
        set
    }

    /// Sets each key up for its fast verifier, up to each curve's cap.
    fn prepare(&mut self) {
        for curve in [Curve::Rsa, Curve::P256, Curve::P384] {
            let cap = prepare_cap(curve);
            let mut prepared = 0;
            let mut over = 0;
            for key in self.keys.iter_mut().filter(|k| curve_of(k.family) == Some(curve)) {
                if prepared >= cap {
                    over += 1;
                    continue;
                }
                key.prepared = prepare(curve, &key.decoding).map(Arc::new);
                prepared += usize::from(key.prepared.is_some());
            }
            if over > 0 {
                self.warnings.push(format!(
                    "{over} {curve:?} keys past the first {cap} are not prepared for the fast verifier \
                     (each costs memory in every VM); they verify, more slowly"
                ));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    pub fn has_symmetric_key(&self) -> bool {
        self.keys.iter().any(|k| k.family == Family::Oct)
    }

    /// One JWK as a key, not prepared for the fast verifiers: for a key that checks one
    /// signature (a DPoP proof's), where the setup would cost more than it saves.
    pub fn one_key(jwk: &Value) -> Result<Key, String> {
        parse_key(jwk)
    }

    /// Parses a JWKS document. Fails only when nothing usable is left, so a refresh that
    /// yields no keys never replaces good ones.
    pub fn parse(text: &[u8]) -> Result<KeySet, JwksError> {
        let doc: Value = serde_json::from_slice(text).map_err(|e| JwksError::NotJson(e.to_string()))?;
        let list = doc.get("keys").and_then(Value::as_array).ok_or(JwksError::NoKeysMember)?;
        let mut set = KeySet::default();
        for (i, jwk) in list.iter().enumerate() {
            match parse_key(jwk) {
                Ok(key) => set.keys.push(key),
                Err(why) => set.skipped.push(format!("key {i}: {why}")),
            }
        }
        if set.keys.is_empty() {
            return Err(JwksError::NoUsableKeys(set.skipped));
        }
        set.prepare();
        Ok(set)
    }

    /// The keys that may check a token with this `alg` and `kid`. A key qualifies when its
    /// family fits the algorithm, its `alg` (if any) equals the token's, and its `kid` equals
    /// the token's (a key or token without `kid` matches any, as in jwt_verify_lib). More than
    /// `MAX_CANDIDATES` is refused before any signature is checked. A key pinned to an `alg`
    /// takes tokens under that exact name (`EdDSA` and `Ed25519` are two names).
    pub fn select(&self, alg: impl Into<JoseAlg>, kid: Option<&str>) -> Result<Vec<&Key>, SelectError> {
        let alg = alg.into();
        let Some(family) = Family::for_algorithm(alg.algorithm()) else {
            return Err(SelectError::NoCompatibleKey);
        };
        let kid_matches = |k: &Key| match (kid, k.kid.as_deref()) {
            (Some(t), Some(k)) => t == k,
            _ => true,
        };
        let found: Vec<&Key> = self
            .keys
            .iter()
            .filter(|k| kid_matches(k))
            .filter(|k| k.family == family && k.alg.is_none_or(|a| a == alg))
            .filter(|k| k.family != Family::Oct || k.size >= min_hmac_key_len(alg.algorithm()))
            .collect();
        if found.len() > MAX_CANDIDATES {
            return Err(SelectError::Ambiguous(found.len()));
        }
        if !found.is_empty() {
            return Ok(found);
        }
        match kid {
            Some(t) if !self.keys.iter().any(|k| k.kid.as_deref() == Some(t)) => Err(SelectError::UnknownKid),
            _ => Err(SelectError::NoCompatibleKey),
        }
    }
}

fn b64_member(jwk: &Value, name: &str) -> Result<Vec<u8>, String> {
    let text = jwk.get(name).and_then(Value::as_str).ok_or_else(|| format!("`{name}` missing or not a string"))?;
    base64url::decode(text.as_bytes()).map_err(|_| format!("`{name}` is not base64url"))
}

fn parse_key(jwk: &Value) -> Result<Key, String> {
    if !jwk.is_object() {
        return Err("not an object".into());
    }
    let kty = jwk.get("kty").and_then(Value::as_str).ok_or("`kty` missing")?;
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("`kid` is not a string".into()),
    };
    match jwk.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(_) => return Err("`use` is not `sig`".into()),
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verifies = ops.as_array().is_some_and(|a| a.iter().any(|o| o == "verify"));
        if !verifies {
            return Err("`key_ops` does not allow `verify`".into());
        }
    }
    let alg = match jwk.get("alg") {
        None => None,
        Some(Value::String(a)) => Some(parse_algorithm(a).map_err(|_| format!("unsupported alg {a:?}"))?),
        Some(_) => return Err("`alg` is not a string".into()),
    };
    let (family, size, decoding) = match kty {
        "RSA" => {
            let n = b64_member(jwk, "n")?;
            let e = b64_member(jwk, "e")?;
            let n = strip_leading_zeros(&n);
            let e = strip_leading_zeros(&e);
            if !is_supported_exponent(e) {
                return Err("RSA exponent must be 3 or 65537".into());
            }
            if !RSA_BYTES.contains(&n.len()) {
                return Err(format!("RSA modulus of {} bytes (2048 to 4096 bits allowed)", n.len()));
            }
            (Family::Rsa, n.len(), DecodingKey::from_rsa_raw_components(n, e))
        }
        "EC" => {
            let crv = jwk.get("crv").and_then(Value::as_str).ok_or("`crv` missing")?;
            let (family, len) = match crv {
                "P-256" => (Family::P256, 32),
                "P-384" => (Family::P384, 48),
                other => return Err(format!("unsupported curve {other:?}")),
            };
            let x = b64_member(jwk, "x")?;
            let y = b64_member(jwk, "y")?;
            if x.len() != len || y.len() != len {
                return Err(format!("{crv} coordinates must be {len} bytes"));
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (family, len, DecodingKey::from_ec_der(&point))
        }
        "OKP" => {
            let crv = jwk.get("crv").and_then(Value::as_str).ok_or("`crv` missing")?;
            if crv != "Ed25519" {
                return Err(format!("unsupported curve {crv:?}"));
            }
            let x = b64_member(jwk, "x")?;
            if x.len() != 32 {
                return Err("Ed25519 key must be 32 bytes".into());
            }
            (Family::Ed25519, 32, DecodingKey::from_ed_der(&x))
        }
        "oct" => {
            let k = b64_member(jwk, "k")?;
            if k.is_empty() {
                return Err("empty `oct` key".into());
            }
            (Family::Oct, k.len(), DecodingKey::from_secret(&k))
        }
        other => return Err(format!("unsupported kty {other:?}")),
    };
    if let Some(a) = alg {
        if Family::for_algorithm(a.algorithm()) != Some(family) {
            return Err(format!("alg {} does not fit kty {kty}", a.name()));
        }
    }
    Ok(Key { kid, alg, family, size, decoding, prepared: None })
}

/// Prepares one key for its fast verifier if it is RSA or P-256 (a DPoP client's, which has no
/// key set); P-384 tables are too large to build per client. True if it now has one.
pub fn prepare_one(key: &mut Key) -> bool {
    let Some(curve @ (Curve::Rsa | Curve::P256)) = curve_of(key.family) else { return false };
    if key.prepared.is_none() {
        key.prepared = prepare(curve, &key.decoding).map(Arc::new);
    }
    key.prepared.is_some()
}

fn curve_of(family: Family) -> Option<Curve> {
    match family {
        Family::Rsa => Some(Curve::Rsa),
        Family::P256 => Some(Curve::P256),
        Family::P384 => Some(Curve::P384),
        Family::Ed25519 | Family::Oct => None,
    }
}
