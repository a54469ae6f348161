//! One provider's verdict on one token: the checks in order, access versus ID token, the
//! signature against the key set, and DPoP proofs.

mod authenticator;
pub mod client_keys;
pub mod dpop;
pub mod dpop_nonce;
pub mod introspection;
pub mod payload_metadata;
pub mod signature;
pub mod token_kind;

pub use authenticator::{
    authenticate, authenticate_for, authenticate_traced, check_time, expired, scopes, Binding, Check, NoTrace, Tracer,
    Verified, MAX_CLAIM_HEADER_BYTES,
};
