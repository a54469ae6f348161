//! One provider's verdict on one token: the checks in order, access versus ID token, the
//! signature against the key set, and DPoP proofs.

mod authenticator;
pub mod dpop;
pub mod payload_metadata;
pub mod signature;
pub mod token_kind;

pub use authenticator::*;
