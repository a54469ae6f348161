//! The decision for one request: the matching rules in order, each authenticating through its
//! requirement (`requirement`) and reading its conditions by its action (`grants`), and the
//! outcome: let through (header changes: `mutations`), refuse (`refusal`), or wait for keys
//! or an introspection answer.
//! Everything here is pure: time, headers and key sets come in as arguments.

use std::rc::Rc;

use crate::authn::dpop_nonce::{self, NonceSecret};
use crate::authn::Verified;
use crate::decision::extractor::Headers;
use crate::decision::grants::{check_grants, grants_hold};
use crate::decision::introspected::Answers;
use crate::decision::proof_memory::ProofMemory;
use crate::decision::request_kind::{is_cors_preflight, protocol};
use crate::decision::requirement::{Eval, Evaluation, ProviderOutcome};
use crate::decision::route::matching_rules;
use crate::decision::token_cache::TokenCache;
use crate::deny::response::Response;
use crate::deny::{Protocol, Reason};
use crate::jwks::KeyState;
use crate::policy::{Config, DpopMode, Requirement, Rule, RuleAction};

pub struct Request<'a> {
    pub method: &'a str,
    /// `:path`, query string included.
    pub path: &'a str,
    pub headers: &'a Headers<'a>,
    /// The client certificate's SHA-256 as the host reports it, read only for a token bound to
    /// a certificate (`no_peer_certificate` where there is none).
    pub peer_certificate: &'a dyn Fn() -> Option<Vec<u8>>,
}

/// For callers without a connection (the CLI, tests): no client certificate.
pub fn no_peer_certificate() -> Option<Vec<u8>> {
    None
}

/// RFC 9449 §8.1's response header for a server nonce.
pub const NONCE_HEADER: &str = "dpop-nonce";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mutations {
    pub remove_headers: Vec<String>,
    pub set_headers: Vec<(String, String)>,
    /// A new `:path` (token query parameter removed).
    pub path: Option<String>,
    /// Headers the response to the client gets (the next DPoP nonce).
    pub response_headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub reason: Reason,
    /// The provider whose verdict decided, for logs and metrics.
    pub provider: Option<usize>,
    /// The token that provider judged, so the shell can log a summary of it (never the token).
    pub token: Option<String>,
    /// `<iss>/<sub>` of a verified token refused for its scopes or claims: who was refused.
    pub principal: Option<String>,
    pub response: Response,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `verified`: the providers whose tokens verified, by index. `preflight`: a CORS
    /// preflight let through unchecked (`bypass_cors_preflight`), which operators count apart.
    Allow {
        mutations: Mutations,
        verified: Vec<(usize, Rc<Verified>)>,
        preflight: bool,
    },
    Deny(Denial),
    /// Keys this request needs are still loading or being refetched for an unknown `kid`, or
    /// its opaque token is being introspected: pause it and decide again when they land.
    /// `refetch` lists the providers whose keys should be refetched because of this request,
    /// `introspect` the (provider, token) pairs to ask about; `protocol` shapes the refusal if
    /// it cannot wait.
    Wait {
        refetch: Vec<usize>,
        introspect: Vec<(usize, String)>,
        protocol: Protocol,
    },
}

/// What one matching rule made of the request: a verdict, or the next rule's turn (with what
/// an unmet `allow` rule would refuse with, answered if no later rule decides).
enum Step {
    Decided(Outcome),
    Next(Option<Unmet>),
}

/// A refusal not built yet: most are never answered (a later rule allows).
pub(super) struct Unmet {
    pub(super) reason: Reason,
    pub(super) verifier: Option<usize>,
    pub(super) token: Option<String>,
    pub(super) dpop_sent: bool,
    pub(super) principal: Option<String>,
}

pub struct Engine {
    pub config: Config,
}

/// What a decision reads beyond the request: `answers[i]`, the introspection answers held for
/// provider `i`; `proofs`, the Envoy-wide DPoP proof memory (`None`: each verifier's own);
/// the DPoP nonce secret.
pub struct Shared<'a, 'm> {
    pub answers: &'a [Answers],
    pub proofs: Option<&'a mut (dyn ProofMemory + 'm)>,
    /// This Envoy's DPoP nonce secret (`dpop.require_nonce`); `None` refuses nonce proofs.
    pub nonce_secret: Option<&'a NonceSecret>,
}

impl Engine {
    pub fn new(config: Config) -> Engine {
        Engine { config }
    }

    /// One cache per verifier (each provider, then each audience variant), sized by the
    /// provider's `jwt_cache_size`.
    pub fn new_caches(&self) -> Vec<TokenCache> {
        (0..self.config.verifier_count())
            .map(|v| {
                let p = &self.config.providers[self.config.verifier(v).0];
                let proofs = if p.dpop.mode == DpopMode::Disabled { 0 } else { p.dpop.replay_cache_size };
                TokenCache::with_proof_memory(p.jwt_cache_size, proofs)
            })
            .collect()
    }

    /// `keys[i]` is the state of provider `i`'s key set.
    pub fn decide(&self, req: &Request<'_>, keys: &[KeyState<'_>], now: u64, caches: &mut [TokenCache]) -> Outcome {
        self.decide_with(req, keys, now, caches, Shared { answers: &[], proofs: None, nonce_secret: None })
    }

    /// `decide`, with what the VMs of one Envoy share (`Shared`).
    pub fn decide_with(
        &self,
        req: &Request<'_>,
        keys: &[KeyState<'_>],
        now: u64,
        caches: &mut [TokenCache],
        shared: Shared<'_, '_>,
    ) -> Outcome {
        let Shared { answers, proofs, nonce_secret } = shared;
        if self.config.bypass_cors_preflight && is_cors_preflight(req.method, req.headers) {
            return Outcome::Allow {
                mutations: self.unchecked_route_mutations(req),
                verified: Vec::new(),
                preflight: true,
            };
        }
        let protocol = protocol(req.headers);
        // One evaluation per request: a provider is judged once however many rules ask, so a
        // DPoP proof is checked (and remembered) once.
        let mut ev = Evaluation {
            config: &self.config,
            req,
            keys,
            now,
            caches,
            found: vec![None; self.config.verifier_count()],
            outcomes: vec![None; self.config.verifier_count()],
            refetch: Vec::new(),
            answers,
            // Re-borrowed for this evaluation (a shorter trait-object lifetime than `'m`).
            proofs: proofs.map(|p| p as &mut dyn ProofMemory),
            introspect: Vec::new(),
            introspected_at: None,
            nonce_secret,
            renew_nonce: None,
        };
        let outcome = self.decide_rules(&mut ev, protocol);
        self.with_nonce(outcome, &ev)
    }

    /// The matching rules in order (or, without rules, any provider).
    fn decide_rules(&self, ev: &mut Evaluation<'_, '_, '_>, protocol: Protocol) -> Outcome {
        let req = ev.req;
        let Some(rules) = &self.config.rules else {
            let n = self.config.providers.len();
            let requirement = if n == 1 {
                Requirement::Provider(0)
            } else {
                Requirement::Any((0..n).map(Requirement::Provider).collect())
            };
            return match self.judge(None, Some(&requirement), ev, protocol) {
                Step::Decided(outcome) => outcome,
                Step::Next(_) => self.deny(Reason::NoRoute, None, protocol),
            };
        };
        // An unmet `allow` rule's refusal is kept: if no later rule decides, it is the answer.
        let mut unmet: Option<Unmet> = None;
        for rule in matching_rules(rules, req.method, req.path, req.headers) {
            match self.judge(Some(rule), rule.requires.as_ref(), ev, protocol) {
                Step::Decided(outcome) => return outcome,
                Step::Next(refusal) => {
                    if unmet.is_none() {
                        unmet = refusal;
                    }
                }
            }
        }
        match unmet {
            Some(u) => self.refused(u, protocol),
            None => self.deny(Reason::NoRoute, None, protocol),
        }
    }

    /// RFC 9449 §8-9: a refusal for want of a nonce carries one (`DPoP-Nonce`), and so does a
    /// success whose proof's nonce is in its last window.
    fn with_nonce(&self, mut outcome: Outcome, ev: &Evaluation<'_, '_, '_>) -> Outcome {
        let Some(secret) = ev.nonce_secret else { return outcome };
        let issue = |p: usize| -> Option<(String, String)> {
            let lifetime = self.config.providers.get(p)?.dpop.nonce_lifetime_seconds;
            Some((NONCE_HEADER.to_string(), dpop_nonce::issue(secret, ev.now, lifetime)))
        };
        match &mut outcome {
            Outcome::Deny(d) if d.reason == Reason::DpopNonce => {
                d.response.headers.extend(d.provider.and_then(issue));
            }
            Outcome::Allow { mutations, .. } => mutations.response_headers.extend(ev.renew_nonce.and_then(issue)),
            _ => {}
        }
        outcome
    }

    /// One matching rule: `requires` authenticates (its failure always refuses), then the
    /// rule's action reads its conditions.
    fn judge(
        &self,
        rule: Option<&Rule>,
        requirement: Option<&Requirement>,
        ev: &mut Evaluation<'_, '_, '_>,
        protocol: Protocol,
    ) -> Step {
        let req = ev.req;
        let action = rule.map_or(RuleAction::Require, |r| r.action);
        let Some(requirement) = requirement else {
            // Without `requires` a rule has no conditions (the config refuses them), so a
            // `deny` rule refuses everything it matches.
            if action == RuleAction::Deny {
                return Step::Decided(self.deny(Reason::Denied, None, protocol));
            }
            return Step::Decided(Outcome::Allow {
                mutations: self.unchecked_route_mutations(req),
                verified: Vec::new(),
                preflight: false,
            });
        };
        let result = ev.eval(requirement);
        let unmet =
            |reason: Reason, verifier: Option<usize>, ev: &Evaluation<'_, '_, '_>, principal: Option<String>| {
                let found = verifier.and_then(|i| ev.found[i].as_ref());
                Unmet {
                    reason,
                    verifier,
                    token: found.map(|f| f.token.clone()),
                    dpop_sent: found.is_some_and(|f| f.dpop),
                    principal,
                }
            };
        match result {
            Eval::Wait => Step::Decided(Outcome::Wait {
                refetch: std::mem::take(&mut ev.refetch),
                introspect: std::mem::take(&mut ev.introspect),
                protocol,
            }),
            Eval::Fail(reason, p) => Step::Decided(self.refused(unmet(reason, p, ev, None), protocol)),
            Eval::Ok => {
                // This requirement's verified tokens, by provider: a provider judged with a
                // rule's audiences is still that provider; one judged for an earlier rule only
                // counts if this rule asks for it too.
                let mut verified: Vec<(usize, Rc<Verified>)> = Vec::new();
                for i in requirement.verifiers(self.config.providers.len()) {
                    let base = self.config.verifier(i).0;
                    if let (Some(ProviderOutcome::Verified(v)), false) =
                        (&ev.outcomes[i], verified.iter().any(|(b, _)| *b == base))
                    {
                        verified.push((base, v.clone()));
                    }
                }
                let principal = || verified.iter().find_map(|(_, v)| v.principal.clone());
                if action == RuleAction::Deny {
                    let Some(rule) = rule else { return Step::Next(None) };
                    if !grants_hold(&self.config, rule, &verified) {
                        return Step::Next(None);
                    }
                    let mut refusal = self.deny(Reason::Denied, verified.first().map(|(i, _)| *i), protocol);
                    if let Outcome::Deny(d) = &mut refusal {
                        d.principal = principal();
                    }
                    return Step::Decided(refusal);
                }
                // Istio's ALLOW without a token: only negative conditions can hold.
                let tokenless = action == RuleAction::Allow && verified.is_empty();
                if tokenless && rule.is_some_and(|r| grants_hold(&self.config, r, &verified)) {
                    return Step::Decided(Outcome::Allow {
                        mutations: self.mutations(req, &ev.found, &verified),
                        verified,
                        preflight: false,
                    });
                }
                if let Err((reason, p)) = check_grants(&self.config, rule, &verified) {
                    let u = unmet(reason, p, ev, principal());
                    return match action {
                        RuleAction::Allow => Step::Next(Some(u)),
                        _ => Step::Decided(self.refused(u, protocol)),
                    };
                }
                let mutations = self.mutations(req, &ev.found, &verified);
                Step::Decided(Outcome::Allow { mutations, verified, preflight: false })
            }
        }
    }
}
