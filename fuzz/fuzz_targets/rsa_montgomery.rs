//! crypto::rsa_montgomery against crypto-bigint on arbitrary moduli and signatures: both
//! engines must give the same encoded message, or both refuse (s >= n, wrong length).
//! The first byte picks the size (2048, 3072 or 4096 bits) and e (65537 or 3); then come n
//! (made odd and of full length) and s. Natively this runs the scalar column sums; the SIMD
//! ones are checked inside V8 by tests/rsa_differential.rs.
#![no_main]
use jwt_guard::crypto::rsa::PublicKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [pick, rest @ ..] = data else { return };
    let k = [256, 384, 512][usize::from(*pick % 3)];
    let e: &[u8] = if pick & 0x80 == 0 { &[1, 0, 1] } else { &[3] };
    if rest.len() < k + 1 {
        return;
    }
    let (n, s) = rest.split_at(k);
    let mut n = n.to_vec();
    n[0] |= 0x80;
    n[k - 1] |= 1;
    let (Some(ours), Some(reference)) = (PublicKey::with_montgomery28(&n, e), PublicKey::with_crypto_bigint(&n, e))
    else {
        panic!("a full-length odd modulus is taken by both engines");
    };
    // s may be shorter or longer than k: both must refuse it then.
    assert_eq!(ours.public_op(s), reference.public_op(s), "the engines disagree");
});
