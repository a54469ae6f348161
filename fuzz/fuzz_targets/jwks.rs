//! JWKS documents as fetched, and the shared-data records VMs exchange.
#![no_main]
use jwt_guard::jwks::KeySet;
use jwt_guard::refresh::{decode_body, SharedState};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = KeySet::parse(data) {
        for alg in [jsonwebtoken::Algorithm::RS256, jsonwebtoken::Algorithm::ES256, jsonwebtoken::Algorithm::HS256] {
            let _ = set.select(alg, Some("k"));
            let _ = set.select(alg, None);
        }
    }
    let _ = SharedState::decode(data);
    let _ = decode_body(data);
});
