//! Shaping a refusal from the configuration: the audiences and realm it names, the challenge
//! scheme (Bearer or DPoP with its algorithms), and who was refused. The response itself is
//! `deny::response`'s.

use crate::decision::engine::{Denial, Engine, Outcome, Unmet};
use crate::deny::response::for_reason;
use crate::deny::{Protocol, Reason, Scheme};
use crate::policy::DpopMode;

impl Engine {
    pub(super) fn refused(&self, u: Unmet, protocol: Protocol) -> Outcome {
        let mut refusal = self.refuse(u.reason, u.verifier, u.token, u.dpop_sent, protocol);
        if let Outcome::Deny(d) = &mut refusal {
            d.principal = u.principal;
        }
        refusal
    }

    pub fn deny(&self, reason: Reason, provider: Option<usize>, protocol: Protocol) -> Outcome {
        self.refuse(reason, provider, None, false, protocol)
    }

    /// The challenge names DPoP (RFC 9449 §7.1) when the client used it, when the refusal is
    /// about DPoP, or when the provider takes nothing else; Bearer clients see Bearer.
    fn scheme(&self, reason: &Reason, provider: Option<usize>, dpop_sent: bool) -> Option<String> {
        let p = &self.config.providers[provider?];
        if p.dpop.mode == DpopMode::Disabled {
            return None;
        }
        (dpop_sent || reason.concerns_dpop() || p.dpop.mode == DpopMode::Required)
            .then(|| p.dpop.algorithms.iter().map(|a| a.name()).collect::<Vec<_>>().join(" "))
    }

    /// `verifier`: the provider (or audience variant) the refusal is about.
    pub(super) fn refuse(
        &self,
        reason: Reason,
        verifier: Option<usize>,
        token: Option<String>,
        dpop_sent: bool,
        protocol: Protocol,
    ) -> Outcome {
        let provider = verifier.map(|v| self.config.verifier(v).0);
        let audiences: Vec<String> = match verifier {
            Some(v) => self.config.verifier(v).1.to_vec(),
            None => {
                let mut all: Vec<String> = Vec::new();
                for p in &self.config.providers {
                    for a in &p.audiences {
                        if !all.contains(a) {
                            all.push(a.clone());
                        }
                    }
                }
                all
            }
        };
        let algs = self.scheme(&reason, provider, dpop_sent);
        let scheme = algs.as_deref().map_or(Scheme::Bearer, Scheme::Dpop);
        let response = for_reason(&reason, &self.config.realm, &audiences, protocol, scheme);
        Outcome::Deny(Denial { provider, token, principal: None, reason, response })
    }
}
