//! Signature verification: jsonwebtoken's provider, with faster RSA and ECDSA verifiers for
//! keys prepared when a key set is adopted.

pub mod ecdsa;
mod provider;
pub mod rsa;
pub mod rsa_montgomery;

pub use provider::*;
