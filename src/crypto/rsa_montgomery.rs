//! The RSA public operation `s^e mod n` (e = 2^q + 1: 65537 or 3) written for wasm's strengths.
//! In V8 it takes an RSA-2048 verify from about 118 µs (crypto-bigint) to about 45 µs.
//!
//! Why this shape (measured before it was written; see issue 11):
//! - **28-bit limbs in 32-bit words.** Every product is below 2^56, so a whole column of a
//!   product-scanning (Comba) Montgomery multiplication, up to 147 products for a 4096-bit
//!   modulus, sums in one u64 with no carry chain inside the loop.
//! - **wasm SIMD.** With the second operand stored reversed, each column is a contiguous dot
//!   product, and `i64x2.extmul_{low,high}_i32x4_u` gives four 32x32->64 products per pair of
//!   instructions. Without SIMD this design is only about 1.25x faster than crypto-bigint, so
//!   native builds keep crypto-bigint (`crypto::rsa`).
//! - **SIMD for these functions only** (`#[target_feature(enable = "simd128")]`), not for the
//!   whole module: with `+simd128` crate-wide, LLVM vectorizes p256's field arithmetic and the
//!   JSON parsing into i64x2 code that V8 runs slowly (ES256 verify 275 µs against 168 µs, parse
//!   11 µs against 7 µs, `make bench-core` in V8 on 2026-12-01).
//! - **R = 2^(28 L) > 4n** (L limbs), so every Montgomery product of inputs below 2n is again
//!   below 2n: no subtraction inside the exponentiation, one compare at the end.
//! - **e = 2^q + 1**: one multiplication into Montgomery form, q squarings (each cross product
//!   computed once), and a last multiplication by the plain input that also leaves Montgomery
//!   form: 18 operations for 65537.
//!
//! Verification handles public values only, so nothing here needs to be constant time; it
//! needs to be right, which `tests/rsa_differential.rs` checks natively and inside V8.

/// Bits per limb.
const LIMB_BITS: u32 = 28;
const MASK: u32 = (1 << LIMB_BITS) - 1;
/// Moduli this takes: what key sets accept.
pub const MIN_BITS: usize = 2048;
pub const MAX_BITS: usize = 4096;
/// Limbs for a 4096-bit modulus: 28 * 147 = 4116 >= 4096 + 2, so R > 4n.
const MAX_LIMBS: usize = (MAX_BITS + 2).div_ceil(LIMB_BITS as usize);

type Limbs = [u32; MAX_LIMBS];

/// A modulus with its Montgomery constants, set up once per key.
pub struct Modulus {
    /// Limbs in use: the least L with 28 L >= bits(n) + 2.
    len: usize,
    /// n, least significant limb first.
    n: Box<Limbs>,
    /// n reversed (`n_rev[i] = n[len - 1 - i]`), so a column of m * n is a contiguous dot product.
    n_rev: Box<Limbs>,
    /// -n^-1 mod 2^28.
    n0_inv: u32,
    /// R^2 mod n, to enter Montgomery form with one multiplication.
    rr: Box<Limbs>,
    /// n big-endian without leading zeros: its length is k (RFC 8017), and `s < n` is a byte
    /// comparison.
    be: Vec<u8>,
}

impl Modulus {
    /// `None` unless `n` (big-endian, leading zeros allowed) is odd and 2048 to 4096 bits long.
    pub fn new(n: &[u8]) -> Option<Modulus> {
        let be = super::big_endian::strip_leading_zeros(n).to_vec();
        let bits = (be.len() * 8).checked_sub(be.first()?.leading_zeros() as usize)?;
        if !(MIN_BITS..=MAX_BITS).contains(&bits) || be.last()? & 1 == 0 {
            return None;
        }
        let len = (bits + 2).div_ceil(LIMB_BITS as usize);
        let n_limbs = from_be(&be);
        let mut n_rev = [0; MAX_LIMBS];
        for (i, limb) in n_limbs[..len].iter().enumerate() {
            n_rev[len - 1 - i] = *limb;
        }
        // Newton's iteration for n0^-1 mod 2^32: an odd n0 is its own inverse mod 8, and each
        // step doubles the correct bits (3, 6, 12, 24, 48).
        let n0 = n_limbs[0];
        let mut inv = n0;
        for _ in 0..4 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inv)));
        }
        let mut m = Modulus {
            len,
            n: Box::new(n_limbs),
            n_rev: Box::new(n_rev),
            n0_inv: inv.wrapping_neg() & MASK,
            rr: Box::new([0; MAX_LIMBS]),
            be,
        };
        m.rr = Box::new(m.r_squared(bits));
        Some(m)
    }

    /// k, the modulus length in bytes.
    pub fn size(&self) -> usize {
        self.be.len()
    }

    /// R^2 mod n = Mont(2^28)^L in Montgomery arithmetic: about 60 doublings to reach
    /// 2^(28 L + 28) mod n = Mont(2^28), then a square-and-multiply by L (about 10 products),
    /// instead of 28 L more doublings.
    fn r_squared(&self, bits: usize) -> Limbs {
        let mut x = [0; MAX_LIMBS];
        let top = bits - 1;
        x[top / LIMB_BITS as usize] = 1 << (top % LIMB_BITS as usize);
        for _ in top..(self.len + 1) * LIMB_BITS as usize {
            self.double_mod(&mut x);
        }
        let base = x;
        let mut acc = x;
        for bit in (0..usize::BITS - 1 - self.len.leading_zeros()).rev() {
            acc = self.square(&acc);
            if self.len >> bit & 1 == 1 {
                acc = self.mul(&acc, &base);
            }
        }
        self.reduce(&mut acc);
        acc
    }

    /// x = 2x mod n, for x < n.
    fn double_mod(&self, x: &mut Limbs) {
        let mut carry = 0;
        for limb in x[..self.len].iter_mut() {
            let v = (*limb << 1) | carry;
            carry = v >> LIMB_BITS;
            *limb = v & MASK;
        }
        self.reduce(x);
    }

    /// x = x - n if x >= n; x < 2n.
    fn reduce(&self, x: &mut Limbs) {
        let len = self.len;
        let below = x[..len].iter().rev().cmp(self.n[..len].iter().rev()) == std::cmp::Ordering::Less;
        if below {
            return;
        }
        let mut borrow = 0u32;
        for (xi, ni) in x[..len].iter_mut().zip(&self.n[..len]) {
            let v = xi.wrapping_sub(*ni).wrapping_sub(borrow);
            borrow = v >> 31;
            *xi = v & MASK;
        }
    }

    /// a * b / R mod n (below 2n for a, b below 2n): product scanning, column by column. Column
    /// k's a * b and m * n terms cover the same index ranges (m_k is still 0 when column k is
    /// summed), so one fused dot product does both.
    #[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
    fn mul(&self, a: &Limbs, b: &Limbs) -> Limbs {
        let len = self.len;
        let mut b_rev = [0; MAX_LIMBS];
        for (i, limb) in b[..len].iter().enumerate() {
            b_rev[len - 1 - i] = *limb;
        }
        let n_rev = &self.n_rev[..len];
        self.reduce_columns(|k, m| {
            let (lo, rev) = if k < len { (0, len - 1 - k) } else { (k + 1 - len, 0) };
            let hi = (k + 1).min(len);
            let width = hi - lo;
            dot2(&a[lo..hi], &b_rev[rev..rev + width], &m[lo..hi], &n_rev[rev..rev + width])
        })
    }

    /// a * a / R mod n: each cross product a_i a_j (i < j) computed once and doubled.
    #[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
    fn square(&self, a: &Limbs) -> Limbs {
        let len = self.len;
        let mut a_rev = [0; MAX_LIMBS];
        for (i, limb) in a[..len].iter().enumerate() {
            a_rev[len - 1 - i] = *limb;
        }
        let n_rev = &self.n_rev[..len];
        self.reduce_columns(|k, m| {
            // a_i a_(k-i) for lo <= i < half, and a_(k/2)^2 when k is even.
            let lo = (k + 1).saturating_sub(len);
            let half = k.div_ceil(2);
            let start = (len - 1 + lo) - k; // where a_(k-lo) sits in a_rev (lo >= k + 1 - len)
            let cross = if lo < half { dot(&a[lo..half], &a_rev[start..start + half - lo]) } else { 0 };
            let diagonal = if k % 2 == 0 { u64::from(a[k / 2]) * u64::from(a[k / 2]) } else { 0 };
            let (mlo, rev) = if k < len { (0, len - 1 - k) } else { (lo, 0) };
            let hi = (k + 1).min(len);
            let mn = dot(&m[mlo..hi], &n_rev[rev..rev + hi - mlo]);
            2 * u128::from(cross) + u128::from(diagonal) + u128::from(mn)
        })
    }

    /// The Montgomery reduction shared by `mul` and `square`: `column(k, m)` is the k-th column
    /// of the product plus that of m * n (with m_k still 0), and the result is the high half.
    #[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"), inline)]
    #[cfg_attr(not(target_arch = "wasm32"), inline(always))]
    fn reduce_columns(&self, column: impl Fn(usize, &Limbs) -> u128) -> Limbs {
        let len = self.len;
        let n0 = u64::from(self.n[0]);
        let mut m = [0u32; MAX_LIMBS];
        let mut out = [0u32; MAX_LIMBS];
        let mut t: u128 = 0;
        for k in 0..len {
            t += column(k, &m);
            // m_k makes the column divisible by 2^28.
            let mk = (t as u32).wrapping_mul(self.n0_inv) & MASK;
            m[k] = mk;
            t += u128::from(u64::from(mk) * n0);
            t >>= LIMB_BITS;
        }
        for (k, limb) in (len..2 * len - 1).zip(out.iter_mut()) {
            t += column(k, &m);
            *limb = t as u32 & MASK;
            t >>= LIMB_BITS;
        }
        // The result is below 2n < 2^(28 L - 1), so what is left fits the top limb.
        out[len - 1] = t as u32;
        out
    }

    /// `s^(2^q + 1) mod n` as k big-endian bytes; `None` unless `s` is k bytes and below n
    /// (RFC 8017 §5.2.2).
    pub fn pow_2q_plus_1(&self, s: &[u8], q: u32) -> Option<Vec<u8>> {
        if s.len() != self.be.len() || s >= &self.be[..] {
            return None;
        }
        let x = from_be(s);
        let mut r = self.mul(&x, &self.rr); // x R mod n
        for _ in 0..q {
            r = self.square(&r);
        }
        let mut r = self.mul(&r, &x); // x^(2^q) R * x / R
        self.reduce(&mut r);
        Some(to_be(&r[..self.len], self.be.len()))
    }
}

/// Big-endian bytes (at most 4116 bits' worth) into 28-bit limbs, least significant first.
fn from_be(bytes: &[u8]) -> Limbs {
    let mut out = [0; MAX_LIMBS];
    let (mut acc, mut bits, mut i) = (0u64, 0, 0);
    for b in bytes.iter().rev() {
        acc |= u64::from(*b) << bits;
        bits += 8;
        if bits >= LIMB_BITS {
            if let Some(limb) = out.get_mut(i) {
                *limb = acc as u32 & MASK;
            }
            i += 1;
            acc >>= LIMB_BITS;
            bits -= LIMB_BITS;
        }
    }
    if let Some(limb) = out.get_mut(i) {
        *limb = acc as u32;
    }
    out
}

/// 28-bit limbs into `k` big-endian bytes (the value is below 2^(8k)).
fn to_be(limbs: &[u32], k: usize) -> Vec<u8> {
    let mut out = vec![0; k];
    let (mut acc, mut bits) = (0u64, 0);
    let mut limbs = limbs.iter();
    for byte in out.iter_mut().rev() {
        if bits < 8 {
            acc |= u64::from(limbs.next().copied().unwrap_or(0)) << bits;
            bits += LIMB_BITS;
        }
        *byte = acc as u8;
        acc >>= 8;
        bits -= 8;
    }
    out
}

/// sum a_i b_i over equal-length slices (at most 147 products below 2^56 each: no overflow).
#[cfg(not(target_arch = "wasm32"))]
#[inline(always)]
fn dot(a: &[u32], b: &[u32]) -> u64 {
    a.iter().zip(b).map(|(x, y)| u64::from(*x) * u64::from(*y)).sum()
}

/// a . b + c . d over four equal-length slices (up to 294 products: a u128).
#[cfg(not(target_arch = "wasm32"))]
#[inline(always)]
fn dot2(a: &[u32], b: &[u32], c: &[u32], d: &[u32]) -> u128 {
    u128::from(dot(a, b)) + u128::from(dot(c, d))
}

/// sum a_i b_i over equal-length slices, four products per step in two u64 lanes.
#[cfg(target_arch = "wasm32")]
#[target_feature(enable = "simd128")]
#[inline]
fn dot(a: &[u32], b: &[u32]) -> u64 {
    use core::arch::wasm32::{
        u64x2_add, u64x2_extmul_high_u32x4, u64x2_extmul_low_u32x4, u64x2_extract_lane, u64x2_splat, v128, v128_load,
    };
    let len = a.len().min(b.len());
    let quads = len / 4;
    let mut acc = u64x2_splat(0);
    for i in 0..quads {
        // SAFETY: 4 i + 4 <= len <= a.len(), b.len(), so both 16-byte reads are in bounds;
        // v128.load has no alignment requirement.
        let (x, y) = unsafe {
            (v128_load(a.as_ptr().add(4 * i) as *const v128), v128_load(b.as_ptr().add(4 * i) as *const v128))
        };
        acc = u64x2_add(acc, u64x2_extmul_low_u32x4(x, y));
        acc = u64x2_add(acc, u64x2_extmul_high_u32x4(x, y));
    }
    let tail: u64 = a[4 * quads..len].iter().zip(&b[4 * quads..len]).map(|(x, y)| u64::from(*x) * u64::from(*y)).sum();
    u64x2_extract_lane::<0>(acc) + u64x2_extract_lane::<1>(acc) + tail
}

/// a . b + c . d over four equal-length slices in one pass: each u64 lane sums at most 147
/// products (below 2^63.2); the lanes are added as u128.
#[cfg(target_arch = "wasm32")]
#[target_feature(enable = "simd128")]
#[inline]
fn dot2(a: &[u32], b: &[u32], c: &[u32], d: &[u32]) -> u128 {
    use core::arch::wasm32::{
        u64x2_add, u64x2_extmul_high_u32x4, u64x2_extmul_low_u32x4, u64x2_extract_lane, u64x2_splat, v128, v128_load,
    };
    let len = a.len().min(b.len()).min(c.len()).min(d.len());
    let quads = len / 4;
    let mut acc = u64x2_splat(0);
    for i in 0..quads {
        // SAFETY: 4 i + 4 <= len, the shortest slice's length, so all four 16-byte reads are in
        // bounds; v128.load has no alignment requirement.
        let (w, x, y, z) = unsafe {
            (
                v128_load(a.as_ptr().add(4 * i) as *const v128),
                v128_load(b.as_ptr().add(4 * i) as *const v128),
                v128_load(c.as_ptr().add(4 * i) as *const v128),
                v128_load(d.as_ptr().add(4 * i) as *const v128),
            )
        };
        acc = u64x2_add(acc, u64x2_extmul_low_u32x4(w, x));
        acc = u64x2_add(acc, u64x2_extmul_high_u32x4(w, x));
        acc = u64x2_add(acc, u64x2_extmul_low_u32x4(y, z));
        acc = u64x2_add(acc, u64x2_extmul_high_u32x4(y, z));
    }
    let mut tail = 0u64;
    for i in 4 * quads..len {
        tail += u64::from(a[i]) * u64::from(b[i]) + u64::from(c[i]) * u64::from(d[i]);
    }
    u128::from(u64x2_extract_lane::<0>(acc)) + u128::from(u64x2_extract_lane::<1>(acc)) + u128::from(tail)
}
