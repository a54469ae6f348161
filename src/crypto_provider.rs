//! jsonwebtoken's RustCrypto `CryptoProvider` with verifiers swapped for faster ones:
//! RS256/384/512 (`fast_rsa`), ES256 and ES384 (`fast_ecdsa`). Every other algorithm, and
//! every key those do not take, stays with jsonwebtoken's own verifiers.
//!
//! `verify` calls this provider directly rather than installing it as jsonwebtoken's
//! process-wide default: the default can only be set once, and whichever code asks for it
//! first (a `sign` in a test or a benchmark, say) would silently win.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::thread::LocalKey;

use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
use jsonwebtoken::crypto::{CryptoProvider, JwtVerifier, KeyUtils};
use jsonwebtoken::signature::{self, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};

use crate::{fast_ecdsa, fast_rsa};

/// Checks `signature` (already base64url-decoded) over `message` with `key`. An `Err` is a key
/// the backend refuses, which cannot verify anything.
pub fn verify(
    message: &[u8],
    signature: &[u8],
    key: &DecodingKey,
    alg: Algorithm,
) -> jsonwebtoken::errors::Result<bool> {
    let verifier = (PROVIDER.verifier_factory)(&alg, key)?;
    Ok(verifier.verify(message, &signature.to_vec()).is_ok())
}

/// A VM's precomputed keys, by an unambiguous encoding of the key's bytes. jsonwebtoken hands
/// a verifier only a `DecodingKey`, so this is where per-key precomputation lives; each wasm
/// VM is one thread.
pub type KeyCache<T> = RefCell<HashMap<Vec<u8>, Rc<T>>>;

/// The key for `id` from `cache`, built with `build` on first use; the cache is emptied
/// when it holds `max` keys. `None` when `build` refuses the key.
pub fn cached_key<T>(
    cache: &'static LocalKey<KeyCache<T>>,
    id: &[u8],
    max: usize,
    build: impl FnOnce() -> Option<T>,
) -> Option<Rc<T>> {
    cache.with(|keys| {
        let mut keys = keys.borrow_mut();
        if let Some(k) = keys.get(id) {
            return Some(k.clone());
        }
        let key = Rc::new(build()?);
        if keys.len() >= max {
            keys.clear();
        }
        keys.insert(id.to_vec(), key.clone());
        Some(key)
    })
}

enum Fast {
    Rsa(Rc<fast_rsa::PublicKey>),
    Es256(Rc<fast_ecdsa::es256::PublicKey>),
    Es384(Rc<fast_ecdsa::es384::PublicKey>),
}

struct FastVerifier {
    key: Fast,
    alg: Algorithm,
}

impl Verifier<Vec<u8>> for FastVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        let ok = match &self.key {
            Fast::Rsa(key) => key.verify(self.alg, msg, signature),
            Fast::Es256(key) => key.verify(msg, signature),
            Fast::Es384(key) => key.verify(msg, signature),
        };
        if ok {
            Ok(())
        } else {
            Err(signature::Error::new())
        }
    }
}

impl JwtVerifier for FastVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn fast_key(alg: Algorithm, key: &DecodingKey) -> Option<Fast> {
    match (alg, key.kind()) {
        (Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512, DecodingKeyKind::RsaModulusExponent { n, e }) => {
            fast_rsa::cached_key(n, e).map(Fast::Rsa)
        }
        (Algorithm::ES256, DecodingKeyKind::SecretOrDer(sec1)) => fast_ecdsa::es256::cached_key(sec1).map(Fast::Es256),
        (Algorithm::ES384, DecodingKeyKind::SecretOrDer(sec1)) => fast_ecdsa::es384::cached_key(sec1).map(Fast::Es384),
        _ => None,
    }
}

fn verifier_factory(alg: &Algorithm, key: &DecodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    match fast_key(*alg, key) {
        Some(key) => Ok(Box::new(FastVerifier { key, alg: *alg })),
        None => (DEFAULT_PROVIDER.verifier_factory)(alg, key),
    }
}

/// jsonwebtoken's RustCrypto provider with the faster RSA and ECDSA verifiers.
pub static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: DEFAULT_PROVIDER.signer_factory,
    verifier_factory,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: DEFAULT_PROVIDER.key_utils.rsa_pub_components_from_private_key,
        rsa_pub_components_from_public_key: DEFAULT_PROVIDER.key_utils.rsa_pub_components_from_public_key,
        ec_pub_components_from_private_key: DEFAULT_PROVIDER.key_utils.ec_pub_components_from_private_key,
        ed_pub_components_from_private_key: DEFAULT_PROVIDER.key_utils.ed_pub_components_from_private_key,
        compute_digest: DEFAULT_PROVIDER.key_utils.compute_digest,
    },
};
