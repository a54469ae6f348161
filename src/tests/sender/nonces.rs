//! RFC 9449 §8-9 server nonces through the decision: the challenge, fresh and ending nonces,
//! other Envoys' and made-up ones, and bearer tokens never asked.

use super::*;
use crate::authn::dpop_nonce::{issue, NonceSecret};
use crate::decision::NONCE_HEADER;

const SECRET: NonceSecret = [9u8; 32];

fn world() -> World {
    World::with_dpop(json!({"require_nonce": true, "nonce_lifetime": "300s"}))
}

fn proof_with_nonce(token: &str, jti: &str, nonce: Option<&str>) -> String {
    let mut c = dpop_claims(jti, "GET", HTU, token);
    if let Some(n) = nonce {
        c["nonce"] = json!(n);
    }
    dpop_proof(Algorithm::ES256, public_jwk("ec-1"), json!({}), c)
}

impl World {
    fn send_with_secret(&mut self, authorization: &str, proof: Option<&str>, secret: Option<&NonceSecret>) -> Outcome {
        let mut h: Vec<(&str, &[u8])> = vec![
            (":method", b"GET"),
            (":scheme", b"https"),
            (":authority", b"api.test"),
            (":path", b"/items"),
            ("authorization", authorization.as_bytes()),
        ];
        if let Some(p) = proof {
            h.push(("dpop", p.as_bytes()));
        }
        let req = Request { method: "GET", path: "/items", headers: &h, peer_certificate: &no_peer_certificate };
        let states: Vec<KeyState<'_>> = self.keys.iter().map(|k| KeyState::Ready(k, KidRefetch::Exhausted)).collect();
        let shared = Shared { answers: &[], proofs: None, nonce_secret: secret };
        self.engine.decide_with(&req, &states, self.now, &mut self.caches, shared)
    }
}

fn nonce_header(headers: &[(String, String)]) -> Option<String> {
    headers.iter().find(|(k, _)| k == NONCE_HEADER).map(|(_, v)| v.clone())
}

#[test]
fn a_proof_without_a_nonce_is_challenged_with_one() {
    let mut w = world();
    let t = bound_token();
    let o = w.send_with_secret(&format!("DPoP {t}"), Some(&proof_with_nonce(&t, "a", None)), Some(&SECRET));
    let Outcome::Deny(d) = o else { panic!("{o:?}") };
    assert_eq!(d.reason, Reason::DpopNonce);
    assert_eq!(d.response.status, 401);
    let challenge = d.response.headers.iter().find(|(k, _)| k == "www-authenticate").map(|(_, v)| v.as_str());
    assert!(
        challenge.is_some_and(|c| c.starts_with("DPoP ") && c.contains("error=\"use_dpop_nonce\"")),
        "{challenge:?}"
    );
    assert!(d.response.body.contains("use_dpop_nonce"));
    assert_eq!(nonce_header(&d.response.headers), Some(issue(&SECRET, NOW, 300)));
}

#[test]
fn a_fresh_nonce_passes_and_an_ending_one_passes_with_the_next() {
    let mut w = world();
    let t = bound_token();
    let fresh = issue(&SECRET, NOW, 300);
    let o = w.send_with_secret(&format!("DPoP {t}"), Some(&proof_with_nonce(&t, "b", Some(&fresh))), Some(&SECRET));
    let Outcome::Allow { mutations, .. } = o else { panic!("{o:?}") };
    assert_eq!(nonce_header(&mutations.response_headers), None, "nothing to renew yet");
    // A nonce from the previous window (150 s each) is still good, and the response renews it.
    let ending = issue(&SECRET, NOW - 150, 300);
    let o = w.send_with_secret(&format!("DPoP {t}"), Some(&proof_with_nonce(&t, "c", Some(&ending))), Some(&SECRET));
    let Outcome::Allow { mutations, .. } = o else { panic!("{o:?}") };
    assert_eq!(nonce_header(&mutations.response_headers), Some(fresh));
}

#[test]
fn expired_foreign_and_made_up_nonces_are_challenged_again() {
    let mut w = world();
    let t = bound_token();
    for (i, nonce) in [
        issue(&SECRET, NOW - 300, 300),             // expired
        issue(&[1u8; 32], NOW, 300),                // another Envoy's
        "bm90LWEtbm9uY2U".to_string(),              // made up
        issue(&SECRET, NOW, 300)[..20].to_string(), // truncated
    ]
    .iter()
    .enumerate()
    {
        let p = proof_with_nonce(&t, &format!("n-{i}"), Some(nonce));
        let o = w.send_with_secret(&format!("DPoP {t}"), Some(&p), Some(&SECRET));
        assert_eq!(denied(&o).0, Reason::DpopNonce, "case {i}");
    }
}

#[test]
fn bearer_tokens_are_never_asked_for_a_nonce_and_a_missing_secret_fails_closed() {
    let mut w = world();
    let o = w.send_with_secret(&format!("Bearer {}", access_token(json!({}))), None, Some(&SECRET));
    assert!(allowed(&o), "{o:?}");
    let t = bound_token();
    let fresh = issue(&SECRET, NOW, 300);
    let o = w.send_with_secret(&format!("DPoP {t}"), Some(&proof_with_nonce(&t, "d", Some(&fresh))), None);
    assert_eq!(denied(&o).0, Reason::Internal, "the secret could not be read: 503, not a pass");
    // Without require_nonce a nonce claim is not read.
    let mut plain = World::with_dpop(json!({}));
    assert!(allowed(&plain.send_with_secret(&format!("DPoP {t}"), Some(&proof_with_nonce(&t, "e", None)), None)));
}

#[test]
fn nonce_configuration_is_checked() {
    let e = Config::parse(
        json!({"providers": {"p": {"issuer": ISS, "audiences": [API], "local_jwks": {"inline_string": JWKS},
            "dpop": {"require_nonce": true, "nonce_lifetime": "1s"}}}})
        .to_string()
        .as_bytes(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("dpop.nonce_lifetime"), "{e}");
    let c = config_with(json!({"dpop": {"require_nonce": true}}), json!({}));
    assert!(c.providers[0].dpop.require_nonce);
    assert_eq!(c.providers[0].dpop.nonce_lifetime_seconds, 300);
}
