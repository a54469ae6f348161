//! Faster ES256 and ES384 verification, used by `crypto::provider` for keys prepared when their
//! key set is adopted.
//!
//! Why: the RustCrypto verifiers compute `u1·G + u2·Q` as two constant-time scalar
//! multiplications (for P-256, about 512 doublings and 130 additions), which costs about
//! 0.8 ms for ES256 and 7 ms for ES384 inside V8. Verification handles only public values, so
//! it can be variable-time: here both points get a table of their multiples, built once (G per
//! VM, Q per key), and a verify is one addition per non-zero signed byte of u1 and u2.
//! All field and group arithmetic is the curve crate's (`p256`, `p384`); this module only
//! chooses which points to add. The signature equation and its checks are those of
//! `ecdsa::hazmat::verify_prehashed`.

/// One module per curve: `$curve` is the curve crate, `$bits` its scalar size.
macro_rules! curve {
    ($module:ident, $curve:ident, $uint:ident, $hash:ident, $bits:expr) => {
        pub mod $module {
            use std::rc::Rc;

            use sha2::{$hash, Digest};
            use $curve::ecdsa::Signature;
            use $curve::elliptic_curve::group::Group;
            use $curve::elliptic_curve::ops::{Invert, Reduce};
            use $curve::elliptic_curve::point::AffineCoordinates;
            use $curve::{$uint, AffinePoint, FieldBytes, ProjectivePoint, Scalar};

            /// Bits per window. Signed digits in [-128, 128] make 128 multiples per window.
            const WINDOW_BITS: usize = 8;
            const MULTIPLES: usize = 1 << (WINDOW_BITS - 1);
            /// The signed recoding can carry into one extra window.
            const WINDOWS: usize = $bits / WINDOW_BITS + 1;

            /// `j · 2^(8i) · P` for every window `i` and `j` in 1..=128 (P-256: 4,224 points, about
            /// 400 KB; P-384: 6,272 points, about 900 KB), built with one addition per point. The points
            /// stay projective: the 0.13 curve crates offer no batch inversion to make them affine
            /// cheaply, and their complete addition costs barely more than the mixed one.
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

                /// Adds `k · P` to `acc`, one addition per non-zero digit.
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

            /// The scalar as signed base-256 digits in [-128, 127] (the last is 0 or 1), so that
            /// `k = Σ d_i · 256^i`. Negating a point is free, which halves the table.
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

            /// A public key on this curve with the table of its multiples.
            pub struct PublicKey {
                table: Table,
            }

            impl PublicKey {
                /// From an uncompressed or compressed SEC1 point; `None` for anything that is not a
                /// point on the curve other than the identity, as the curve crate's `PublicKey` decides.
                pub fn from_sec1_bytes(bytes: &[u8]) -> Option<PublicKey> {
                    let q = $curve::PublicKey::from_sec1_bytes(bytes).ok()?;
                    // The generator's table too is built here, with the first key, not on the
                    // first request.
                    let _ = generator_table();
                    Some(PublicKey { table: Table::new(&q.to_projective()) })
                }

                /// ECDSA with this curve's hash, signature `r || s` (RFC 7518 §3.4).
                pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
                    verify_with(msg, sig, |point, u2| self.table.add_multiple(point, u2))
                }
            }

            /// ECDSA for a key used once (a DPoP proof's own key): a table of multiples would
            /// cost more than it saves, so `u2·Q` is a variable-time double-and-add over the
            /// width-5 NAF of `u2` (about `$bits` doublings and `$bits`/6 additions, with Q's odd
            /// multiples up to 15Q built per call); `u1·G` still uses the generator's table.
            /// About half the cost of the constant-time verifier, whose two scalar
            /// multiplications each double `$bits` times (a whole ES256 DPoP proof check in V8:
            /// 832 -> 441 µs). `None` for a point not on the curve.
            pub fn verify_once(sec1: &[u8], msg: &[u8], sig: &[u8]) -> Option<bool> {
                let q = $curve::PublicKey::from_sec1_bytes(sec1).ok()?.to_projective();
                Some(verify_with(msg, sig, |point, u2| *point += multiply_vartime(&q, u2)))
            }

            /// The signature equation and its checks, as `ecdsa::hazmat::verify_prehashed`;
            /// `add_u2q` adds `u2·Q` to a point.
            fn verify_with(msg: &[u8], sig: &[u8], add_u2q: impl FnOnce(&mut ProjectivePoint, &Scalar)) -> bool {
                // `from_slice` refuses r or s outside [1, n-1].
                let Ok(sig) = Signature::from_slice(sig) else { return false };
                let (r, s) = sig.split_scalars();
                let z = <Scalar as Reduce<$uint>>::reduce_bytes(&$hash::digest(msg));
                let s_inv = *s.invert_vartime();
                let u1 = z * s_inv;
                let u2 = *r * s_inv;
                let mut point = ProjectivePoint::IDENTITY;
                generator_table().add_multiple(&mut point, &u1);
                add_u2q(&mut point, &u2);
                let affine: AffinePoint = point.to_affine();
                if bool::from(affine.is_identity()) {
                    return false;
                }
                let x: FieldBytes = affine.x();
                *r == <Scalar as Reduce<$uint>>::reduce_bytes(&x)
            }

            /// NAF window width: odd digits in [-15, 15], so 8 precomputed multiples.
            const NAF_WIDTH: usize = 5;
            /// u64 words of a scalar, plus one so a window may read past the top bit.
            const WORDS: usize = $bits / 64 + 2;

            /// `k` in width-5 non-adjacent form, least significant digit first: every non-zero
            /// digit is odd and followed by at least four zeros (the method of
            /// curve25519-dalek's `Scalar::non_adjacent_form`).
            fn naf(k: &Scalar) -> [i8; $bits + 1] {
                let bytes = k.to_bytes();
                let mut words = [0u64; WORDS];
                for (i, byte) in bytes.iter().rev().enumerate() {
                    words[i / 8] |= u64::from(*byte) << (8 * (i % 8));
                }
                let width = 1u64 << NAF_WIDTH;
                let mut digits = [0i8; $bits + 1];
                let (mut pos, mut carry) = (0usize, 0u64);
                while pos <= $bits {
                    let (word, bit) = (pos / 64, pos % 64);
                    let mut window = words[word] >> bit;
                    if bit > 64 - NAF_WIDTH {
                        window |= words[word + 1] << (64 - bit);
                    }
                    let window = carry + (window & (width - 1));
                    if window & 1 == 0 {
                        pos += 1;
                        continue;
                    }
                    // Digits are below 2^4 in magnitude, so they fit an i8.
                    if window < width / 2 {
                        carry = 0;
                        digits[pos] = window as i8;
                    } else {
                        carry = 1;
                        digits[pos] = window as i8 - width as i8;
                    }
                    pos += NAF_WIDTH;
                }
                digits
            }

            /// `k·P`, variable-time: for public values only. Public for its unit test and the
            /// `naf` fuzz target, which compare it with the curve crate's multiplication.
            pub fn multiply_vartime(p: &ProjectivePoint, k: &Scalar) -> ProjectivePoint {
                // P, 3P, 5P, ..., 15P.
                let twice = p.double();
                let mut odd = [*p; 1 << (NAF_WIDTH - 2)];
                for i in 1..odd.len() {
                    odd[i] = odd[i - 1] + twice;
                }
                let mut acc = ProjectivePoint::IDENTITY;
                let mut started = false;
                for digit in naf(k).iter().rev() {
                    if started {
                        acc = acc.double();
                    }
                    let Some(point) = odd.get(usize::from(digit.unsigned_abs() / 2)) else { continue };
                    if *digit > 0 {
                        acc += point;
                        started = true;
                    } else if *digit < 0 {
                        acc -= point;
                        started = true;
                    }
                }
                acc
            }

            thread_local! {
                static GENERATOR: Rc<Table> = Rc::new(Table::new(&ProjectivePoint::GENERATOR));
            }

            fn generator_table() -> Rc<Table> {
                GENERATOR.with(Rc::clone)
            }
        }
    };
}

curve!(es256, p256, U256, Sha256, 256);
curve!(es384, p384, U384, Sha384, 384);
