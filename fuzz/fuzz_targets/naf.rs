//! crypto::ecdsa's variable-time NAF multiplication (DPoP proof keys) against the curve crate's
//! constant-time one, on arbitrary scalars: the signed-digit recoding is where such code goes
//! wrong. The first byte picks the curve and a small multiplier for the point; the next 32
//! (P-256) or 48 (P-384) bytes are the scalar, reduced modulo the group order.
#![no_main]
use libfuzzer_sys::fuzz_target;

macro_rules! check {
    ($curve:ident, $uint:ident, $module:ident, $len:expr, $pick:expr, $bytes:expr) => {{
        use $curve::elliptic_curve::ops::Reduce;
        use $curve::{$uint, FieldBytes, ProjectivePoint, Scalar};
        let Some(bytes) = $bytes.get(..$len) else { return };
        let mut repr = FieldBytes::default();
        repr.copy_from_slice(bytes);
        let k = <Scalar as Reduce<$uint>>::reduce_bytes(&repr);
        let p = ProjectivePoint::GENERATOR * Scalar::from(u64::from($pick) + 1);
        assert_eq!(jwt_guard::crypto::ecdsa::$module::multiply_vartime(&p, &k), p * k, "k·P differs");
    }};
}

fuzz_target!(|data: &[u8]| {
    let [pick, rest @ ..] = data else { return };
    if pick & 1 == 0 {
        check!(p256, U256, es256, 32, *pick, rest);
    } else {
        check!(p384, U384, es384, 48, *pick, rest);
    }
});
