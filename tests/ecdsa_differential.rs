//! crypto::ecdsa against `p256`'s and `p384`'s own verifiers (the references), on random valid
//! and corrupted ES256 and ES384 signatures, through the prepared verifier and `verify_once`.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::Rng;

/// One differential test per curve: `$curve` is the curve crate, `$ours` our module.
macro_rules! ecdsa_differential {
    ($test:ident, $refuses:ident, $curve:ident, $ours:path, $len:expr) => {
        mod $curve {
            use super::Rng;
            use $curve::ecdsa::signature::{Signer, Verifier};
            use $curve::ecdsa::{Signature, SigningKey, VerifyingKey};
            use $curve::elliptic_curve::ff::PrimeField;
            use $curve::Scalar;
            use $ours as ours;

            /// The group order n, big-endian: (n - 1) + 1, with no carry out of the last byte.
            fn order() -> Vec<u8> {
                let mut n = (-Scalar::ONE).to_repr().to_vec();
                assert_ne!(n[$len - 1], 0xff);
                n[$len - 1] += 1;
                n
            }

            /// `n - s`: the high-S twin of a signature's s.
            fn negate(s: &[u8]) -> Vec<u8> {
                let mut repr = $curve::FieldBytes::default();
                repr.copy_from_slice(s);
                let s = Option::<Scalar>::from(Scalar::from_repr(repr)).unwrap();
                (-s).to_repr().to_vec()
            }

            /// Signs `messages` random messages with `key` and compares 8 signatures each, through the
            /// prepared key (`verify`) and the one-shot path (`verify_once`):
            /// valid, its high-S twin (also valid), one bit flipped, r and s swapped, a random
            /// r||s, r = n, s = 0, and one byte short. Returns (compared, valid).
            fn differential(secret: &[u8], messages: usize, rng: &mut Rng) -> (usize, usize) {
                let signing = SigningKey::from_slice(secret).unwrap();
                let reference = VerifyingKey::from(&signing);
                let sec1 = reference.to_encoded_point(false);
                let ours = ours::PublicKey::from_sec1_bytes(sec1.as_bytes()).expect("a valid point");
                let (mut compared, mut valid) = (0, 0);
                for i in 0..messages {
                    let len = (rng.next() % 300) as usize;
                    let msg = rng.bytes(len);
                    let sig: Signature = signing.sign(&msg);
                    let sig = sig.to_bytes().to_vec();
                    let high_s = [&sig[..$len], &negate(&sig[$len..])[..]].concat();
                    let mut flipped = sig.clone();
                    let bit = (rng.next() % (16 * $len)) as usize;
                    flipped[bit / 8] ^= 1 << (bit % 8);
                    let swapped = [&sig[$len..], &sig[..$len]].concat();
                    let random = rng.bytes(2 * $len);
                    let r_is_n = [&order()[..], &sig[$len..]].concat();
                    let s_zero = [&sig[..$len], &[0u8; $len][..]].concat();
                    let short = sig[1..].to_vec();
                    for (what, s) in [
                        ("valid", &sig),
                        ("high-S", &high_s),
                        ("flipped", &flipped),
                        ("swapped", &swapped),
                        ("random", &random),
                        ("r = n", &r_is_n),
                        ("s = 0", &s_zero),
                        ("short", &short),
                    ] {
                        let want = Signature::from_slice(s).is_ok_and(|s| reference.verify(&msg, &s).is_ok());
                        let got = ours.verify(&msg, s);
                        assert_eq!(got, want, "key {:02x?} message {i} {what}", &secret[..4]);
                        let once = ours::verify_once(sec1.as_bytes(), &msg, s);
                        assert_eq!(once, Some(want), "key {:02x?} message {i} {what}: verify_once", &secret[..4]);
                        compared += 1;
                        valid += usize::from(got);
                    }
                    let other = rng.bytes(len + 1);
                    assert!(!ours.verify(&other, &sig), "a signature for another message");
                    assert_eq!(
                        ours::verify_once(sec1.as_bytes(), &other, &sig),
                        Some(false),
                        "verify_once, another message"
                    );
                }
                (compared, valid)
            }

            #[test]
            fn $test() {
                let mut rng = Rng(0x2545_f491_4f6c_dd1d);
                let mut one = vec![0u8; $len];
                one[$len - 1] = 1;
                let n_minus_one = (-Scalar::ONE).to_repr().to_vec();
                // Q = G and Q = -G put the same points in both tables; then random keys.
                let mut secrets = vec![one, n_minus_one];
                while secrets.len() < 10 {
                    let s = rng.bytes($len);
                    if SigningKey::from_slice(&s).is_ok() {
                        secrets.push(s);
                    }
                }
                let (mut n, mut valid) = (0, 0);
                for secret in &secrets {
                    let (c, v) = differential(secret, 125, &mut rng);
                    n += c;
                    valid += v;
                }
                println!(
                    "{}: {n} signatures compared over {} keys, {valid} valid, all agree",
                    stringify!($curve),
                    secrets.len()
                );
                assert_eq!(n, 10_000);
                assert_eq!(valid, 2 * 1250, "every signature and its high-S twin, nothing else");
            }

            #[test]
            fn $refuses() {
                let signing = SigningKey::from_slice(&[7u8; $len]).unwrap();
                let point = VerifyingKey::from(&signing).to_encoded_point(false);
                assert!(ours::PublicKey::from_sec1_bytes(point.as_bytes()).is_some());
                let mut off_curve = point.as_bytes().to_vec();
                off_curve[2 * $len] ^= 1;
                assert!(ours::PublicKey::from_sec1_bytes(&off_curve).is_none(), "a point off the curve");
                assert!(ours::verify_once(&off_curve, b"m", &[1u8; 2 * $len]).is_none(), "verify_once, off the curve");
                assert!(ours::verify_once(&[0u8], b"m", &[1u8; 2 * $len]).is_none(), "verify_once, the identity");
                assert!(ours::PublicKey::from_sec1_bytes(&[0u8]).is_none(), "the identity");
                assert!(ours::PublicKey::from_sec1_bytes(&point.as_bytes()[..2 * $len]).is_none(), "truncated");
            }
        }
    };
}

ecdsa_differential!(
    es256_agrees_with_p256_on_10000_signatures,
    es256_refuses_keys_p256_refuses,
    p256,
    jwt_guard::crypto::ecdsa::es256,
    32
);
ecdsa_differential!(
    es384_agrees_with_p384_on_10000_signatures,
    es384_refuses_keys_p384_refuses,
    p384,
    jwt_guard::crypto::ecdsa::es384,
    48
);
