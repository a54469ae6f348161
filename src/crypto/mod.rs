//! Signature verification: our RSA and ECDSA verifiers (keys prepared when a key set is
//! adopted), RustCrypto's for EdDSA and HMAC.

mod big_endian;
pub mod ecdsa;
mod provider;
pub mod rsa;
pub mod rsa_montgomery;

pub use provider::{prepare, verify, verify_once, Curve, Prepared};
