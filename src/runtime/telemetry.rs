//! What a VM counts and logs: metrics gathered per request and handed to the host on each
//! tick, gauges, and the denial log lines (a summary of the token, never the token).

use log::{debug, info, log_enabled, Level};

use super::host::Host;
use super::log_limit::LogLimiter;
use super::metrics::Metric;
use crate::deny::Reason;
use crate::token::summarize;

/// Each client that sends ID tokens is named in an info line at most once a minute.
const ID_TOKEN_LOG_INTERVAL_MS: u64 = 60_000;

/// A VM's counters and log limits, with the provider names they are labelled with.
pub struct Telemetry {
    providers: Vec<String>,
    /// By `Metric::index`: the host's id, if the host defined the metric.
    metric_ids: Vec<Option<u32>>,
    /// Counts not yet handed to the host: requests bump these, ticks flush them, so the
    /// request path makes no metric hostcalls.
    deltas: Vec<u64>,
    id_token_log: LogLimiter,
}

impl Telemetry {
    pub fn new(providers: Vec<String>) -> Telemetry {
        Telemetry {
            providers,
            metric_ids: Vec::new(),
            deltas: Vec::new(),
            id_token_log: LogLimiter::new(ID_TOKEN_LOG_INTERVAL_MS, 1024),
        }
    }

    /// Defines every metric up front, so dashboards and alerts see zeros, not gaps.
    pub fn define_metrics(&mut self, host: &mut impl Host) {
        let all = Metric::all(self.providers.len());
        self.metric_ids = all.iter().map(|m| host.define_metric(m.is_gauge(), &m.name(&self.providers)).ok()).collect();
        self.deltas = vec![0; all.len()];
    }

    pub fn count(&mut self, m: Metric, by: u64) {
        if by == 0 {
            return;
        }
        if let Some(d) = m.index(self.providers.len()).and_then(|i| self.deltas.get_mut(i)) {
            *d += by;
        }
    }

    /// Hands the counts gathered since the last flush to the host.
    pub fn flush(&mut self, host: &mut impl Host) {
        for (delta, id) in self.deltas.iter_mut().zip(&self.metric_ids) {
            if let (true, Some(id)) = (*delta > 0, id) {
                let _ = host.increment_metric(*id, *delta);
            }
            *delta = 0;
        }
    }

    pub fn gauge(&self, host: &mut impl Host, m: Metric, value: u64) {
        if let Some(Some(id)) = m.index(self.providers.len()).and_then(|i| self.metric_ids.get(i)) {
            let _ = host.record_metric(*id, value);
        }
    }

    /// One debug line per denial; an info line naming the client that sends ID tokens.
    pub fn log_denial(&mut self, denial: &crate::decision::Denial, path: &str, now_ms: u64) {
        let provider = denial.provider.and_then(|i| self.providers.get(i)).map_or("-", String::as_str);
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
