//! Faster RSA verification, PKCS#1 v1.5 (RS256/384/512) and PSS (PS256/384/512), used by
//! `crypto::provider` for keys prepared when their key set is adopted.
//!
//! Why: `rsa` 0.9 rebuilds the public key and its Montgomery constants on every verify and uses
//! a general-purpose bignum. Here the Montgomery parameters of each key are computed once and
//! kept, and the public exponent 65537 (or 3) is a fixed square-and-multiply chain. Two engines
//! do the arithmetic: `rsa_montgomery` (28-bit limbs, wasm SIMD) in wasm builds, and
//! crypto-bigint's fixed-size Montgomery multiplication everywhere else (natively it is the
//! faster one). This file adds the PKCS#1 v1.5 encoding check (RFC 8017 §8.2.2) and the PSS
//! one (§9.1.2): `rsa` 0.9 checks PSS on its general-purpose bignum, about 12 times slower in V8.

pub use super::big_endian::strip_leading_zeros;
use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::{Encoding, Limb, Uint, U2048, U3072, U4096};
use jsonwebtoken::Algorithm;
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::rsa_montgomery::Modulus as Montgomery28;

/// DER `DigestInfo` prefixes (RFC 8017 §9.2, note 1).
const SHA256_PREFIX: [u8; 19] =
    [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];
const SHA384_PREFIX: [u8; 19] =
    [0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30];
const SHA512_PREFIX: [u8; 19] =
    [0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exponent {
    F4,
    Three,
}

impl Exponent {
    /// e = 2^q + 1.
    fn q(self) -> u32 {
        match self {
            Exponent::F4 => 16,
            Exponent::Three => 1,
        }
    }

    fn of(e: &[u8]) -> Option<Exponent> {
        match strip_leading_zeros(e) {
            [0x01, 0x00, 0x01] => Some(Exponent::F4),
            [0x03] => Some(Exponent::Three),
            _ => None,
        }
    }
}

/// The one public-exponent rule: 65537 or 3. Other exponents are refused when a key set is
/// parsed, and this verifier takes exactly these.
pub fn is_supported_exponent(e: &[u8]) -> bool {
    Exponent::of(e).is_some()
}

struct Monty<const L: usize> {
    n: Uint<L>,
    params: DynResidueParams<L>,
}

impl<const L: usize> Monty<L>
where
    Uint<L>: Encoding,
{
    fn new(n: &[u8]) -> Option<Monty<L>> {
        if n.len() != L * Limb::BYTES {
            return None;
        }
        let n = Uint::<L>::from_be_slice(n);
        // `new` panics on an even modulus; a JWKS is untrusted input.
        #[allow(deprecated)]
        let params = Option::from(DynResidueParams::new_checked(&n))?;
        Some(Monty { n, params })
    }

    /// `s^e mod n` as big-endian bytes; `None` unless `s` is a number below `n` of the
    /// modulus' length (RFC 8017 §5.2.2).
    fn public_op(&self, s: &[u8], e: Exponent) -> Option<Vec<u8>> {
        if s.len() != L * Limb::BYTES {
            return None;
        }
        let s = Uint::<L>::from_be_slice(s);
        if s >= self.n {
            return None;
        }
        let x = DynResidue::new(&s, self.params);
        let m = match e {
            Exponent::F4 => {
                let mut r = x;
                for _ in 0..16 {
                    r = r.square();
                }
                r.mul(&x)
            }
            Exponent::Three => x.square().mul(&x),
        };
        Some(m.retrieve().to_be_bytes().as_ref().to_vec())
    }
}

enum Modulus {
    Montgomery28(Box<Montgomery28>),
    R2048(Box<Monty<{ U2048::LIMBS }>>),
    R3072(Box<Monty<{ U3072::LIMBS }>>),
    R4096(Box<Monty<{ U4096::LIMBS }>>),
}

/// An RSA public key with its Montgomery parameters, e = 65537 or 3. With `rsa_montgomery`, any
/// modulus of 2048 to 4096 bits; with crypto-bigint, 2048-, 3072- and 4096-bit moduli (the sizes
/// issuers use). Other keys stay with `rsa`.
pub struct PublicKey {
    modulus: Modulus,
    e: Exponent,
    /// The modulus' length in bits (modBits in RFC 8017), which PSS needs.
    bits: usize,
}

/// The length in bits of a big-endian integer.
fn bit_length(n: &[u8]) -> usize {
    match strip_leading_zeros(n) {
        [] => 0,
        [top, rest @ ..] => 8 * rest.len() + (8 - top.leading_zeros() as usize),
    }
}

impl PublicKey {
    /// The key on the faster engine for this build.
    pub fn new(n: &[u8], e: &[u8]) -> Option<PublicKey> {
        if cfg!(target_arch = "wasm32") {
            PublicKey::with_montgomery28(n, e)
        } else {
            PublicKey::with_crypto_bigint(n, e)
        }
    }

    /// The key on `rsa_montgomery`. Public so the differential tests can run both engines on
    /// every target.
    pub fn with_montgomery28(n: &[u8], e: &[u8]) -> Option<PublicKey> {
        let e = Exponent::of(e)?;
        let modulus = Modulus::Montgomery28(Box::new(Montgomery28::new(n)?));
        Some(PublicKey { modulus, e, bits: bit_length(n) })
    }

    /// The key on crypto-bigint.
    pub fn with_crypto_bigint(n: &[u8], e: &[u8]) -> Option<PublicKey> {
        let e = Exponent::of(e)?;
        let n = strip_leading_zeros(n);
        let modulus = match n.len() {
            256 => Modulus::R2048(Box::new(Monty::new(n)?)),
            384 => Modulus::R3072(Box::new(Monty::new(n)?)),
            512 => Modulus::R4096(Box::new(Monty::new(n)?)),
            _ => return None,
        };
        Some(PublicKey { modulus, e, bits: bit_length(n) })
    }

    /// The modulus length in bytes (k in RFC 8017).
    pub fn size(&self) -> usize {
        match &self.modulus {
            Modulus::Montgomery28(m) => m.size(),
            Modulus::R2048(_) => 256,
            Modulus::R3072(_) => 384,
            Modulus::R4096(_) => 512,
        }
    }

    /// The encoded message `sig^e mod n` (RFC 8017 §8.2.2 step 2), `None` unless `sig` is k
    /// bytes and below n. Public for the differential tests.
    pub fn public_op(&self, sig: &[u8]) -> Option<Vec<u8>> {
        match &self.modulus {
            Modulus::Montgomery28(m) => m.pow_2q_plus_1(sig, self.e.q()),
            Modulus::R2048(m) => m.public_op(sig, self.e),
            Modulus::R3072(m) => m.public_op(sig, self.e),
            Modulus::R4096(m) => m.public_op(sig, self.e),
        }
    }

    /// Verification of `msg` for RS256/384/512 (RSASSA-PKCS1-v1_5, RFC 8017 §8.2.2) and
    /// PS256/384/512 (RSASSA-PSS, §8.1.2); `false` for any other algorithm.
    pub fn verify(&self, alg: Algorithm, msg: &[u8], sig: &[u8]) -> bool {
        let (prefix, digest): (&[u8], Vec<u8>) = match alg {
            Algorithm::RS256 => (&SHA256_PREFIX, Sha256::digest(msg).to_vec()),
            Algorithm::RS384 => (&SHA384_PREFIX, Sha384::digest(msg).to_vec()),
            Algorithm::RS512 => (&SHA512_PREFIX, Sha512::digest(msg).to_vec()),
            Algorithm::PS256 => return self.verify_pss::<Sha256>(msg, sig),
            Algorithm::PS384 => return self.verify_pss::<Sha384>(msg, sig),
            Algorithm::PS512 => return self.verify_pss::<Sha512>(msg, sig),
            _ => return false,
        };
        let k = self.size();
        let t_len = prefix.len() + digest.len();
        if sig.len() != k || k < t_len + 11 {
            return false;
        }
        let Some(em) = self.public_op(sig) else { return false };
        let ps_end = k - t_len - 1;
        em[0] == 0x00
            && em[1] == 0x01
            && em[2..ps_end].iter().all(|b| *b == 0xff)
            && em[ps_end] == 0x00
            && em[ps_end + 1..ps_end + 1 + prefix.len()] == *prefix
            && em[k - digest.len()..] == digest[..]
    }

    /// RSASSA-PSS verification with EMSA-PSS-VERIFY (RFC 8017 §9.1.2), MGF1 with the same
    /// hash `D` and a salt as long as its output, as JWS fixes them (RFC 7518 §3.5).
    fn verify_pss<D: Digest>(&self, msg: &[u8], sig: &[u8]) -> bool {
        let h_len = <D as Digest>::output_size();
        let s_len = h_len;
        if sig.len() != self.size() || self.bits < 2 {
            return false;
        }
        let Some(m) = self.public_op(sig) else { return false };
        // emBits = modBits - 1; EM = I2OSP(m, emLen), one byte shorter than m exactly when
        // emBits is a multiple of 8, and then m's first byte must be 0.
        let em_bits = self.bits - 1;
        let em_len = em_bits.div_ceil(8);
        let em = match (m.len() - em_len.min(m.len()), m.first()) {
            (0, _) => &m[..],
            (1, Some(0)) => &m[1..],
            _ => return false,
        };
        if em.len() != em_len || em_len < h_len + s_len + 2 || em[em_len - 1] != 0xbc {
            return false;
        }
        let (masked_db, h) = em[..em_len - 1].split_at(em_len - h_len - 1);
        // The bits of EM above emBits must be zero.
        let top = 0xffu8 >> (8 * em_len - em_bits);
        if masked_db[0] & !top != 0 {
            return false;
        }
        let mut db = masked_db.to_vec();
        for (counter, chunk) in (0u32..).zip(db.chunks_mut(h_len)) {
            let mask = D::new().chain_update(h).chain_update(counter.to_be_bytes()).finalize();
            chunk.iter_mut().zip(mask.iter()).for_each(|(b, m)| *b ^= m);
        }
        db[0] &= top;
        let ps_len = em_len - h_len - s_len - 2;
        if db[..ps_len].iter().any(|b| *b != 0) || db[ps_len] != 0x01 {
            return false;
        }
        let salt = &db[db.len() - s_len..];
        let expected = D::new().chain_update([0u8; 8]).chain_update(D::digest(msg)).chain_update(salt).finalize();
        expected[..] == *h
    }
}
