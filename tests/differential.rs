//! fast_rsa against RustCrypto's `rsa` (the reference) on random valid and corrupted
//! signatures: both must say the same thing every time.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jsonwebtoken::{Algorithm, EncodingKey};
use jwt_guard::fast_rsa::PublicKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256, Sha384, Sha512};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn reference(key: &RsaPublicKey, alg: Algorithm, msg: &[u8], sig: &[u8]) -> bool {
    match alg {
        Algorithm::RS256 => key.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(msg), sig).is_ok(),
        Algorithm::RS384 => key.verify(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(msg), sig).is_ok(),
        Algorithm::RS512 => key.verify(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(msg), sig).is_ok(),
        _ => unreachable!(),
    }
}

/// Runs `messages` random messages, each as 4 signatures (valid, one bit flipped, one byte
/// short, a random number); returns (signatures compared, valid ones).
fn differential(der: &[u8], alg: Algorithm, messages: usize, seed: u64) -> (usize, usize) {
    let private = RsaPrivateKey::from_pkcs1_der(der).unwrap();
    let public = private.to_public_key();
    let ours = PublicKey::new(&public.n().to_bytes_be(), &public.e().to_bytes_be()).expect("a supported key");
    let signing = EncodingKey::from_rsa_der(der);
    let k = public.size();
    let mut rng = Rng(seed);
    let (mut compared, mut valid) = (0, 0);
    for i in 0..messages {
        let len = (rng.next() % 300) as usize;
        let msg = rng.bytes(len);
        let sig_b64 = jsonwebtoken::crypto::sign(&msg, &signing, alg).unwrap();
        let sig = jwt_guard::base64url::decode(sig_b64.as_bytes()).unwrap();
        let mut flipped = sig.clone();
        let bit = (rng.next() % (k as u64 * 8)) as usize;
        flipped[bit / 8] ^= 1 << (bit % 8);
        let short = sig[1..].to_vec();
        let random = rng.bytes(k);
        for (what, s) in [("valid", &sig), ("flipped", &flipped), ("short", &short), ("random", &random)] {
            let want = reference(&public, alg, &msg, s);
            let got = ours.verify(alg, &msg, s);
            assert_eq!(got, want, "{alg:?} {}-bit message {i} {what}", k * 8);
            compared += 1;
            valid += usize::from(got);
        }
        // A valid signature for another message never verifies.
        let other = rng.bytes(len + 1);
        assert!(!ours.verify(alg, &other, &sig));
        assert_eq!(ours.verify(alg, &other, &sig), reference(&public, alg, &other, &sig));
    }
    (compared, valid)
}

const RSA2048: &[u8] = include_bytes!("../src/testdata/rsa_private_pkcs1.der");

#[test]
fn rs256_agrees_with_rsa_on_10000_signatures() {
    let (n, valid) = differential(RSA2048, Algorithm::RS256, 2500, 0x9e37_79b9_7f4a_7c15);
    println!("RS256 2048-bit: {n} signatures compared, {valid} valid, all agree");
    assert_eq!((n, valid), (10_000, 2500));
}

#[test]
fn rs384_agrees_with_rsa_on_10000_signatures() {
    let (n, valid) = differential(RSA2048, Algorithm::RS384, 2500, 0x1234_5678_9abc_def1);
    println!("RS384 2048-bit: {n} signatures compared, {valid} valid, all agree");
    assert_eq!((n, valid), (10_000, 2500));
}

#[test]
fn rs512_agrees_with_rsa_on_10000_signatures() {
    let (n, valid) = differential(RSA2048, Algorithm::RS512, 2500, 0x0fed_cba9_8765_4321);
    println!("RS512 2048-bit: {n} signatures compared, {valid} valid, all agree");
    assert_eq!((n, valid), (10_000, 2500));
}

#[test]
fn other_key_sizes_and_exponent_3_agree() {
    for (der, name) in [
        (&include_bytes!("../src/testdata/rsa3072_private_pkcs1.der")[..], "3072"),
        (&include_bytes!("../src/testdata/rsa4096_private_pkcs1.der")[..], "4096"),
        (&include_bytes!("../src/testdata/rsa_e3_private_pkcs1.der")[..], "2048, e=3"),
    ] {
        let (n, valid) = differential(der, Algorithm::RS256, 100, 42);
        println!("RS256 {name}: {n} signatures compared, {valid} valid, all agree");
        assert_eq!(valid, 100);
    }
}

#[test]
fn unsupported_keys_fall_back() {
    assert!(PublicKey::new(&[0xc3; 128], &[1, 0, 1]).is_none(), "1024-bit: not on the fast path");
    assert!(PublicKey::new(&[0xc3; 256], &[1, 0, 0, 1]).is_none(), "e = 65537 or 3 only");
    let mut even = vec![0xc3; 256];
    even[255] = 0xc2;
    assert!(PublicKey::new(&even, &[1, 0, 1]).is_none(), "an even modulus is refused, not a panic");
}
