//! Refusals: the one table of reasons (status, RFC 6750 code, stable string, description) and
//! the responses built from it.

mod description;
mod reason;
pub mod response;

pub use reason::{ErrorCode, Reason, NAMES};
pub use response::{Protocol, Scheme};
