//! One provider's keys over time, shared by every VM of an Envoy: the shared record and its
//! codec, the fetch lease, generations, refresh, retry and unknown-kid refetch, as a pure
//! state machine; and why a fetch failed. Introspection calls and their shared answers
//! (`introspection_call`, `introspection_slot`) follow the same pattern for opaque tokens.

pub mod fetch_error;
pub mod introspection_call;
pub mod introspection_slot;
mod key_slot;

pub use key_slot::{
    backoff_ms, body_key, decode_body, encode_body, refresh_ms, state_key, FetchRequest, KeySlot, SharedState, Step,
    MAX_JWKS_BYTES, PROXY_TIMEOUT_MARGIN_MS,
};
