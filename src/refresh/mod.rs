//! One provider's keys over time, shared by every VM of an Envoy: the shared record and its
//! codec, the fetch lease, generations, refresh, retry and unknown-kid refetch, as a pure
//! state machine; and why a fetch failed.

pub mod fetch_error;
mod key_slot;

pub use key_slot::{
    backoff_ms, body_key, decode_body, encode_body, state_key, FetchRequest, KeySlot, SharedState, Step,
    MAX_JWKS_BYTES, PROXY_TIMEOUT_MARGIN_MS,
};
