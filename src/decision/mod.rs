//! One request's verdict: the route's rule, token extraction, the requirement tree over
//! providers, the verified-token cache, sender-constrained tokens (DPoP, mutual TLS), and what
//! to change in the request.

mod engine;
pub mod extractor;
pub mod request_kind;
pub mod route;
pub mod sender;
pub mod token_cache;

pub use engine::*;
