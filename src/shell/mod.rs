//! The proxy-wasm shell: lifecycle glue between Envoy and the core. `plugin` holds the logic
//! (pause, fetch, resume) against the small `Host` trait so it is tested with a fake host;
//! `wasm` binds that trait to the real proxy-wasm ABI.

pub mod host;
pub mod plugin;

#[cfg(target_arch = "wasm32")]
mod wasm;
