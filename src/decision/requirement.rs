//! The requirement tree (jwt_authn's `JwtRequirement`): which providers must vouch for the
//! token, each verifier (a provider, or a provider with a rule's audiences) judged at most once
//! per request, through its verified-token cache. Outcomes are indexed by verifier; failures
//! and refetches name the provider.

use std::rc::Rc;

use crate::authn::dpop_nonce::NonceSecret;
use crate::authn::introspection::check_answer;
use crate::authn::{authenticate_for, NoTrace, Verified};
use crate::decision::engine::Request;
use crate::decision::extractor::{find_token, Found};
use crate::decision::introspected::{token_hash, Answer, Answers};
use crate::decision::proof_memory::ProofMemory;
use crate::decision::sender::{check_sender, ProofStore};
use crate::decision::token_cache::TokenCache;
use crate::deny::Reason;
use crate::jwks::{KeyState, KidRefetch};
use crate::policy::{Config, Requirement};
use crate::token::{self, Shape};

#[derive(Debug, Clone)]
pub(super) enum ProviderOutcome {
    Missing,
    Failed(Reason),
    Verified(Rc<Verified>),
    Wait,
}

pub(super) enum Eval {
    Ok,
    Fail(Reason, Option<usize>),
    Wait,
}

pub(super) struct Evaluation<'e, 'r, 'k> {
    pub(super) config: &'e Config,
    pub(super) req: &'r Request<'r>,
    pub(super) keys: &'r [KeyState<'k>],
    pub(super) now: u64,
    pub(super) caches: &'r mut [TokenCache],
    pub(super) found: Vec<Option<Found>>,
    pub(super) outcomes: Vec<Option<ProviderOutcome>>,
    pub(super) refetch: Vec<usize>,
    /// Per provider, the introspection answers this VM holds (empty where none).
    pub(super) answers: &'r [Answers],
    /// Opaque tokens to introspect before deciding again: (provider, token).
    pub(super) introspect: Vec<(usize, String)>,
    /// This Envoy's DPoP nonce secret, where a provider requires nonces.
    pub(super) nonce_secret: Option<&'r NonceSecret>,
    /// The provider whose proof's nonce is in its last window: the response carries the next.
    pub(super) renew_nonce: Option<usize>,
    /// The Envoy-wide DPoP proof memory, where there is a proxy.
    pub(super) proofs: Option<&'r mut dyn ProofMemory>,
    /// The endpoint this request's opaque token was shown to, and the verifier whose token it
    /// was (its `found`): never a second endpoint.
    pub(super) introspected_at: Option<(usize, &'e str)>,
}

impl Evaluation<'_, '_, '_> {
    fn outcome(&mut self, i: usize) -> ProviderOutcome {
        if let Some(o) = &self.outcomes[i] {
            return o.clone();
        }
        let (base, audiences) = self.config.verifier(i);
        let provider = &self.config.providers[base];
        let o = match find_token(&provider.extraction, self.req.path, self.req.headers) {
            Err(r) => ProviderOutcome::Failed(r),
            Ok(None) => ProviderOutcome::Missing,
            Ok(Some(found)) if provider.introspection.is_some() && token::shape(&found.token) == Shape::Opaque => {
                let o = self.introspected(i, &found);
                self.found[i] = Some(found);
                o
            }
            Ok(Some(found)) => {
                let o = match self.keys[base] {
                    not_ready @ (KeyState::Loading | KeyState::Unavailable) => match found.check() {
                        Err(r) => ProviderOutcome::Failed(r),
                        Ok(()) if matches!(not_ready, KeyState::Loading) => ProviderOutcome::Wait,
                        Ok(()) => ProviderOutcome::Failed(Reason::KeysUnavailable),
                    },
                    KeyState::Ready(keys, kid_refetch) => {
                        let cache = &mut self.caches[i];
                        let verdict = match cache.get(&found.token, self.now, provider.clock_skew_seconds) {
                            // A verified token passes `check` by construction: skip it on the hot path.
                            Some(Ok(v)) => Ok(v),
                            cached => match (found.check(), cached) {
                                (Err(r), _) => Err(r),
                                (Ok(()), Some(rejected)) => rejected,
                                (Ok(()), None) => {
                                    let v = authenticate_for(
                                        provider,
                                        audiences,
                                        keys,
                                        &found.token,
                                        self.now,
                                        &mut NoTrace,
                                    )
                                    .map(Rc::new);
                                    cache.put(&found.token, &v);
                                    v
                                }
                            },
                        };
                        let verdict = verdict.and_then(|v| self.sender(i, &found, v));
                        match verdict {
                            Ok(v) => ProviderOutcome::Verified(v),
                            // The issuer may have rotated keys since we fetched them.
                            Err(Reason::UnknownKid) => match kid_refetch {
                                KidRefetch::Allowed => {
                                    self.refetch.push(base);
                                    ProviderOutcome::Wait
                                }
                                KidRefetch::Pending => ProviderOutcome::Wait,
                                KidRefetch::Exhausted => ProviderOutcome::Failed(Reason::UnknownKid),
                            },
                            Err(r) => ProviderOutcome::Failed(r),
                        }
                    }
                };
                self.found[i] = Some(found);
                o
            }
        };
        self.outcomes[i] = Some(o.clone());
        o
    }

    /// The sender checks of verifier `i`'s verified token (DPoP proof, client certificate): per
    /// request, never cached, since the proof and the connection are new each time.
    fn sender(&mut self, i: usize, found: &Found, v: Rc<Verified>) -> Result<Rc<Verified>, Reason> {
        let base = self.config.verifier(i).0;
        let provider = &self.config.providers[base];
        let store = ProofStore {
            cache: &mut self.caches[i],
            shared: self.proofs.as_deref_mut().map(|m| (m, base)),
            nonce_secret: self.nonce_secret,
        };
        if check_sender(provider, &v.binding, found, self.req, store, self.now)? {
            self.renew_nonce.get_or_insert(base);
        }
        Ok(v)
    }

    /// Verifier `i`'s verdict on an opaque token its provider introspects: a cached verdict,
    /// else the answer this VM holds, else a call to wait for.
    fn introspected(&mut self, i: usize, found: &Found) -> ProviderOutcome {
        let (base, audiences) = self.config.verifier(i);
        let provider = &self.config.providers[base];
        let Some(intro) = provider.introspection.as_ref() else { return ProviderOutcome::Failed(Reason::Opaque) };
        if found.token.len() > provider.max_token_size {
            return ProviderOutcome::Failed(Reason::TooLarge);
        }
        if let Err(r) = found.check() {
            return ProviderOutcome::Failed(r);
        }
        match self.introspected_at {
            Some((v, uri)) if uri != intro.uri && self.found[v].as_ref().is_some_and(|f| f.token == found.token) => {
                // Another rule's provider asked another endpoint: that server did not vouch here.
                return ProviderOutcome::Failed(Reason::Issuer);
            }
            Some(_) => {}
            None => self.introspected_at = Some((i, &intro.uri)),
        }
        let cache = &mut self.caches[i];
        let verdict = match cache.get(&found.token, self.now, provider.clock_skew_seconds) {
            Some(v) => v,
            None => match self.answers.get(base).and_then(|a| a.get(&token_hash(&found.token), self.now)) {
                None => {
                    if !self.introspect.iter().any(|(p, t)| *p == base && *t == found.token) {
                        self.introspect.push((base, found.token.clone()));
                    }
                    return ProviderOutcome::Wait;
                }
                Some((Answer::Unavailable, _)) => return ProviderOutcome::Failed(Reason::IntrospectionUnavailable),
                Some((Answer::Unreadable, until)) => {
                    let v = Err(Reason::IntrospectionResponse);
                    cache.put_until(&found.token, &v, until);
                    v
                }
                Some((Answer::Fields(fields), until)) => {
                    let v = check_answer(provider, audiences, fields, self.now).map(Rc::new);
                    cache.put_until(&found.token, &v, until);
                    v
                }
            },
        };
        match verdict.and_then(|v| self.sender(i, found, v)) {
            Ok(v) => ProviderOutcome::Verified(v),
            Err(r) => ProviderOutcome::Failed(r),
        }
    }

    pub(super) fn eval(&mut self, req: &Requirement) -> Eval {
        match req {
            Requirement::Provider(i) => match self.outcome(*i) {
                ProviderOutcome::Verified(_) => Eval::Ok,
                ProviderOutcome::Missing => Eval::Fail(Reason::Missing, Some(*i)),
                ProviderOutcome::Failed(r) => Eval::Fail(r, Some(*i)),
                ProviderOutcome::Wait => Eval::Wait,
            },
            Requirement::Any(list) => {
                let evals: Vec<Eval> = list.iter().map(|r| self.eval(r)).collect();
                combine_any(evals)
            }
            Requirement::All(list) => {
                let mut wait = false;
                for r in list {
                    match self.eval(r) {
                        Eval::Fail(reason, p) => return Eval::Fail(reason, p),
                        Eval::Wait => wait = true,
                        Eval::Ok => {}
                    }
                }
                if wait {
                    Eval::Wait
                } else {
                    Eval::Ok
                }
            }
            Requirement::AllowMissing => {
                let n = self.config.providers.len();
                let evals: Vec<Eval> = (0..n)
                    .filter_map(|i| match self.outcome(i) {
                        ProviderOutcome::Missing => None,
                        ProviderOutcome::Verified(_) => Some(Eval::Ok),
                        ProviderOutcome::Failed(r) => Some(Eval::Fail(r, Some(i))),
                        ProviderOutcome::Wait => Some(Eval::Wait),
                    })
                    .collect();
                if evals.is_empty() {
                    Eval::Ok
                } else {
                    combine_any(evals)
                }
            }
            Requirement::AllowMissingOrFailed => {
                let n = self.config.providers.len();
                let waits = (0..n).filter(|i| matches!(self.outcome(*i), ProviderOutcome::Wait)).count();
                if waits > 0 {
                    Eval::Wait
                } else {
                    Eval::Ok
                }
            }
        }
    }
}

/// Any success wins; otherwise wait if an alternative may still succeed; otherwise report the
/// failure that says most about the token the client actually sent.
fn combine_any(evals: Vec<Eval>) -> Eval {
    let mut wait = false;
    let mut best: Option<(Reason, Option<usize>)> = None;
    for e in evals {
        match e {
            Eval::Ok => return Eval::Ok,
            Eval::Wait => wait = true,
            Eval::Fail(r, p) => {
                if best.as_ref().is_none_or(|(b, _)| r.specificity() > b.specificity()) {
                    best = Some((r, p));
                }
            }
        }
    }
    match (wait, best) {
        (true, _) => Eval::Wait,
        (false, Some((r, p))) => Eval::Fail(r, p),
        (false, None) => Eval::Fail(Reason::Missing, None),
    }
}
