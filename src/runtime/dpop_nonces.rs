//! The shell side of DPoP server nonces: this Envoy's secret in shared data (made by the first VM
//! to start, from the host's secure random source, read by every VM), and the `DPoP-Nonce`
//! response headers held for requests until their responses come back. The nonce itself is the
//! core's (`authn::dpop_nonce`). The secret never leaves shared data and is never logged.

use std::collections::HashMap;

use log::warn;

use super::host::Host;
use crate::authn::dpop_nonce::NonceSecret;
use crate::policy::Config;

const SECRET_KEY: &str = "jwt-guard.dpop.nonce_secret";

pub struct Nonces {
    required: bool,
    /// Response headers to add, by HTTP context.
    held: HashMap<u32, Vec<(String, String)>>,
}

impl Nonces {
    pub fn new(config: &Config) -> Nonces {
        Nonces { required: config.providers.iter().any(|p| p.dpop.require_nonce), held: HashMap::new() }
    }

    /// Makes the secret if no VM of this Envoy has. Two VMs starting together may both write;
    /// every VM reads the secret from shared data on each use, so they agree from then on.
    pub fn create(&self, host: &mut impl Host) {
        if !self.required || matches!(host.get_shared(SECRET_KEY), Ok((Some(s), _)) if s.len() == 32) {
            return;
        }
        let mut secret = [0u8; 32];
        if let Err(s) = host.secure_random(&mut secret) {
            warn!("jwt-guard: no secure random source for the DPoP nonce secret ({s}); nonce proofs will be refused");
            return;
        }
        if let Err(s) = host.set_shared(SECRET_KEY, &secret, None) {
            warn!("jwt-guard: could not store the DPoP nonce secret ({s}); nonce proofs will be refused");
        }
    }

    /// The secret, when a provider requires nonces and the request carries a DPoP proof.
    pub fn secret(&self, host: &impl Host, has_proof: bool) -> Option<NonceSecret> {
        if !self.required || !has_proof {
            return None;
        }
        match host.get_shared(SECRET_KEY) {
            Ok((Some(bytes), _)) => bytes.try_into().ok(),
            _ => None,
        }
    }

    pub fn hold(&mut self, context_id: u32, headers: Vec<(String, String)>) {
        if !headers.is_empty() {
            self.held.insert(context_id, headers);
        }
    }

    /// The response of `context_id` arrived: add what was held for it.
    pub fn on_response_headers(&mut self, host: &mut impl Host, context_id: u32) {
        for (name, value) in self.held.remove(&context_id).unwrap_or_default() {
            if let Err(s) = host.set_response_header(&name, &value) {
                warn!("jwt-guard: could not add the {name} response header: {s}");
            }
        }
    }

    pub fn forget(&mut self, context_id: u32) {
        self.held.remove(&context_id);
    }
}
