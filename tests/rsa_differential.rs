//! crypto::rsa_montgomery against crypto-bigint and RustCrypto's `rsa`, where the code runs.
//!
//! `make test` runs this twice: natively (the scalar column sums) and built for wasm32-wasip1
//! inside node's V8 (`make differential-v8`: the SIMD column sums Envoy runs). Per key size it
//! compares at least `RSA_DIFFERENTIAL_COUNT` (default 100,000) signatures:
//! - PKCS#1 v1.5 encodings made with the private key: valid ones for RS256/384/512 and near
//!   misses (wrong leading bytes, a bad padding byte, short padding, no separator, a wrong or
//!   parameter-less DigestInfo, another hash's DigestInfo, trailing bytes, a wrong digest).
//!   The verdicts of both engines must equal `rsa`'s and the expected one, and the public
//!   operation must give back the encoding;
//! - edge values (0, 1, 2, n-1, n, n+1, 2^8k-1, limb patterns), bit flips of valid signatures,
//!   and random numbers below and above n: the engine under test must give the encoded messages
//!   (or refusals) crypto-bigint gives. The first thousands are compared directly; all of them
//!   through a digest of the whole sequence, which the native run computes with crypto-bigint
//!   and the V8 run with rsa_montgomery, both against the constant below. Every 200th is also
//!   checked against `rsa`'s own public operation.
//!
//! Moduli of unusual bit length (2056 and 3000 bits, and random odd moduli right at the
//! limb boundaries) are checked against `rsa`'s big integers.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jsonwebtoken::Algorithm;
use jwt_guard::crypto::rsa::PublicKey;
use jwt_guard::crypto::rsa_montgomery::Modulus;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256, Sha384, Sha512};

mod common;
use common::Rng;

fn count() -> usize {
    std::env::var("RSA_DIFFERENTIAL_COUNT").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

const KEYS: [(&str, &[u8]); 4] = [
    ("2048", include_bytes!("../src/testdata/rsa_private_pkcs1.der")),
    ("3072", include_bytes!("../src/testdata/rsa3072_private_pkcs1.der")),
    ("4096", include_bytes!("../src/testdata/rsa4096_private_pkcs1.der")),
    ("2048, e = 3", include_bytes!("../src/testdata/rsa_e3_private_pkcs1.der")),
];

fn digest_info(alg: Algorithm, msg: &[u8]) -> (Vec<u8>, Vec<u8>) {
    // DER DigestInfo prefixes (RFC 8017 §9.2, note 1), written out here independently of ours.
    let (oid_last, digest): (u8, Vec<u8>) = match alg {
        Algorithm::RS256 => (1, Sha256::digest(msg).to_vec()),
        Algorithm::RS384 => (2, Sha384::digest(msg).to_vec()),
        Algorithm::RS512 => (3, Sha512::digest(msg).to_vec()),
        _ => unreachable!(),
    };
    let d = digest.len() as u8;
    let prefix = vec![
        0x30,
        0x0d + 4 + d,
        0x30,
        0x0d,
        0x06,
        0x09,
        0x60,
        0x86,
        0x48,
        0x01,
        0x65,
        0x03,
        0x04,
        0x02,
        oid_last,
        0x05,
        0x00,
        0x04,
        d,
    ];
    (prefix, digest)
}

/// EM = 0x00 || 0x01 || PS (0xff...) || 0x00 || T, built from pieces a test may spoil.
fn encode(k: usize, head: [u8; 2], pad: u8, separator: u8, t: &[u8], trailing: usize) -> Vec<u8> {
    let ps = k - 3 - t.len() - trailing;
    let mut em = vec![head[0], head[1]];
    em.extend(std::iter::repeat_n(pad, ps));
    em.push(separator);
    em.extend_from_slice(t);
    em.extend(std::iter::repeat_n(0xab, trailing));
    assert_eq!(em.len(), k);
    em
}

/// (name, EM, valid?) for one message: the valid encoding and its near misses.
fn encodings(k: usize, alg: Algorithm, msg: &[u8], rng: &mut Rng) -> Vec<(&'static str, Vec<u8>, bool)> {
    let (prefix, digest) = digest_info(alg, msg);
    let t = [&prefix[..], &digest[..]].concat();
    let valid = encode(k, [0, 1], 0xff, 0, &t, 0);
    let mut bad_pad = valid.clone();
    bad_pad[2 + rng.below(k - 3 - t.len())] = 0xfe;
    let mut short_pad = valid.clone(); // the separator 7 bytes in: PS of 7 bytes, then 0xff junk
    short_pad[9] = 0;
    let mut no_separator = valid.clone();
    no_separator[k - t.len() - 1] = 0xff;
    let mut wrong_oid = valid.clone();
    wrong_oid[k - t.len() + 14] ^= 0x10;
    let mut wrong_digest = valid.clone();
    wrong_digest[k - 1 - rng.below(digest.len())] ^= 1 << rng.below(8);
    // DigestInfo without the NULL parameters: the form RFC 8017 allows senders to omit, which
    // PKCS#1 v1.5 verification as JWS uses it (RFC 7518 §3.3) does not take.
    let mut no_null = prefix.clone();
    no_null.drain(15..17);
    no_null[1] -= 2;
    no_null[3] -= 2;
    let other = match alg {
        Algorithm::RS256 => Algorithm::RS384,
        _ => Algorithm::RS256,
    };
    let (other_prefix, _) = digest_info(other, msg);
    vec![
        ("valid", valid, true),
        ("first byte 01", encode(k, [1, 1], 0xff, 0, &t, 0), false),
        ("block type 02", encode(k, [0, 2], 0xff, 0, &t, 0), false),
        ("block type 00", encode(k, [0, 0], 0xff, 0, &t, 0), false),
        ("padding byte fe", bad_pad, false),
        ("short padding", short_pad, false),
        ("no separator", no_separator, false),
        ("separator 01", encode(k, [0, 1], 0xff, 1, &t, 0), false),
        ("wrong DigestInfo OID", wrong_oid, false),
        ("DigestInfo without NULL", encode(k, [0, 1], 0xff, 0, &[&no_null[..], &digest[..]].concat(), 0), false),
        ("another hash's DigestInfo", encode(k, [0, 1], 0xff, 0, &[&other_prefix[..], &digest[..]].concat(), 0), false),
        ("trailing bytes", encode(k, [0, 1], 0xff, 0, &t, 2), false),
        ("wrong digest", wrong_digest, false),
    ]
}

fn reference_verify(key: &RsaPublicKey, alg: Algorithm, msg: &[u8], sig: &[u8]) -> bool {
    match alg {
        Algorithm::RS256 => key.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(msg), sig).is_ok(),
        Algorithm::RS384 => key.verify(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(msg), sig).is_ok(),
        Algorithm::RS512 => key.verify(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(msg), sig).is_ok(),
        _ => unreachable!(),
    }
}

/// `x^e mod n` by `rsa`'s big integers, as k bytes; `None` where RFC 8017 refuses the input.
fn reference_public_op(n: &BigUint, e: &BigUint, s: &[u8]) -> Option<Vec<u8>> {
    let k = n.to_bytes_be().len();
    let x = BigUint::from_bytes_be(s);
    if s.len() != k || &x >= n {
        return None;
    }
    let m = x.modpow(e, n).to_bytes_be();
    Some([vec![0; k - m.len()], m].concat())
}

/// Counts of one key size's run.
#[derive(Default)]
struct Tally {
    compared: usize,
    encodings: usize,
    valid: usize,
    reference_sampled: usize,
    digest: String,
}

fn run_key(der: &[u8], total: usize, seed: u64) -> Tally {
    let private = RsaPrivateKey::from_pkcs1_der(der).unwrap();
    let public = private.to_public_key();
    let (n_be, e_be) = (public.n().to_bytes_be(), public.e().to_bytes_be());
    let ours = PublicKey::with_montgomery28(&n_be, &e_be).expect("the key on rsa_montgomery");
    let bigint = PublicKey::with_crypto_bigint(&n_be, &e_be).expect("the key on crypto-bigint");
    let k = public.size();
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    let mut valid_sigs = Vec::new();

    // Encodings made with the private key: verdicts against `rsa` and the expected one.
    let algs = [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512];
    for i in 0..3 * algs.len() {
        let alg = algs[i % algs.len()];
        let len = rng.below(200);
        let msg = rng.bytes(len);
        for (what, em, want) in encodings(k, alg, &msg, &mut rng) {
            let s = rsa::hazmat::rsa_decrypt::<rsa::rand_core::OsRng>(None, &private, &BigUint::from_bytes_be(&em))
                .unwrap();
            let s = [vec![0; k - s.to_bytes_be().len()], s.to_bytes_be()].concat();
            assert_eq!(ours.public_op(&s).as_deref(), Some(&em[..]), "{what}: public op gives the encoding back");
            assert_eq!(bigint.public_op(&s).as_deref(), Some(&em[..]), "{what}: crypto-bigint too");
            let got = ours.verify(alg, &msg, &s);
            assert_eq!(got, want, "{alg:?} {what}");
            assert_eq!(bigint.verify(alg, &msg, &s), want, "{alg:?} {what} (crypto-bigint)");
            assert_eq!(reference_verify(&public, alg, &msg, &s), want, "{alg:?} {what} (rsa)");
            if want {
                valid_sigs.push((alg, msg.clone(), s));
                tally.valid += 1;
            }
            tally.encodings += 1;
            tally.compared += 1;
        }
    }

    // Edge values and limb patterns.
    let n_plus = |d: i8| -> Vec<u8> {
        let x = BigUint::from_bytes_be(&n_be);
        let x = if d >= 0 { x + BigUint::from(d as u8) } else { x - BigUint::from((-d) as u8) };
        let b = x.to_bytes_be();
        [vec![0; k.saturating_sub(b.len())], b].concat()
    };
    let small = |v: u8| -> Vec<u8> { [vec![0; k - 1], vec![v]].concat() };
    let mut edges = vec![small(0), small(1), small(2), n_plus(-1), n_plus(-2), n_plus(0), n_plus(1), vec![0xff; k]];
    for pattern in [0x0fff_ffffu32, 0x0aaa_aaaa, 0x0555_5555, 0x0800_0000, 0x0000_0001] {
        // The same 28-bit limb repeated, kept below n by clearing the top byte.
        let mut x = BigUint::from(0u32);
        for _ in 0..k * 8 / 28 {
            x = (x << 28) + BigUint::from(pattern);
        }
        let b = x.to_bytes_be();
        let mut b = [vec![0; k.saturating_sub(b.len())], b].concat();
        b.truncate(k);
        b[0] = 0;
        edges.push(b);
    }
    let n_big = public.n().clone();
    let e_big = public.e().clone();
    for s in &edges {
        let got = ours.public_op(s);
        assert_eq!(got, bigint.public_op(s), "edge value {:02x?}..", &s[..4]);
        assert_eq!(got, reference_public_op(&n_big, &e_big, s), "edge value against rsa");
        tally.compared += 1;
        tally.reference_sampled += 1;
    }

    // The bulk: bit flips of valid signatures, random numbers below n, at or above n. Every
    // encoded message (or refusal) goes into a digest that must equal the reference's, so the
    // engine under test is checked on all of them; the first DIRECT are also compared here with
    // crypto-bigint directly (in V8, crypto-bigint costs 2.5x rsa_montgomery, so doing it for
    // all 100,000 would take minutes).
    let mut digest = Sha256::new();
    while tally.compared < total {
        let s = match rng.below(4) {
            0 => {
                let (_, _, s) = &valid_sigs[rng.below(valid_sigs.len())];
                let mut s = s.clone();
                let bit = rng.below(k * 8);
                s[bit / 8] ^= 1 << (bit % 8);
                s
            }
            1 => {
                let mut s = rng.bytes(k);
                s[0] &= n_be[0]; // mostly below n
                s
            }
            2 => {
                let mut s = n_be.clone(); // n with a low byte changed: just below or above n
                s[k - 1 - rng.below(4)] ^= rng.next() as u8 | 1;
                s
            }
            _ => rng.bytes(k),
        };
        let under_test = if REFERENCE_DIGESTS { &bigint } else { &ours };
        let got = under_test.public_op(&s);
        // Drawn every time, so both runs see the same sequence whatever DIRECT is.
        let (alg, msg, _) = &valid_sigs[rng.below(valid_sigs.len())];
        if tally.compared < DIRECT {
            let other = if REFERENCE_DIGESTS { &ours } else { &bigint };
            assert_eq!(got, other.public_op(&s), "signature {} ({:02x?}..)", tally.compared, &s[..8]);
            if tally.compared % 8 == 0 {
                assert_eq!(ours.verify(*alg, msg, &s), bigint.verify(*alg, msg, &s));
            }
        }
        if tally.compared % 200 == 0 {
            assert_eq!(got, reference_public_op(&n_big, &e_big, &s), "signature {} against rsa", tally.compared);
            tally.reference_sampled += 1;
        }
        match got {
            Some(em) => digest.update([&[1u8][..], &em].concat()),
            None => digest.update([0u8]),
        }
        tally.compared += 1;
    }
    tally.digest = digest.finalize().iter().map(|b| format!("{b:02x}")).collect();
    tally
}

/// Natively this file is the reference run: the bulk digests come from crypto-bigint and must
/// equal the ones written below; rsa_montgomery's scalar path is compared directly on the
/// first DIRECT. Inside V8 the digests come from rsa_montgomery's SIMD path.
const REFERENCE_DIGESTS: bool = !cfg!(target_arch = "wasm32");
const DIRECT: usize = if REFERENCE_DIGESTS { 10_000 } else { 2_000 };

/// SHA-256 of the 100,000 bulk encoded messages per key, in KEYS order, as crypto-bigint
/// computes them (checked against `rsa` on every 200th).
const DIGESTS: [&str; 4] = [
    "bbfc6b1b506d9111defc242fb2901060b300d7c76851d78759124b3bdf5de21a",
    "961aea3e54804e342b6f95f0503c9c31807102b94460e6b4ff2b90b62ec37052",
    "f9b500b7b42c5c985bede7e55da40bc92850f2b8c822e48d3555c3180173b109",
    "df0ab11642cbe69bf04b684bfdabf64d8d198329af5a7c9464ff918f578552aa",
];

/// One key's bulk: each key is a test of its own, so `make differential-v8` can run them in
/// parallel node processes.
fn montgomery28_agrees_with_crypto_bigint_and_rsa(i: usize) {
    let total = count();
    let (name, der) = KEYS[i];
    let t = run_key(der, total, 0x9e37_79b9_7f4a_7c15 ^ i as u64);
    println!(
        "RSA {name}: {} signatures compared ({} PKCS#1 encodings made with the private key, {} valid; \
         {} also against rsa's public operation), all agree",
        t.compared, t.encodings, t.valid, t.reference_sampled
    );
    assert!(t.compared >= total);
    assert_eq!(t.valid, 9);
    if total == 100_000 {
        println!("RSA {name}: digest of the bulk {}", t.digest);
        assert_eq!(t.digest, DIGESTS[i], "RSA {name}: the bulk's encoded messages differ from the reference's");
    }
}

#[test]
fn montgomery28_agrees_on_rsa_2048() {
    montgomery28_agrees_with_crypto_bigint_and_rsa(0);
}

#[test]
fn montgomery28_agrees_on_rsa_3072() {
    montgomery28_agrees_with_crypto_bigint_and_rsa(1);
}

#[test]
fn montgomery28_agrees_on_rsa_4096() {
    montgomery28_agrees_with_crypto_bigint_and_rsa(2);
}

#[test]
fn montgomery28_agrees_on_rsa_2048_e3() {
    montgomery28_agrees_with_crypto_bigint_and_rsa(3);
}

#[test]
fn unusual_bit_lengths_agree_with_rsa() {
    let e = BigUint::from(65537u32);
    let mut rng = Rng(0x5851_f42d_4c95_7f2d);
    let mut moduli: Vec<(String, Vec<u8>)> = [
        ("2056-bit key", &include_bytes!("../src/testdata/rsa2056_private_pkcs1.der")[..]),
        ("3000-bit key", &include_bytes!("../src/testdata/rsa3000_private_pkcs1.der")[..]),
    ]
    .iter()
    .map(|(name, der)| (name.to_string(), RsaPrivateKey::from_pkcs1_der(der).unwrap().n().to_bytes_be()))
    .collect();
    // Random odd moduli where R = 2^(28 L) is as tight as it may be (28 L = bits + 2) or has
    // the most room, at both ends of the range, and the sparsest and densest moduli.
    for bits in [2048usize, 2049, 2070, 2071, 3078, 3079, 4095, 4096] {
        let mut n = rng.bytes(bits.div_ceil(8));
        n[0] &= 0xff >> (n.len() * 8 - bits);
        n[0] |= 0x80 >> (n.len() * 8 - bits);
        *n.last_mut().unwrap() |= 1;
        moduli.push((format!("random {bits}-bit modulus"), n));
    }
    let mut sparse = vec![0u8; 256];
    sparse[0] = 0x80;
    sparse[255] = 1;
    moduli.push(("2^2047 + 1".into(), sparse));
    moduli.push(("2^4096 - 1".into(), vec![0xff; 512]));

    for (name, n_be) in &moduli {
        let n = BigUint::from_bytes_be(n_be);
        let ours = Modulus::new(n_be).unwrap_or_else(|| panic!("{name}: taken"));
        let k = n_be.len();
        let mut compared = 0;
        for i in 0..300 {
            let mut s = rng.bytes(k);
            if i % 3 != 0 {
                s[0] &= n_be[0];
            }
            let want = reference_public_op(&n, &e, &s);
            assert_eq!(ours.pow_2q_plus_1(&s, 16), want, "{name}, value {i}");
            compared += 1;
        }
        println!("{name}: {compared} values agree with rsa's big integers");
    }
    // What the key sets refuse is not taken here either: even, too short, too long.
    assert!(Modulus::new(&[0xc2; 256]).is_none());
    let n2047 = RsaPrivateKey::from_pkcs1_der(include_bytes!("../src/testdata/rsa2047_private_pkcs1.der")).unwrap();
    assert!(Modulus::new(&n2047.n().to_bytes_be()).is_none(), "a 2047-bit key");
    assert!(Modulus::new(&[0xff; 255]).is_none());
    assert!(Modulus::new(&[[1u8].as_slice(), &[0; 511], &[1]].concat()).is_none());
    assert!(Modulus::new(&[]).is_none() && Modulus::new(&[0; 300]).is_none());
}
