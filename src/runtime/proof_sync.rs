//! The Envoy-wide DPoP proof memory over shared data: each provider's table of buckets
//! (`decision::proof_memory`), written with the host's CAS so that two workers racing on one
//! proof admit exactly one. Any host failure refuses the proof: fail closed.

use std::cell::RefCell;

use log::warn;

use super::host::{Host, HostStatus};
use crate::decision::proof_memory::{bucket_key, bucket_name, buckets, record, ProofKey, ProofMemory, Record};
use crate::deny::Reason;
use crate::policy::{Config, DpopMode};

/// CAS attempts before a proof is refused for contention (503).
const ATTEMPTS: usize = 8;

/// Per provider: its name and its number of buckets, or `None` where DPoP is off.
pub struct ProofTables(Vec<Option<(String, usize)>>);

impl ProofTables {
    pub fn new(config: &Config) -> ProofTables {
        ProofTables(
            config
                .providers
                .iter()
                .map(|p| {
                    (p.dpop.mode != DpopMode::Disabled).then(|| (p.name.clone(), buckets(p.dpop.replay_cache_size)))
                })
                .collect(),
        )
    }

    pub fn any(&self) -> bool {
        self.0.iter().any(Option::is_some)
    }

    /// Creates the buckets that do not exist yet. Envoy's CAS guards only a key that exists, so
    /// a bucket is made before any proof is recorded in it; an existing one is never written
    /// here, so a VM that starts late cannot wipe what others recorded.
    pub fn create(&self, host: &mut impl Host) {
        for (name, n) in self.0.iter().flatten() {
            for b in 0..*n as u64 {
                let key = bucket_name(name, b);
                if let Ok((None, None)) = host.get_shared(&key) {
                    if let Err(s) = host.set_shared(&key, &[], None) {
                        warn!("jwt-guard: could not create the DPoP proof table ({s}); proofs will be refused");
                        return;
                    }
                }
            }
        }
    }

    /// The memory a decision records proofs in, over `host`.
    pub fn memory<'a, H: Host>(&'a self, host: &'a RefCell<&'a mut H>) -> SharedProofs<'a, H> {
        SharedProofs { tables: self, host }
    }
}

pub struct SharedProofs<'a, H: Host> {
    tables: &'a ProofTables,
    host: &'a RefCell<&'a mut H>,
}

impl<H: Host> ProofMemory for SharedProofs<'_, H> {
    fn first_use(&mut self, provider: usize, key: &ProofKey, until: u64, now: u64) -> Result<bool, Reason> {
        let Some(Some((name, n))) = self.tables.0.get(provider) else { return Err(Reason::Internal) };
        let bucket = bucket_key(name, key, *n);
        let Ok(mut host) = self.host.try_borrow_mut() else { return Err(Reason::Internal) };
        for _ in 0..ATTEMPTS {
            let (bytes, cas) = match host.get_shared(&bucket) {
                Ok((bytes, Some(cas))) => (bytes.unwrap_or_default(), cas),
                Ok((_, None)) => {
                    // Not created at start (the host refused then): create it, then use its CAS.
                    if host.set_shared(&bucket, &[], None).is_err() {
                        return Err(Reason::Internal);
                    }
                    continue;
                }
                Err(s) => {
                    warn!("jwt-guard: the DPoP proof memory is unreadable ({s}); refusing the proof");
                    return Err(Reason::Internal);
                }
            };
            match record(&bytes, key, until, now) {
                Record::Replay => return Ok(false),
                Record::Full => return Err(Reason::DpopReplayCacheFull),
                Record::Write(b) => match host.set_shared(&bucket, &b, Some(cas)) {
                    Ok(()) => return Ok(true),
                    Err(HostStatus::CAS_MISMATCH) => continue, // another worker wrote it: read again
                    Err(s) => {
                        warn!("jwt-guard: the DPoP proof memory is not writable ({s}); refusing the proof");
                        return Err(Reason::Internal);
                    }
                },
            }
        }
        warn!("jwt-guard: the DPoP proof memory is contended; refusing the proof");
        Err(Reason::Internal)
    }
}
