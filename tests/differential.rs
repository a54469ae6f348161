//! crypto::rsa against RustCrypto's `rsa` (the reference), on random valid and corrupted
//! signatures and near-miss PKCS#1 and PSS encodings: both must say the same thing every time.
//! ECDSA's counterpart is tests/ecdsa_differential.rs.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jsonwebtoken::{Algorithm, EncodingKey};
use jwt_guard::crypto::rsa::PublicKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256, Sha384, Sha512};

mod common;
use common::Rng;

/// `rsa`'s verdict, PKCS#1 v1.5 for RS*, PSS (salt as long as the hash) for PS*.
fn reference(key: &RsaPublicKey, alg: Algorithm, msg: &[u8], sig: &[u8]) -> bool {
    match alg {
        Algorithm::RS256 => key.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(msg), sig).is_ok(),
        Algorithm::RS384 => key.verify(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(msg), sig).is_ok(),
        Algorithm::RS512 => key.verify(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(msg), sig).is_ok(),
        Algorithm::PS256 => key.verify(Pss::new::<Sha256>(), &Sha256::digest(msg), sig).is_ok(),
        Algorithm::PS384 => key.verify(Pss::new::<Sha384>(), &Sha384::digest(msg), sig).is_ok(),
        Algorithm::PS512 => key.verify(Pss::new::<Sha512>(), &Sha512::digest(msg), sig).is_ok(),
        _ => unreachable!(),
    }
}

/// `rsa`'s PKCS#1 v1.5 signature with the key parsed once (jsonwebtoken's `sign` parses the
/// DER and recomputes the CRT values on every call: most of this file's time went there).
fn sign_pkcs1(private: &RsaPrivateKey, alg: Algorithm, msg: &[u8]) -> Vec<u8> {
    match alg {
        Algorithm::RS256 => private.sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(msg)),
        Algorithm::RS384 => private.sign(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(msg)),
        Algorithm::RS512 => private.sign(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(msg)),
        _ => unreachable!(),
    }
    .unwrap()
}

/// Runs `messages` random messages, each as 4 signatures (valid, one bit flipped, one byte
/// short, a random number); returns (signatures compared, valid ones).
fn differential(der: &[u8], alg: Algorithm, messages: usize, seed: u64) -> (usize, usize) {
    let private = RsaPrivateKey::from_pkcs1_der(der).unwrap();
    let public = private.to_public_key();
    let ours = PublicKey::new(&public.n().to_bytes_be(), &public.e().to_bytes_be()).expect("a supported key");
    let k = public.size();
    let mut rng = Rng(seed);
    let (mut compared, mut valid) = (0, 0);
    for i in 0..messages {
        let len = (rng.next() % 300) as usize;
        let msg = rng.bytes(len);
        let sig = sign_pkcs1(&private, alg, &msg);
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

/// Signs an encoded message `em` (k bytes) with the raw private key: s = em^d mod n, through
/// the CRT as signers do (a quarter of the time of one exponentiation by d). Lets the test build
/// PKCS#1 v1.5 and PSS encodings no signer would make.
fn raw_sign(private: &RsaPrivateKey, em: &[u8]) -> Vec<u8> {
    use rsa::traits::PrivateKeyParts;
    let m = rsa::BigUint::from_bytes_be(em);
    // The CRT path refuses m >= n (an encoding with bits above emBits can be): d it is, then.
    let s = match rsa::hazmat::rsa_decrypt::<rsa::rand_core::OsRng>(None, private, &m) {
        Ok(s) => s,
        Err(_) => m.modpow(private.d(), private.n()),
    }
    .to_bytes_be();
    let mut out = vec![0u8; private.size() - s.len()];
    out.extend_from_slice(&s);
    out
}

/// The SHA-256 DigestInfo prefix (RFC 8017 §9.2, note 1).
const SHA256_DIGEST_INFO: [u8; 19] =
    [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];

/// 00 01 PS 00 T, with `ps` bytes of padding and `t` = DigestInfo || digest (and anything after),
/// filled to k bytes.
fn encode(k: usize, ps: &[u8], t: &[u8]) -> Vec<u8> {
    let mut em = vec![0x00, 0x01];
    em.extend_from_slice(ps);
    em.push(0x00);
    em.extend_from_slice(t);
    assert_eq!(em.len(), k, "encoding of the wrong length");
    em
}

/// Near-miss PKCS#1 v1.5 encodings, each signed with the raw private key: every one must be
/// refused by fast_rsa and by RustCrypto's `rsa`, for e = 65537 and for e = 3 (where a lax
/// padding check lets anyone forge a signature, Bleichenbacher 2006).
#[test]
fn near_miss_pkcs1_encodings_are_refused() {
    let e3: &[u8] = include_bytes!("../src/testdata/rsa_e3_private_pkcs1.der");
    for (der, name) in [(RSA2048, "e = 65537"), (e3, "e = 3")] {
        let private = RsaPrivateKey::from_pkcs1_der(der).unwrap();
        let public = private.to_public_key();
        let ours = PublicKey::new(&public.n().to_bytes_be(), &public.e().to_bytes_be()).expect("a supported key");
        let k = public.size();
        let msg = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0";
        let digest = Sha256::digest(msg);
        let t: Vec<u8> = SHA256_DIGEST_INFO.iter().chain(digest.iter()).copied().collect();
        let ps_len = k - 3 - t.len();
        let full_ps = vec![0xffu8; ps_len];
        // The honest encoding verifies: the harness is right.
        let good = raw_sign(&private, &encode(k, &full_ps, &t));
        assert!(ours.verify(Algorithm::RS256, msg, &good), "{name}: the valid encoding");
        assert!(reference(&public, Algorithm::RS256, msg, &good), "{name}: the valid encoding (rsa)");

        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        for at in [0, ps_len / 2, ps_len - 1] {
            let mut ps = full_ps.clone();
            ps[at] = 0xfe;
            cases.push(("a padding byte that is not 0xff", encode(k, &ps, &t)));
        }
        // Short padding: the DigestInfo and digest are followed by bytes of the forger's choice.
        for short in [8, 16, ps_len - 8] {
            let mut tail = t.clone();
            tail.extend(std::iter::repeat_n(0x5a, ps_len - short));
            cases.push(("short padding, bytes after the digest", encode(k, &vec![0xff; short], &tail)));
        }
        let mut tail = t.clone();
        tail.push(0x00);
        cases.push(("one byte after the digest", encode(k, &vec![0xff; ps_len - 1], &tail)));
        for at in [0, 1, 6, 10, 14, 15, 16, 17, 18] {
            let mut wrong = t.clone();
            wrong[at] ^= 0x01;
            cases.push(("a wrong DigestInfo byte", encode(k, &full_ps, &wrong)));
        }
        // DigestInfo without the NULL parameters: another DER spelling, refused.
        let mut no_null =
            vec![0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x04, 0x20];
        no_null.extend_from_slice(&digest);
        cases.push(("DigestInfo without NULL", encode(k, &vec![0xff; k - 3 - no_null.len()], &no_null)));
        let mut other = t.clone();
        other[19] ^= 0x80;
        cases.push(("the digest of another message", encode(k, &full_ps, &other)));
        let mut em = encode(k, &full_ps, &t);
        em[1] = 0x02;
        cases.push(("block type 02", em.clone()));
        em[1] = 0x01;
        em[2 + ps_len] = 0x01;
        cases.push(("no zero separator", em));
        let mut em = vec![0x00, 0x01, 0x00];
        em.extend_from_slice(&t);
        em.resize(k, 0x00);
        cases.push(("no padding at all, zeros after", em));

        for (what, em) in &cases {
            let sig = raw_sign(&private, em);
            assert!(!ours.verify(Algorithm::RS256, msg, &sig), "{name}: {what} was accepted by fast_rsa");
            assert!(!reference(&public, Algorithm::RS256, msg, &sig), "{name}: {what} was accepted by rsa");
        }
        println!("{name}: {} near-miss encodings refused by fast_rsa and rsa", cases.len());
    }
}

// ---- PS256, PS384, PS512: crypto::rsa's EMSA-PSS check against `rsa` ----

/// What a PSS encoding varies in, beyond the honest one: the knobs a forger turns.
#[derive(Clone, Copy)]
struct PssShape {
    salt_len: usize,
    separator: u8,
    trailer: u8,
    /// A 1 in the zero padding, at this index.
    ps_byte: Option<usize>,
    /// The bits above emBits set, or (when emBits is a multiple of 8) m one byte too long.
    top_bits: bool,
    /// H flipped after masking.
    flip_h: bool,
}

/// EMSA-PSS-ENCODE (RFC 8017 §9.1.1), written out here independently of ours, as a k-byte
/// integer for the raw private key.
fn pss_encode<D: Digest>(public: &RsaPublicKey, msg: &[u8], salt: &[u8], shape: PssShape) -> Vec<u8> {
    let h_len = <D as Digest>::output_size();
    let mod_bits = public.n().bits();
    let em_bits = mod_bits - 1;
    let em_len = em_bits.div_ceil(8);
    let h = D::new().chain_update([0u8; 8]).chain_update(D::digest(msg)).chain_update(salt).finalize().to_vec();
    let mut db = vec![0u8; em_len - salt.len() - h_len - 2];
    if let Some(i) = shape.ps_byte {
        db[i] = 1;
    }
    db.push(shape.separator);
    db.extend_from_slice(salt);
    let mut mask = Vec::new();
    for counter in 0u32.. {
        if mask.len() >= db.len() {
            break;
        }
        mask.extend(D::new().chain_update(&h).chain_update(counter.to_be_bytes()).finalize());
    }
    let mut em: Vec<u8> = db.iter().zip(&mask).map(|(d, m)| d ^ m).collect();
    let free = 8 * em_len - em_bits;
    em[0] &= 0xff >> free;
    let mut h = h;
    if shape.flip_h {
        h[3] ^= 0x40;
    }
    em.extend_from_slice(&h);
    em.push(shape.trailer);
    let k = public.size();
    let mut out = vec![0u8; k - em_len];
    out.extend_from_slice(&em);
    if shape.top_bits {
        if free > 0 {
            out[k - em_len] |= 0x80;
        } else {
            out[0] = 1;
        }
    }
    out
}

/// For `messages` random messages per algorithm: jsonwebtoken's own PSS signature, and
/// encodings made here and signed with the raw private key (the honest one; salts of hLen - 1,
/// 0 and hLen + 1 bytes; separator 02; a 1 in the padding; trailer bd; the bits above emBits;
/// H flipped). Every engine that takes the key must agree with `rsa` and with the expected
/// verdict. Returns (compared, valid).
fn pss_differential(der: &[u8], messages: usize, rng: &mut Rng) -> (usize, usize) {
    let private = RsaPrivateKey::from_pkcs1_der(der).unwrap();
    let public = private.to_public_key();
    let (n, e) = (public.n().to_bytes_be(), public.e().to_bytes_be());
    let engines: Vec<PublicKey> =
        [PublicKey::new(&n, &e), PublicKey::with_montgomery28(&n, &e)].into_iter().flatten().collect();
    assert!(!engines.is_empty(), "{}-bit key: taken by an engine", public.n().bits());
    let signing = EncodingKey::from_rsa_der(der);
    let honest = PssShape { salt_len: 0, separator: 1, trailer: 0xbc, ps_byte: None, top_bits: false, flip_h: false };
    let (mut compared, mut valid) = (0, 0);
    for alg in [Algorithm::PS256, Algorithm::PS384, Algorithm::PS512] {
        let h_len = match alg {
            Algorithm::PS256 => 32,
            Algorithm::PS384 => 48,
            _ => 64,
        };
        let encode = |msg: &[u8], salt: &[u8], shape: PssShape| match alg {
            Algorithm::PS256 => pss_encode::<Sha256>(&public, msg, salt, shape),
            Algorithm::PS384 => pss_encode::<Sha384>(&public, msg, salt, shape),
            _ => pss_encode::<Sha512>(&public, msg, salt, shape),
        };
        for i in 0..messages {
            let len = (rng.next() % 300) as usize;
            let msg = rng.bytes(len);
            let salt = rng.bytes(h_len + 1);
            let signed = jsonwebtoken::crypto::sign(&msg, &signing, alg).unwrap();
            let mut cases = vec![(
                "jsonwebtoken's signature",
                jwt_guard::token::base64url::decode(signed.as_bytes()).unwrap(),
                true,
            )];
            let shapes = [
                ("honest", PssShape { salt_len: h_len, ..honest }, true),
                ("salt hLen - 1", PssShape { salt_len: h_len - 1, ..honest }, false),
                ("no salt", honest, false),
                ("salt hLen + 1", PssShape { salt_len: h_len + 1, ..honest }, false),
                ("separator 02", PssShape { salt_len: h_len, separator: 2, ..honest }, false),
                ("a 1 in the padding", PssShape { salt_len: h_len, ps_byte: Some(i % 7), ..honest }, false),
                ("trailer bd", PssShape { salt_len: h_len, trailer: 0xbd, ..honest }, false),
                ("bits above emBits", PssShape { salt_len: h_len, top_bits: true, ..honest }, false),
                ("H flipped", PssShape { salt_len: h_len, flip_h: true, ..honest }, false),
            ];
            for (what, shape, want) in shapes {
                cases.push((what, raw_sign(&private, &encode(&msg, &salt[..shape.salt_len], shape)), want));
            }
            for (what, sig, want) in &cases {
                let lax = *what == "bits above emBits" && public.n().bits() % 8 == 1;
                let what = format!("{alg:?} {}-bit message {i}: {what}", public.n().bits());
                // With emBits a multiple of 8, `rsa` 0.9 drops m's first byte unread, so it
                // takes m = 2^(8 emLen) + EM (when below n). RFC 8017 §8.1.2 step 2c refuses it
                // (I2OSP: "integer too large"), as BoringSSL, and so Envoy's jwt_authn, does.
                if !lax {
                    assert_eq!(reference(&public, alg, &msg, sig), *want, "{what}: rsa");
                }
                for engine in &engines {
                    assert_eq!(engine.verify(alg, &msg, sig), *want, "{what}");
                    assert!(!engine.verify(alg, &[&msg[..], b"x"].concat(), sig), "{what}: another message");
                }
                compared += 1;
                valid += usize::from(*want);
            }
        }
    }
    (compared, valid)
}

#[test]
fn pss_agrees_with_rsa_on_honest_and_forged_encodings() {
    let mut rng = Rng(0xd1b5_4a32_d192_ed03);
    let (mut compared, mut valid) = (0, 0);
    for (der, messages) in [
        (RSA2048, 40),
        (&include_bytes!("../src/testdata/rsa2049_private_pkcs1.der")[..], 10),
        (&include_bytes!("../src/testdata/rsa2056_private_pkcs1.der")[..], 10),
        (&include_bytes!("../src/testdata/rsa3072_private_pkcs1.der")[..], 5),
        (&include_bytes!("../src/testdata/rsa4096_private_pkcs1.der")[..], 5),
        (&include_bytes!("../src/testdata/rsa_e3_private_pkcs1.der")[..], 5),
    ] {
        let (c, v) = pss_differential(der, messages, &mut rng);
        compared += c;
        valid += v;
    }
    println!("PS256/384/512: {compared} signatures compared over 6 keys (2048 to 4096 bits, 2049 and 2056 among them), {valid} valid, all as RFC 8017 says (and as rsa says, but where it is lax)");
    assert_eq!((compared, valid), (75 * 3 * 10, 75 * 3 * 2));
}
