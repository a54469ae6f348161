//! Faster ES256 verification, plugged into jsonwebtoken through its `CryptoProvider`.
//!
//! Why: `p256`'s verifier computes `u1·G + u2·Q` as two constant-time scalar multiplications
//! (about 512 doublings and 130 additions), which costs about 0.8 ms inside V8. Verification
//! handles only public values, so it can be variable-time: here both points get a table of
//! their multiples, built once (G per VM, Q per key), and a verify is about 66 mixed additions.
//! All field and group arithmetic is `p256`'s; this module only chooses which points to add.
//! The signature equation and its checks are those of `ecdsa::hazmat::verify_prehashed`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use p256::ecdsa::Signature;
use p256::elliptic_curve::group::Group;
use p256::elliptic_curve::ops::{Invert, Reduce};
use p256::elliptic_curve::point::AffineCoordinates;
use p256::{AffinePoint, FieldBytes, ProjectivePoint, Scalar, U256};
use sha2::{Digest, Sha256};

/// Bits per window. Signed digits in [-128, 128] make 128 multiples per window.
const WINDOW_BITS: usize = 8;
const MULTIPLES: usize = 1 << (WINDOW_BITS - 1);
/// 256-bit scalars; the signed recoding can carry into one extra window.
const WINDOWS: usize = 256 / WINDOW_BITS + 1;

/// `j · 2^(8i) · P` for every window `i` and `j` in 1..=128: about 400 KB, built with 4,224
/// additions. The points stay projective: p256 0.13 offers no batch inversion to make them
/// affine cheaply, and its complete addition costs barely more than the mixed one.
pub struct Table {
    points: Vec<ProjectivePoint>,
}

impl Table {
    pub fn new(p: &ProjectivePoint) -> Table {
        let mut points = Vec::with_capacity(WINDOWS * MULTIPLES);
        let mut base = *p;
        for _ in 0..WINDOWS {
            let start = points.len();
            let mut multiple = base;
            for _ in 0..MULTIPLES {
                points.push(multiple);
                multiple += base;
            }
            // 128·base doubled is the next window's base, 256·base.
            base = points[start + MULTIPLES - 1].double();
        }
        Table { points }
    }

    /// Adds `k · P` to `acc`, one mixed addition per non-zero digit.
    fn add_multiple(&self, acc: &mut ProjectivePoint, k: &Scalar) {
        for (window, digit) in signed_digits(k).iter().enumerate() {
            let magnitude = digit.unsigned_abs() as usize;
            if magnitude == 0 {
                continue;
            }
            let Some(point) = self.points.get(window * MULTIPLES + magnitude - 1) else { continue };
            if *digit < 0 {
                *acc += -*point;
            } else {
                *acc += point;
            }
        }
    }
}

/// The scalar as 33 signed base-256 digits in [-128, 127] (the last is 0 or 1), so that
/// `k = Σ d_i · 256^i`. Negating an affine point is free, which halves the table.
fn signed_digits(k: &Scalar) -> [i16; WINDOWS] {
    let bytes = k.to_bytes();
    let mut digits = [0i16; WINDOWS];
    let mut carry = 0i16;
    for (i, byte) in bytes.iter().rev().enumerate() {
        let d = i16::from(*byte) + carry;
        if d >= MULTIPLES as i16 {
            digits[i] = d - 256;
            carry = 1;
        } else {
            digits[i] = d;
            carry = 0;
        }
    }
    digits[WINDOWS - 1] = carry;
    digits
}

/// A P-256 public key with the table of its multiples.
pub struct PublicKey {
    table: Table,
}

impl PublicKey {
    /// From an uncompressed or compressed SEC1 point; `None` for anything that is not a
    /// point on the curve other than the identity, as `p256::PublicKey` decides.
    pub fn from_sec1_bytes(bytes: &[u8]) -> Option<PublicKey> {
        let q = p256::PublicKey::from_sec1_bytes(bytes).ok()?;
        Some(PublicKey { table: Table::new(&q.to_projective()) })
    }

    /// ES256: ECDSA over P-256 with SHA-256, signature `r || s` (RFC 7518 §3.4).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        // `from_slice` refuses r or s outside [1, n-1].
        let Ok(sig) = Signature::from_slice(sig) else { return false };
        let (r, s) = sig.split_scalars();
        let z = <Scalar as Reduce<U256>>::reduce_bytes(&Sha256::digest(msg));
        let s_inv = *s.invert_vartime();
        let u1 = z * s_inv;
        let u2 = *r * s_inv;
        let mut point = ProjectivePoint::IDENTITY;
        generator_table().add_multiple(&mut point, &u1);
        self.table.add_multiple(&mut point, &u2);
        let affine: AffinePoint = point.to_affine();
        if bool::from(affine.is_identity()) {
            return false;
        }
        let x: FieldBytes = affine.x();
        *r == <Scalar as Reduce<U256>>::reduce_bytes(&x)
    }
}

thread_local! {
    static GENERATOR: Rc<Table> = Rc::new(Table::new(&ProjectivePoint::GENERATOR));
    /// Keys by their SEC1 bytes; see `fast_rsa::KEYS`.
    static KEYS: RefCell<HashMap<Vec<u8>, Rc<PublicKey>>> = RefCell::new(HashMap::new());
}

fn generator_table() -> Rc<Table> {
    GENERATOR.with(Rc::clone)
}

/// Each table is about 300 KB; a few issuers across a rotation fit. Cleared when full.
const MAX_KEYS: usize = 16;

pub fn cached_key(sec1: &[u8]) -> Option<Rc<PublicKey>> {
    KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        if let Some(k) = keys.get(sec1) {
            return Some(k.clone());
        }
        let key = Rc::new(PublicKey::from_sec1_bytes(sec1)?);
        if keys.len() >= MAX_KEYS {
            keys.clear();
        }
        keys.insert(sec1.to_vec(), key.clone());
        Some(key)
    })
}
