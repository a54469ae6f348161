//! Metric names. Counters use the same stable reason strings as responses and logs, so a 401
//! in a log, a response and a dashboard all say the same word. Names are flat (Envoy shows
//! wasm metrics as `wasmcustom.<name>`, Prometheus as `envoy_wasmcustom_<name with _>`).

use crate::deny::{Reason, NAMES};
use crate::refresh::fetch_error::FetchError;

const CAUSES: [&str; 9] = FetchError::CAUSES;

/// Every reason string a request can be denied with, in documentation order.
pub const REASONS: [&str; NAMES.len()] = NAMES;

/// Everything jwt-guard counts or measures.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Requests let through (all rules, with or without a token).
    Allowed,
    /// Requests refused, by reason (its position in REASONS: `Reason::name_index`).
    Denied(usize),
    /// Requests a provider's verified token let through.
    ProviderAllowed(usize),
    /// Of those, the ones whose audience was not checked (`allow_any_audience`).
    AudienceUnchecked(usize),
    /// Requests refused on a provider's verdict, by reason (as in `Denied`).
    ProviderDenied(usize, usize),
    /// Requests paused to wait for keys.
    Paused,
    /// CORS preflights let through unchecked (also counted in `Allowed`).
    Preflight,
    JwksFetchSuccess(usize),
    JwksFetchFailure(usize),
    /// Failed fetches by cause (`FetchError::cause`).
    JwksFetchError(usize, &'static str),
    CacheHit(usize),
    CacheMiss(usize),
    /// Gauge: usable keys in the provider's key set.
    KeysLoaded(usize),
    /// Gauge: seconds since the provider's keys were fetched.
    JwksAgeSeconds(usize),
    /// Gauge: tokens in this VM's verified-token cache.
    CacheEntries(usize),
    /// RFC 7662 calls this VM made for the provider.
    IntrospectionCall(usize),
    /// Answers this VM took from another VM of the same Envoy (shared data) instead of calling.
    IntrospectionSharedHit(usize),
    /// Answers saying the token is not active.
    IntrospectionInactive(usize),
    /// Calls that got no usable answer (unreachable, timeout, non-200), or could not start.
    IntrospectionFailure(usize),
    /// The calls' time to answer, summed in milliseconds (divide by `calls` for the mean).
    IntrospectionLatencyMs(usize),
}

impl Metric {
    pub fn is_gauge(&self) -> bool {
        matches!(self, Metric::KeysLoaded(_) | Metric::JwksAgeSeconds(_) | Metric::CacheEntries(_))
    }

    pub fn name(&self, providers: &[String]) -> String {
        let p = |i: &usize| providers.get(*i).map_or("unknown", String::as_str).to_string();
        let r = |k: &usize| REASONS.get(*k).copied().unwrap_or("unknown");
        match self {
            Metric::Allowed => "jwt_guard.requests.allowed".to_string(),
            Metric::Denied(k) => format!("jwt_guard.requests.denied.{}", r(k)),
            Metric::Paused => "jwt_guard.requests.paused".to_string(),
            Metric::Preflight => "jwt_guard.requests.preflight".to_string(),
            Metric::ProviderAllowed(i) => format!("jwt_guard.provider.{}.allowed", p(i)),
            Metric::AudienceUnchecked(i) => format!("jwt_guard.provider.{}.audience_unchecked", p(i)),
            Metric::ProviderDenied(i, k) => format!("jwt_guard.provider.{}.denied.{}", p(i), r(k)),
            Metric::JwksFetchSuccess(i) => format!("jwt_guard.provider.{}.jwks_fetch.success", p(i)),
            Metric::JwksFetchFailure(i) => format!("jwt_guard.provider.{}.jwks_fetch.failure", p(i)),
            Metric::JwksFetchError(i, c) => format!("jwt_guard.provider.{}.jwks_fetch.error.{c}", p(i)),
            Metric::CacheHit(i) => format!("jwt_guard.provider.{}.cache.hit", p(i)),
            Metric::CacheMiss(i) => format!("jwt_guard.provider.{}.cache.miss", p(i)),
            Metric::KeysLoaded(i) => format!("jwt_guard.provider.{}.keys_loaded", p(i)),
            Metric::JwksAgeSeconds(i) => format!("jwt_guard.provider.{}.jwks_age_seconds", p(i)),
            Metric::CacheEntries(i) => format!("jwt_guard.provider.{}.cache.entries", p(i)),
            Metric::IntrospectionCall(i) => format!("jwt_guard.provider.{}.introspection.calls", p(i)),
            Metric::IntrospectionSharedHit(i) => format!("jwt_guard.provider.{}.introspection.shared_hit", p(i)),
            Metric::IntrospectionInactive(i) => format!("jwt_guard.provider.{}.introspection.inactive", p(i)),
            Metric::IntrospectionFailure(i) => format!("jwt_guard.provider.{}.introspection.failure", p(i)),
            Metric::IntrospectionLatencyMs(i) => format!("jwt_guard.provider.{}.introspection.latency_ms_total", p(i)),
        }
    }

    /// Every metric for a configuration, defined up front so dashboards see zeros.
    /// The metric's position in `all(provider_count)`, computed rather than looked up: the
    /// request path counts several metrics per request.
    pub fn index(&self, provider_count: usize) -> Option<usize> {
        const GLOBAL: usize = 3 + REASONS.len();
        const PER_PROVIDER: usize = 1 + REASONS.len() + 8 + CAUSES.len() + 5;
        let reason = |k: usize| (k < REASONS.len()).then_some(k);
        let cause = |c: &str| CAUSES.iter().position(|x| *x == c);
        let provider = |i: usize, offset: usize| (i < provider_count).then_some(GLOBAL + i * PER_PROVIDER + offset);
        match self {
            Metric::Allowed => Some(0),
            Metric::Paused => Some(1),
            Metric::Preflight => Some(2),
            Metric::Denied(k) => reason(*k).map(|k| 3 + k),
            Metric::ProviderAllowed(i) => provider(*i, 0),
            Metric::ProviderDenied(i, k) => reason(*k).and_then(|k| provider(*i, 1 + k)),
            Metric::JwksFetchSuccess(i) => provider(*i, 1 + REASONS.len()),
            Metric::JwksFetchFailure(i) => provider(*i, 2 + REASONS.len()),
            Metric::CacheHit(i) => provider(*i, 3 + REASONS.len()),
            Metric::CacheMiss(i) => provider(*i, 4 + REASONS.len()),
            Metric::KeysLoaded(i) => provider(*i, 5 + REASONS.len()),
            Metric::JwksAgeSeconds(i) => provider(*i, 6 + REASONS.len()),
            Metric::CacheEntries(i) => provider(*i, 7 + REASONS.len()),
            Metric::AudienceUnchecked(i) => provider(*i, 8 + REASONS.len()),
            Metric::JwksFetchError(i, c) => cause(c).and_then(|k| provider(*i, 9 + REASONS.len() + k)),
            Metric::IntrospectionCall(i) => provider(*i, 9 + REASONS.len() + CAUSES.len()),
            Metric::IntrospectionSharedHit(i) => provider(*i, 10 + REASONS.len() + CAUSES.len()),
            Metric::IntrospectionInactive(i) => provider(*i, 11 + REASONS.len() + CAUSES.len()),
            Metric::IntrospectionFailure(i) => provider(*i, 12 + REASONS.len() + CAUSES.len()),
            Metric::IntrospectionLatencyMs(i) => provider(*i, 13 + REASONS.len() + CAUSES.len()),
        }
    }

    pub fn all(provider_count: usize) -> Vec<Metric> {
        let mut out = vec![Metric::Allowed, Metric::Paused, Metric::Preflight];
        out.extend((0..REASONS.len()).map(Metric::Denied));
        for i in 0..provider_count {
            out.push(Metric::ProviderAllowed(i));
            out.extend((0..REASONS.len()).map(|k| Metric::ProviderDenied(i, k)));
            out.extend([
                Metric::JwksFetchSuccess(i),
                Metric::JwksFetchFailure(i),
                Metric::CacheHit(i),
                Metric::CacheMiss(i),
                Metric::KeysLoaded(i),
                Metric::JwksAgeSeconds(i),
                Metric::CacheEntries(i),
                Metric::AudienceUnchecked(i),
            ]);
            out.extend(CAUSES.iter().map(|c| Metric::JwksFetchError(i, c)));
            out.extend([
                Metric::IntrospectionCall(i),
                Metric::IntrospectionSharedHit(i),
                Metric::IntrospectionInactive(i),
                Metric::IntrospectionFailure(i),
                Metric::IntrospectionLatencyMs(i),
            ]);
        }
        out
    }
}

/// The counters one denial bumps.
pub fn for_denial(reason: &Reason, provider: Option<usize>) -> Vec<Metric> {
    let k = reason.name_index();
    let mut out = vec![Metric::Denied(k)];
    if let Some(i) = provider {
        out.push(Metric::ProviderDenied(i, k));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_the_position_in_all() {
        for n in 0..4 {
            let all = Metric::all(n);
            for (i, m) in all.iter().enumerate() {
                assert_eq!(m.index(n), Some(i), "{m:?} with {n} providers");
            }
            assert_eq!(Metric::CacheHit(n).index(n), None, "no such provider");
            assert_eq!(Metric::ProviderDenied(n, Reason::Expired.name_index()).index(n), None);
        }
        assert_eq!(Metric::Denied(REASONS.len()).index(1), None);
    }

    #[test]
    fn reasons_are_the_reason_strings_of_every_variant_in_order() {
        let mut strings: Vec<&str> = Vec::new();
        for r in Reason::all() {
            if !strings.contains(&r.as_str()) {
                strings.push(r.as_str());
            }
        }
        assert_eq!(strings, REASONS);
    }

    #[test]
    fn names() {
        let providers = vec!["auth0".to_string()];
        let (id_token, no_route) = (Reason::IdToken.name_index(), Reason::NoRoute.name_index());
        assert_eq!(Metric::ProviderDenied(0, id_token).name(&providers), "jwt_guard.provider.auth0.denied.id_token");
        assert_eq!(Metric::Denied(no_route).name(&providers), "jwt_guard.requests.denied.no_route");
        assert_eq!(
            for_denial(&Reason::NoCompatibleKey, Some(0))[1].name(&providers),
            "jwt_guard.provider.auth0.denied.unknown_kid"
        );
        assert_eq!(Metric::all(1).len(), 3 + 44 + 1 + 44 + 8 + 9 + 5);
        // Every metric has its own name.
        let two = vec!["a".to_string(), "b".to_string()];
        let names: std::collections::HashSet<String> = Metric::all(2).iter().map(|m| m.name(&two)).collect();
        assert_eq!(names.len(), Metric::all(2).len());
    }
}
