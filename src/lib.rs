//! jwt-guard: a strict bearer-token guard for Envoy, as a proxy-wasm HTTP filter.
//!
//! The folders follow a request and the keys it needs: `policy` (configuration) → `token`
//! (parsing) → `jwks` (keys) → `crypto` (signatures) → `authn` (one provider's verdict) →
//! `decision` (one request's verdict) → `deny` (refusals); `refresh` keeps each provider's keys
//! over time; `runtime` sequences all of it per VM against a `Host` trait; `wasm` binds that to
//! proxy-wasm. Everything but `wasm` is pure and unit-tested on the host.

pub mod authn;
pub mod crypto;
pub mod decision;
pub mod deny;
pub mod jwks;
pub mod policy;
pub mod refresh;
pub mod runtime;
pub mod token;

#[cfg(target_arch = "wasm32")]
mod wasm;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
#[cfg(test)]
mod tests;
