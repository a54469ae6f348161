//! Sender-constrained tokens: after a token verifies, the request must prove it comes from
//! the party the token is bound to. DPoP (RFC 9449): a `cnf.jkt` token only with the DPoP
//! scheme and a valid proof by that key, never as a bearer token. Mutual TLS (RFC 8705): a
//! `cnf["x5t#S256"]` token only on a connection whose client certificate has that SHA-256.

use crate::authn::dpop::{check_proof, request_htu, ProofRequest};
use crate::authn::dpop_nonce::NonceSecret;
use crate::authn::Binding;
use crate::decision::extractor::{header_text, Found};
use crate::decision::proof_memory::{proof_key, ProofMemory};
use crate::decision::token_cache::TokenCache;
use crate::decision::Request;
use crate::deny::Reason;
use crate::policy::{DpopMode, Provider};

/// Where a request's DPoP proof is remembered: the Envoy-wide memory when there is one (`shared`,
/// with the provider's index), else the verifier's own per-VM memory.
pub struct ProofStore<'a, 'm> {
    pub cache: &'a mut TokenCache,
    pub shared: Option<(&'a mut (dyn ProofMemory + 'm), usize)>,
    pub nonce_secret: Option<&'a NonceSecret>,
}

/// `Ok(true)`: passed, with a DPoP nonce in its last window, so the response should carry the
/// next one.
pub fn check_sender(
    provider: &Provider,
    binding: &Binding,
    found: &Found,
    req: &Request<'_>,
    store: ProofStore<'_, '_>,
    now: u64,
) -> Result<bool, Reason> {
    let renew_nonce = match (found.dpop, &binding.jkt) {
        (false, Some(_)) => return Err(Reason::DpopDowngrade),
        (false, None) if provider.dpop.mode == DpopMode::Required => return Err(Reason::DpopRequired),
        (false, None) => false,
        (true, None) => return Err(Reason::DpopUnbound),
        (true, Some(jkt)) => check_dpop(provider, jkt, found, req, store, now)?,
    };
    if let Some(expected) = &binding.x5t_s256 {
        match (req.peer_certificate)().as_deref().and_then(parse_hex_digest) {
            None => return Err(Reason::CertMissing),
            Some(digest) if digest.as_slice() != expected.as_slice() => return Err(Reason::CertMismatch),
            Some(_) => {}
        }
    }
    Ok(renew_nonce)
}

fn check_dpop(
    provider: &Provider,
    jkt: &str,
    found: &Found,
    req: &Request<'_>,
    store: ProofStore<'_, '_>,
    now: u64,
) -> Result<bool, Reason> {
    let mut proofs = req.headers.iter().filter(|(name, _)| *name == "dpop");
    let raw = match (proofs.next(), proofs.next()) {
        (Some((_, raw)), None) => raw,
        (None, _) => return Err(Reason::DpopProof("the request has no `DPoP` proof header")),
        (Some(_), Some(_)) => return Err(Reason::DpopProof("the request has more than one `DPoP` header")),
    };
    let pseudo = |name: &str| header_text(req.headers, name).unwrap_or("");
    let htu = request_htu(&provider.dpop, pseudo(":scheme"), pseudo(":authority"), req.path)
        .ok_or(Reason::DpopMismatch("the request's own URL could not be read"))?;
    let skew = provider.clock_skew_seconds;
    let p = check_proof(
        raw,
        &ProofRequest {
            method: req.method,
            htu: &htu,
            token: &found.token,
            jkt,
            now,
            nonce_secret: store.nonce_secret,
        },
        &provider.dpop,
        skew,
        &mut store.cache.client_keys,
    )?;
    let until = p.iat.saturating_add(provider.dpop.max_proof_age_seconds);
    let first = match store.shared {
        // Past `until` + skew a proof is refused as stale, so that is as long as it is kept.
        Some((memory, i)) => {
            memory.first_use(i, &proof_key(jkt, &p.jti, req.method, &htu), until.saturating_add(skew), now)?
        }
        None => store.cache.first_use_of_proof(jkt, &p.jti, until, now),
    };
    if !first {
        return Err(Reason::DpopReplay);
    }
    Ok(p.renew_nonce)
}

/// A SHA-256 digest written as 64 hex digits (Envoy's `sha256_peer_certificate_digest`), in
/// either case, or with `:` between bytes. `None` for anything else, an empty value included.
pub fn parse_hex_digest(text: &[u8]) -> Option<[u8; 32]> {
    let digits: Vec<u8> = text.iter().copied().filter(|b| *b != b':').collect();
    if digits.len() != 64 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}
