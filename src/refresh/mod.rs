//! One provider's keys over time, shared by every VM of an Envoy: the shared record and its
//! codec, the fetch lease, generations, refresh, retry and unknown-kid refetch, as a pure
//! state machine; and why a fetch failed.

pub mod fetch_error;
mod key_slot;

pub use key_slot::*;
