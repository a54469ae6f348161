//! A returning DPoP client's key is prepared on its second proof and used from then on; the
//! prepared path refuses what the one-off path refuses.

use super::*;
use crate::authn::client_keys::{ClientKeys, CLIENT_KEYS};
use crate::authn::dpop::Proof;

fn check(proof: &str, token: &str, keys: &mut ClientKeys, alg: Algorithm) -> Result<Proof, Reason> {
    let jwk = public_jwk(kid_for(alg));
    let jkt = jwk_thumbprint(jwk.as_object().unwrap()).unwrap();
    let req = ProofRequest { method: "GET", htu: HTU, token, jkt: &jkt, now: NOW, nonce_secret: None };
    let dpop = Dpop { algorithms: vec![alg.into()], ..Dpop::default() };
    check_proof(proof.as_bytes(), &req, &dpop, 60, keys)
}

fn proof(alg: Algorithm, jti: &str, token: &str) -> String {
    dpop_proof(alg, public_jwk(kid_for(alg)), json!({}), dpop_claims(jti, "GET", HTU, token))
}

#[test]
fn a_key_is_prepared_on_its_second_proof_and_then_verifies_through_its_table() {
    let t = "a.bound.token";
    for alg in [Algorithm::ES256, Algorithm::RS256, Algorithm::PS256] {
        let mut keys = ClientKeys::default();
        assert!(check(&proof(alg, "1", t), t, &mut keys, alg).is_ok());
        assert_eq!(keys.prepared_len(), 0, "{alg:?}: one proof builds no table");
        assert!(check(&proof(alg, "2", t), t, &mut keys, alg).is_ok());
        assert_eq!(keys.prepared_len(), 1, "{alg:?}: the second does");
        assert!(check(&proof(alg, "3", t), t, &mut keys, alg).is_ok(), "{alg:?}: prepared path");
        // The prepared path refuses a bad signature as the one-off path does.
        let p = proof(alg, "4", t);
        let forged = format!("{}AAAA", &p[..p.len() - 4]);
        assert_eq!(
            check(&forged, t, &mut keys, alg),
            Err(Reason::DpopProof("its signature does not verify with its `jwk`")),
            "{alg:?}"
        );
    }
}

#[test]
fn p384_and_ed25519_keys_are_never_prepared_and_another_alg_member_is_read_afresh() {
    let t = "a.bound.token";
    for alg in [Algorithm::ES384, Algorithm::EdDSA] {
        let mut keys = ClientKeys::default();
        for i in 0..3 {
            assert!(check(&proof(alg, &i.to_string(), t), t, &mut keys, alg).is_ok(), "{alg:?}");
        }
        assert_eq!(keys.prepared_len(), 0, "{alg:?}");
    }
    // A jwk whose `alg` member differs from the remembered one is read afresh and judged by it
    // (from the cache, this proof would pass).
    let mut keys = ClientKeys::default();
    for i in 0..2 {
        assert!(check(&proof(Algorithm::ES256, &i.to_string(), t), t, &mut keys, Algorithm::ES256).is_ok());
    }
    let mut jwk = public_jwk(kid_for(Algorithm::ES256));
    jwk["alg"] = json!("ES384");
    let odd = dpop_proof(Algorithm::ES256, jwk, json!({}), dpop_claims("x", "GET", HTU, t));
    let refused = Err(Reason::DpopProof("its `jwk` is not a usable public key"));
    assert_eq!(check(&odd, t, &mut keys, Algorithm::ES256), refused);
    assert_eq!(CLIENT_KEYS, 16);
    assert_eq!(ClientKeys::new(0).prepared_len(), 0);
}
