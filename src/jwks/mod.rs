//! Key material: a JWKS parsed into prepared keys, the selection rule, and how a provider's
//! keys look to a request (ready, loading, unavailable), and RFC 7638 thumbprints.

mod key_set;
mod key_state;
mod thumbprint;

pub use key_set::{prepare_one, Family, JwksError, Key, KeySet, SelectError, MAX_CANDIDATES};
pub use key_state::{KeyState, KidRefetch, Phase};
pub use thumbprint::jwk_thumbprint;
