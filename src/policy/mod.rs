//! The configuration: its wire form (jwt_authn's field names), validation with field paths,
//! and the compiled form every other stage reads.

mod compile;
mod config;
pub mod duration;
mod wire;

pub use config::*;
