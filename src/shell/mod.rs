//! The proxy-wasm shell: lifecycle glue between Envoy and the core. `plugin` holds the logic
//! (pause, fetch, resume) against the small `Host` trait so it is tested with a fake host;
//! `abi` implements that trait with proxy-wasm calls that return the host's status, and
//! `wasm` binds the SDK's contexts to the plugin.

pub mod host;
pub mod plugin;

#[cfg(target_arch = "wasm32")]
mod abi;
#[cfg(target_arch = "wasm32")]
mod wasm;
