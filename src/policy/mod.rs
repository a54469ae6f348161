//! The configuration: its wire form (jwt_authn's field names), validation with field paths,
//! and the compiled form every other stage reads.

pub mod claim_rule;
mod compile;
mod config;
pub mod duration;
pub mod issuer;
pub mod route_match;
mod rules;
mod wire;

pub use config::*;
