//! Signature verification: jsonwebtoken's RustCrypto verifiers, with faster ones for RS256/384/512
//! and PS256/384/512 (`rsa`), ES256 and ES384 (`ecdsa`) where the key was prepared for them.
//!
//! Keys are prepared when a key set is adopted (`prepare`), never on a request: a request costs
//! at most its signature checks. A key that was not prepared (past the cap, or of a size the
//! fast verifiers do not take) is checked by jsonwebtoken's verifier, which needs no setup.
//!
//! jsonwebtoken's verifiers are called through its default provider directly rather than
//! installing a process-wide default: that can only be set once, and whichever code asks first
//! (a `sign` in a test, say) would silently win.

use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};

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
) -> jsonwebtoken::errors::Result<bool> {
    match (prepared, alg) {
        (Some(Prepared::Rsa(k)), alg) if is_rsa(alg) => Ok(k.verify(alg, message, signature)),
        (Some(Prepared::Es256(k)), Algorithm::ES256) => Ok(k.verify(message, signature)),
        (Some(Prepared::Es384(k)), Algorithm::ES384) => Ok(k.verify(message, signature)),
        _ => {
            let verifier = (DEFAULT_PROVIDER.verifier_factory)(&alg, key)?;
            Ok(verifier.verify(message, &signature.to_vec()).is_ok())
        }
    }
}

/// Checks a signature with a key used once, such as the public key in a DPoP proof, which
/// changes per client and is never prepared: the variable-time ECDSA of `ecdsa` (no table for
/// the key), and in wasm builds `rsa_montgomery`, whose per-key setup costs less than what it
/// saves on one RSA check. Everything else goes to jsonwebtoken's verifier.
pub fn verify_once(
    message: &[u8],
    signature: &[u8],
    key: &DecodingKey,
    alg: Algorithm,
) -> jsonwebtoken::errors::Result<bool> {
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
