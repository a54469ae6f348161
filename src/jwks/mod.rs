//! Key material: a JWKS parsed into prepared keys, the selection rule, and how a provider's
//! keys look to a request (ready, loading, unavailable).

mod key_set;
mod key_state;

pub use key_set::*;
pub use key_state::*;
