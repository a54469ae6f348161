//! Per-VM sequencing against the `Host` trait: requests paused for keys, keys kept in step
//! with the shared record, telemetry. Tested with a fake host; `wasm` binds it to Envoy.

mod dpop_nonces;
pub mod header_map;
pub mod host;
mod introspection_sync;
mod key_sync;
pub mod log_limit;
pub mod metrics;
mod paused;
mod plugin;
mod proof_sync;
mod telemetry;

pub use paused::{MAX_PENDING, TICK_MS, WAITING_TICK_MS};
pub use plugin::{unavailable, Action, Plugin};
