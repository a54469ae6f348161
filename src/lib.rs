//! jwt-guard: a strict bearer-token guard for Envoy, as a proxy-wasm HTTP filter.
//!
//! The crate is a pure core (everything but `shell`) inside a thin proxy-wasm shell. The core
//! never calls the host: time, headers and fetched documents are passed in, so all of it is
//! unit-tested on the host.

pub mod authenticator;
pub mod base64url;
pub mod cache;
pub mod classify;
pub mod config;
pub mod crypto_provider;
pub mod duration;
pub mod engine;
pub mod extractor;
pub mod fast_ecdsa;
pub mod fast_rsa;
pub mod fetch_error;
pub mod header_map;
pub mod jwks;
pub mod jwks_cache;
pub mod log_limit;
pub mod matcher;
pub mod metrics;
pub mod reason;
pub mod response;
pub mod shell;
pub mod token;
pub mod verifier;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
