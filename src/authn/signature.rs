//! Signature verification: every candidate key the key set selects is tried (at most
//! `jwks::MAX_CANDIDATES`), and the token passes if one verifies. The crypto is `crypto::provider`: our RSA
//! and ECDSA verifiers, RustCrypto's for EdDSA and HMAC.

use crate::crypto;
use crate::deny::Reason;
use crate::jwks::{KeySet, SelectError};
use crate::token::vocabulary::JoseAlg;
use crate::token::Jwt;

/// Finds the keys for the token and checks its signature. Key selection errors come first
/// so a token for a rotated-out key says "unknown kid", not "bad signature".
pub fn verify_signature(jwt: &Jwt<'_>, alg: impl Into<JoseAlg>, keys: &KeySet) -> Result<(), Reason> {
    let alg = alg.into();
    for key in candidates(jwt, alg, keys)? {
        // An Err here is a key the crypto backend refuses (for instance an EC point not on the
        // curve); it cannot verify anything, so it counts as a failed candidate.
        let prepared = key.prepared.as_deref();
        let (message, signature) = (jwt.signing_input.as_bytes(), &jwt.signature);
        if let Ok(true) = crypto::verify(message, signature, &key.decoding, prepared, alg.algorithm()) {
            return Ok(());
        }
    }
    Err(Reason::BadSignature)
}

/// Checks only that some key could be chosen, without crypto: lets the cheap "unknown kid"
/// answer come before the expensive signature check.
pub fn has_candidate(jwt: &Jwt<'_>, alg: impl Into<JoseAlg>, keys: &KeySet) -> Result<(), Reason> {
    candidates(jwt, alg.into(), keys).map(|_| ())
}

fn candidates<'k>(jwt: &Jwt<'_>, alg: JoseAlg, keys: &'k KeySet) -> Result<Vec<&'k crate::jwks::Key>, Reason> {
    keys.select(alg, jwt.header.kid.as_deref()).map_err(|e| match e {
        SelectError::UnknownKid => Reason::UnknownKid,
        SelectError::NoCompatibleKey => Reason::NoCompatibleKey,
        SelectError::Ambiguous(n) => Reason::AmbiguousKey(n),
    })
}
