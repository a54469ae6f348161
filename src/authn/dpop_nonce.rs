//! RFC 9449 §8-9 server nonces, stateless: a nonce is the time window it was issued in and a
//! MAC over it under a random secret one Envoy makes at start and all its workers share. Any
//! worker of that Envoy accepts it while it is fresh; a nonce from another Envoy, an expired one
//! or a made-up one fails the MAC or the window. A window is half the configured lifetime, and a
//! nonce is accepted in its window and the next, so it lives between half and all of it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::token::base64url;

pub type NonceSecret = [u8; 32];

/// Bytes of MAC kept: 128 bits.
const TAG: usize = 16;

fn window(now: u64, lifetime: u64) -> u64 {
    now / (lifetime / 2).max(1)
}

fn tag(secret: &NonceSecret, window: u64) -> [u8; TAG] {
    let mut out = [0u8; TAG];
    if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) {
        mac.update(b"jwt-guard dpop nonce");
        mac.update(&window.to_be_bytes());
        out.copy_from_slice(&mac.finalize().into_bytes()[..TAG]);
    }
    out
}

/// The nonce to hand out at `now`.
pub fn issue(secret: &NonceSecret, now: u64, lifetime: u64) -> String {
    let w = window(now, lifetime);
    base64url::encode(&[&w.to_be_bytes()[..], &tag(secret, w)].concat())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Issued in this window.
    Fresh,
    /// Issued in the previous window: still accepted, and the response carries the next one.
    Ending,
    /// Made up, from another Envoy, truncated, or expired.
    Invalid,
}

pub fn check(nonce: &str, secret: &NonceSecret, now: u64, lifetime: u64) -> NonceCheck {
    let Ok(bytes) = base64url::decode(nonce.as_bytes()) else { return NonceCheck::Invalid };
    if bytes.len() != 8 + TAG {
        return NonceCheck::Invalid;
    }
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[..8]);
    let w = u64::from_be_bytes(w);
    // Constant time: the MAC is compared by `hmac`'s own verifier.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return NonceCheck::Invalid };
    mac.update(b"jwt-guard dpop nonce");
    mac.update(&w.to_be_bytes());
    if mac.verify_truncated_left(&bytes[8..]).is_err() {
        return NonceCheck::Invalid;
    }
    let current = window(now, lifetime);
    if w == current {
        NonceCheck::Fresh
    } else if w.saturating_add(1) == current {
        NonceCheck::Ending
    } else {
        NonceCheck::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: NonceSecret = [7u8; 32];

    #[test]
    fn a_nonce_lives_between_half_and_all_of_its_lifetime() {
        let n = issue(&S, 1000, 300); // window 150 s: [900, 1050)
        assert_eq!(check(&n, &S, 1000, 300), NonceCheck::Fresh);
        assert_eq!(check(&n, &S, 1049, 300), NonceCheck::Fresh);
        assert_eq!(check(&n, &S, 1050, 300), NonceCheck::Ending, "its second window: renew");
        assert_eq!(check(&n, &S, 1199, 300), NonceCheck::Ending);
        assert_eq!(check(&n, &S, 1200, 300), NonceCheck::Invalid, "expired");
        assert_eq!(check(&n, &S, 899, 300), NonceCheck::Invalid, "from the future");
    }

    #[test]
    fn wrong_secret_wrong_window_truncated_and_made_up_nonces_fail() {
        let n = issue(&S, 1000, 300);
        assert_eq!(check(&n, &[8u8; 32], 1000, 300), NonceCheck::Invalid, "another Envoy's");
        let mut bytes = base64url::decode(n.as_bytes()).unwrap();
        bytes[7] ^= 1; // another window under the same tag
        assert_eq!(check(&base64url::encode(&bytes), &S, 1000, 300), NonceCheck::Invalid);
        assert_eq!(check(&n[..n.len() - 2], &S, 1000, 300), NonceCheck::Invalid, "truncated");
        assert_eq!(check(&format!("{n}AA"), &S, 1000, 300), NonceCheck::Invalid, "extended");
        assert_eq!(check("", &S, 1000, 300), NonceCheck::Invalid);
        assert_eq!(check("not base64!", &S, 1000, 300), NonceCheck::Invalid);
        assert_eq!(check(&base64url::encode(&[0u8; 24]), &S, 1000, 300), NonceCheck::Invalid, "made up");
        assert_ne!(issue(&S, 1000, 300), issue(&S, 1200, 300));
        assert_eq!(issue(&S, 1000, 300), issue(&S, 1001, 300), "one nonce per window");
    }
}
