//! One request's verdict: the route's rule, token extraction, the requirement tree over
//! providers, the verified-token cache, sender-constrained tokens (DPoP, mutual TLS), and what
//! to change in the request.

pub mod claim_match;
mod engine;
pub mod extractor;
pub mod filter_state;
mod grants;
pub mod introspected;
mod mutations;
pub mod proof_memory;
mod refusal;
pub mod request_kind;
mod requirement;
pub mod route;
pub mod sender;
pub mod token_cache;

pub use engine::{no_peer_certificate, Denial, Engine, Mutations, Outcome, Request, Shared, NONCE_HEADER};
