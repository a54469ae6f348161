//! Arbitrary signatures (and messages) through the provider's verifiers, for every key of the
//! fixed JWKS that the algorithm selects: fast_rsa for RS*, fast_ecdsa for ES256/ES384,
//! jsonwebtoken's own for the rest.
//! The first byte picks the algorithm, the second where the message ends.
#![no_main]
use std::sync::OnceLock;

use jsonwebtoken::Algorithm;
use jwt_guard::crypto::verify;
use jwt_guard::jwks::KeySet;
use libfuzzer_sys::fuzz_target;

const ALGS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::HS256,
];

fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| KeySet::parse(include_bytes!("../../src/testdata/jwks.json")).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let [pick, split, rest @ ..] = data else { return };
    let alg = ALGS[usize::from(*pick) % ALGS.len()];
    let (msg, sig) = rest.split_at(usize::from(*split).min(rest.len()));
    for key in keys().select(alg, None).unwrap_or_default() {
        assert_ne!(
            verify(msg, sig, &key.decoding, key.prepared.as_deref(), alg).ok(),
            Some(true),
            "an arbitrary signature verified"
        );
    }
});
