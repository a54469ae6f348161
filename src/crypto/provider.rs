//! Signature verification: `rsa` for RS256/384/512 and PS256/384/512, `ecdsa` for ES256 and
//! ES384, with the key prepared for them when it was (`prepare`); RustCrypto's `ed25519-dalek`
//! and `hmac` for EdDSA and HS256/384/512, as jsonwebtoken's rust_crypto verifiers call them.
//!
//! Keys are prepared when a key set is adopted, never on a request: a request costs at most its
//! signature checks. A key that was not prepared (past the cap, or an RSA modulus crypto-bigint
//! does not take natively) is checked with per-call setup: `rsa` on the Montgomery engine, the
//! one-shot ECDSA of `ecdsa`.
//!
//! Not through jsonwebtoken's `DEFAULT_PROVIDER`: naming it keeps its signers (RSA private keys,
//! a CSPRNG, ECDSA signing) in the `.wasm`, 317 KB of code no request runs.

use hmac::{Hmac, Mac};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};
use sha2::{Sha256, Sha384, Sha512};

use super::{ecdsa, rsa};

/// Which fast verifier a key can be prepared for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    Rsa,
    P256,
    P384,
}

/// A key set up for its fast verifier.
pub enum Prepared {
    Rsa(rsa::PublicKey),
    Es256(ecdsa::es256::PublicKey),
    Es384(ecdsa::es384::PublicKey),
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Prepared::Rsa(_) => "Prepared::Rsa",
            Prepared::Es256(_) => "Prepared::Es256",
            Prepared::Es384(_) => "Prepared::Es384",
        })
    }
}

/// Does the per-key work of the fast verifier: Montgomery constants for RSA, a table of
/// multiples for ECDSA. `None` for keys it does not take.
pub fn prepare(curve: Curve, key: &DecodingKey) -> Option<Prepared> {
    match (curve, key.kind()) {
        (Curve::Rsa, DecodingKeyKind::RsaModulusExponent { n, e }) => rsa::PublicKey::new(n, e).map(Prepared::Rsa),
        (Curve::P256, DecodingKeyKind::SecretOrDer(sec1)) => {
            ecdsa::es256::PublicKey::from_sec1_bytes(sec1).map(Prepared::Es256)
        }
        (Curve::P384, DecodingKeyKind::SecretOrDer(sec1)) => {
            ecdsa::es384::PublicKey::from_sec1_bytes(sec1).map(Prepared::Es384)
        }
        _ => None,
    }
}

/// The algorithms `rsa::PublicKey::verify` takes: PKCS#1 v1.5 and PSS.
fn is_rsa(alg: Algorithm) -> bool {
    matches!(
        alg,
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512
    )
}

/// Checks `signature` (already base64url-decoded) over `message` with `key`, through its
/// prepared form if it has one for `alg`. An `Err` is a key the backend refuses, which cannot
/// verify anything.
pub fn verify(
    message: &[u8],
    signature: &[u8],
    key: &DecodingKey,
    prepared: Option<&Prepared>,
    alg: Algorithm,
) -> Result<bool> {
    match (prepared, alg) {
        (Some(Prepared::Rsa(k)), alg) if is_rsa(alg) => Ok(k.verify(alg, message, signature)),
        (Some(Prepared::Es256(k)), Algorithm::ES256) => Ok(k.verify(message, signature)),
        (Some(Prepared::Es384(k)), Algorithm::ES384) => Ok(k.verify(message, signature)),
        _ => unprepared(message, signature, key, alg),
    }
}

/// A key without a prepared form: set up for this one call. `Err` for a key that cannot check
/// `alg` (wrong family, not on the curve, an RSA modulus outside 2048 to 4096 bits).
fn unprepared(message: &[u8], signature: &[u8], key: &DecodingKey, alg: Algorithm) -> Result<bool> {
    let refused = || -> Result<bool> { Err(ErrorKind::InvalidKeyFormat.into()) };
    match (alg, key.kind()) {
        (alg, DecodingKeyKind::RsaModulusExponent { n, e }) if is_rsa(alg) => {
            match rsa::PublicKey::new(n, e).or_else(|| rsa::PublicKey::with_montgomery28(n, e)) {
                Some(k) => Ok(k.verify(alg, message, signature)),
                None => refused(),
            }
        }
        (Algorithm::ES256, DecodingKeyKind::SecretOrDer(sec1)) => {
            ecdsa::es256::verify_once(sec1, message, signature).map_or_else(refused, Ok)
        }
        (Algorithm::ES384, DecodingKeyKind::SecretOrDer(sec1)) => {
            ecdsa::es384::verify_once(sec1, message, signature).map_or_else(refused, Ok)
        }
        (Algorithm::EdDSA, DecodingKeyKind::SecretOrDer(bytes)) => {
            let Ok(point) = <&[u8; 32]>::try_from(bytes.as_slice()) else { return refused() };
            let Ok(k) = ed25519_dalek::VerifyingKey::from_bytes(point) else { return refused() };
            let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else { return Ok(false) };
            Ok(ed25519_dalek::Verifier::verify(&k, message, &sig).is_ok())
        }
        (Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512, DecodingKeyKind::SecretOrDer(secret)) => {
            Ok(hmac_verifies(alg, secret, message, signature))
        }
        _ => refused(),
    }
}

/// HMAC in constant time (`verify_slice`), as jsonwebtoken's HS* verifiers check it.
fn hmac_verifies(alg: Algorithm, secret: &[u8], message: &[u8], tag: &[u8]) -> bool {
    macro_rules! check {
        ($digest:ty) => {
            match Hmac::<$digest>::new_from_slice(secret) {
                Ok(mut mac) => {
                    mac.update(message);
                    mac.verify_slice(tag).is_ok()
                }
                Err(_) => false,
            }
        };
    }
    match alg {
        Algorithm::HS256 => check!(Sha256),
        Algorithm::HS384 => check!(Sha384),
        Algorithm::HS512 => check!(Sha512),
        _ => false,
    }
}

/// Checks a signature with a key used once, such as the public key in a DPoP proof, which
/// changes per client and is never prepared: the variable-time ECDSA of `ecdsa` (no table for
/// the key), and in wasm builds `rsa_montgomery`, whose per-key setup costs less than what it
/// saves on one RSA check. Everything else goes to `verify` without a prepared key.
pub fn verify_once(message: &[u8], signature: &[u8], key: &DecodingKey, alg: Algorithm) -> Result<bool> {
    let once = match (alg, key.kind()) {
        (Algorithm::ES256, DecodingKeyKind::SecretOrDer(sec1)) => ecdsa::es256::verify_once(sec1, message, signature),
        (Algorithm::ES384, DecodingKeyKind::SecretOrDer(sec1)) => ecdsa::es384::verify_once(sec1, message, signature),
        (alg, DecodingKeyKind::RsaModulusExponent { n, e }) if is_rsa(alg) && cfg!(target_arch = "wasm32") => {
            rsa::PublicKey::with_montgomery28(n, e).map(|k| k.verify(alg, message, signature))
        }
        _ => None,
    };
    match once {
        Some(verified) => Ok(verified),
        None => verify(message, signature, key, None, alg),
    }
}
