//! crypto::rsa_montgomery in a debug build (overflow checks on): algebraic identities that hold
//! for any odd modulus, agreement with crypto-bigint, and what it refuses. The large
//! differential runs are tests/rsa_differential.rs (natively and inside V8).

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;

use crate::crypto::rsa::PublicKey;
use crate::crypto::rsa_montgomery::Modulus;

fn modulus_of(der: &[u8]) -> Vec<u8> {
    rsa::RsaPrivateKey::from_pkcs1_der(der).map(|k| k.n().to_bytes_be()).unwrap_or_default()
}

fn keys() -> Vec<Vec<u8>> {
    vec![
        modulus_of(include_bytes!("../testdata/rsa_private_pkcs1.der")),
        modulus_of(include_bytes!("../testdata/rsa2056_private_pkcs1.der")),
        modulus_of(include_bytes!("../testdata/rsa3072_private_pkcs1.der")),
        modulus_of(include_bytes!("../testdata/rsa4096_private_pkcs1.der")),
    ]
}

/// `v` as k big-endian bytes.
fn small(k: usize, v: u8) -> Vec<u8> {
    let mut out = vec![0; k];
    out[k - 1] = v;
    out
}

#[test]
fn identities_hold_for_every_size() {
    for n in keys() {
        let m = Modulus::new(&n).expect("a 2048- to 4096-bit odd modulus");
        let k = n.len();
        assert_eq!(m.size(), k);
        for q in [16, 1] {
            // 0^e = 0, 1^e = 1, (n - 1)^e = n - 1 for odd e.
            assert_eq!(m.pow_2q_plus_1(&small(k, 0), q), Some(small(k, 0)));
            assert_eq!(m.pow_2q_plus_1(&small(k, 1), q), Some(small(k, 1)));
            let mut n_minus_1 = n.clone();
            n_minus_1[k - 1] -= 1; // n is odd: no borrow
            assert_eq!(m.pow_2q_plus_1(&n_minus_1, q), Some(n_minus_1.clone()));
            // 2^3 = 8 for e = 3.
            if q == 1 {
                assert_eq!(m.pow_2q_plus_1(&small(k, 2), q), Some(small(k, 8)));
            }
        }
    }
}

#[test]
fn agrees_with_crypto_bigint() {
    for n in keys().into_iter().filter(|n| matches!(n.len(), 256 | 384 | 512)) {
        let ours = PublicKey::with_montgomery28(&n, &[1, 0, 1]).expect("taken");
        let reference = PublicKey::with_crypto_bigint(&n, &[1, 0, 1]).expect("taken");
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..8 {
            let mut s: Vec<u8> = (0..n.len())
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            s[0] &= n[0];
            assert_eq!(ours.public_op(&s), reference.public_op(&s));
        }
    }
}

#[test]
fn refuses_what_rfc_8017_refuses() {
    let n = &keys()[0];
    let m = Modulus::new(n).expect("taken");
    assert_eq!(m.pow_2q_plus_1(n, 16), None, "s = n");
    assert_eq!(m.pow_2q_plus_1(&[0xff; 256], 16), None, "s > n");
    assert_eq!(m.pow_2q_plus_1(&[1; 255], 16), None, "one byte short");
    assert_eq!(m.pow_2q_plus_1(&[0; 257], 16), None, "one byte long");
}

#[test]
fn takes_only_odd_moduli_of_2048_to_4096_bits() {
    assert!(Modulus::new(&[]).is_none());
    assert!(Modulus::new(&[0; 256]).is_none());
    assert!(Modulus::new(&[0xc2; 256]).is_none(), "even");
    assert!(Modulus::new(&[0xff; 255]).is_none(), "2040 bits");
    let mut too_long = vec![0u8; 513];
    too_long[0] = 1;
    too_long[512] = 1;
    assert!(Modulus::new(&too_long).is_none(), "4097 bits");
    assert!(Modulus::new(&[[0u8, 0].as_slice(), &[0xff; 512]].concat()).is_some(), "leading zeros, 4096 bits");
    assert!(Modulus::new(&modulus_of(include_bytes!("../testdata/rsa2047_private_pkcs1.der"))).is_none(), "2047 bits");
}

/// make fuzz found this: an index computed as `len - 1 - k + lo` went below zero before `lo`
/// was added, which panics in a build with overflow checks.
#[test]
fn fuzz_regression_squaring_index() {
    let mut n = vec![0x5a; 384];
    n[0] |= 0x80;
    n[383] |= 1;
    let m = Modulus::new(&n).expect("taken");
    let s = small(384, 3);
    assert_eq!(m.pow_2q_plus_1(&s, 1), Some(small(384, 27)));
}

/// The variable-time NAF multiplication of `crypto::ecdsa` (DPoP proof keys) against the curve
/// crate's constant-time one, on the scalars where a signed-digit recoding goes wrong: small
/// ones, those around a window boundary (15, 16, 17, 31, 32, 33), all-ones runs that carry to
/// the top, and the largest, n - 1 and n - 2.
macro_rules! naf_agrees {
    ($test:ident, $curve:ident, $module:ident) => {
        #[test]
        fn $test() {
            use $curve::elliptic_curve::ff::PrimeField;
            use $curve::{ProjectivePoint, Scalar};
            let p = ProjectivePoint::GENERATOR * Scalar::from(0x1234_5678_9abc_u64);
            let mut scalars: Vec<Scalar> = [0u64, 1, 2, 3, 15, 16, 17, 31, 32, 33, 0xffff, 0xffff_ffff, u64::MAX]
                .iter()
                .map(|k| Scalar::from(*k))
                .collect();
            scalars.extend([-Scalar::ONE, -Scalar::from(2u64), -Scalar::from(17u64)]);
            let mut repr = <Scalar as PrimeField>::Repr::default();
            for fill in [0xffu8, 0x80, 0x7f, 0x55, 0x0f] {
                repr.iter_mut().for_each(|b| *b = fill);
                repr[0] &= 0x7f;
                if let Some(k) = Option::<Scalar>::from(Scalar::from_repr(repr)) {
                    scalars.push(k);
                }
            }
            let mut k = Scalar::from(0x9e37_79b9_7f4a_7c15_u64);
            for _ in 0..40 {
                k = k * k + Scalar::ONE;
                scalars.push(k);
            }
            for k in &scalars {
                assert_eq!(crate::crypto::ecdsa::$module::multiply_vartime(&p, k), p * k, "k = {k:?}");
            }
            assert!(scalars.len() > 60);
        }
    };
}

naf_agrees!(es256_naf_multiplication_agrees_with_p256, p256, es256);
naf_agrees!(es384_naf_multiplication_agrees_with_p384, p384, es384);
