//! What a VM counts and logs: metrics gathered per request and handed to the host on each
//! tick, gauges, and the denial log lines (a summary of the token, never the token).

use log::{debug, info, log_enabled, Level};

use super::host::Host;
use super::metrics::Metric;
use super::plugin::Plugin;
use crate::deny::Reason;
use crate::token::summarize;

impl Plugin {
    /// Defines every metric up front, so dashboards and alerts see zeros, not gaps.
    pub fn define_metrics(&mut self, host: &mut impl Host) {
        let names: Vec<String> = self.engine.config.providers.iter().map(|p| p.name.clone()).collect();
        let all = Metric::all(names.len());
        self.metric_ids = all.iter().map(|m| host.define_metric(m.is_gauge(), &m.name(&names)).ok()).collect();
        self.deltas = vec![0; all.len()];
    }

    pub(super) fn count(&mut self, m: Metric, by: u64) {
        if by == 0 {
            return;
        }
        if let Some(d) = m.index(self.engine.config.providers.len()).and_then(|i| self.deltas.get_mut(i)) {
            *d += by;
        }
    }

    /// Hands the counts gathered since the last flush to the host.
    pub(super) fn flush_metrics(&mut self, host: &mut impl Host) {
        for (delta, id) in self.deltas.iter_mut().zip(&self.metric_ids) {
            if let (true, Some(id)) = (*delta > 0, id) {
                let _ = host.increment_metric(*id, *delta);
            }
            *delta = 0;
        }
    }

    fn gauge(&self, host: &mut impl Host, m: Metric, value: u64) {
        if let Some(Some(id)) = m.index(self.engine.config.providers.len()).and_then(|i| self.metric_ids.get(i)) {
            let _ = host.record_metric(*id, value);
        }
    }

    pub(super) fn record_gauges(&mut self, host: &mut impl Host) {
        let now = self.now(host);
        for (i, slot) in self.slots.iter().enumerate() {
            self.gauge(host, Metric::KeysLoaded(i), slot.key_count() as u64);
            if let Some(age) = slot.age_ms(now) {
                self.gauge(host, Metric::JwksAgeSeconds(i), age / 1000);
            }
            // Envoy shares a gauge across VMs: only VMs that serve requests (workers, not the
            // main thread's) report their cache, so an idle VM cannot overwrite it with 0.
            if self.served_requests {
                self.gauge(host, Metric::CacheEntries(i), self.caches[i].len() as u64);
            }
        }
    }

    /// One debug line per denial; an info line naming the client that sends ID tokens.
    pub(super) fn log_denial(&mut self, denial: &crate::decision::Denial, path: &str, now_ms: u64) {
        let provider = denial.provider.map_or("-", |i| self.engine.config.providers[i].name.as_str());
        let route = path.split('?').next().unwrap_or("");
        let is_id_token = denial.reason == Reason::IdToken;
        if !(is_id_token || log_enabled!(Level::Debug)) {
            return;
        }
        let s = denial.token.as_deref().map(summarize).unwrap_or_default();
        debug!(
            "jwt-guard: deny {} reason={} provider={provider} kid={} iss={} sub={} token={} path={route}",
            denial.response.status,
            denial.reason.as_str(),
            s.kid.as_deref().unwrap_or("-"),
            s.iss.as_deref().unwrap_or("-"),
            s.sub.as_deref().unwrap_or("-"),
            if s.fingerprint.is_empty() { "-" } else { s.fingerprint.as_str() },
        );
        if is_id_token {
            let client = s.client.as_deref().unwrap_or("-");
            if self.id_token_log.allow(client, now_ms) {
                info!(
                    "jwt-guard: client {client} sent an ID token instead of an access token (provider {provider}, \
                     sub {}, path {route}); this client should request an access token for the API's audience",
                    s.sub.as_deref().unwrap_or("-")
                );
            }
        }
    }
}
