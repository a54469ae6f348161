//! What a decision leaves in Envoy's filter state (`set_property` writes it under `wasm.`), for
//! Envoy RBAC's `filter_state` matcher and access logs (`%FILTER_STATE(wasm.jwt_guard.principal:PLAIN)%`).

use crate::decision::Outcome;

/// `<iss>/<sub>` of the verified token, as Istio's `requestPrincipals` spell it.
pub const PRINCIPAL: &str = "jwt_guard.principal";
/// The decision's reason string (`allowed` for a request let through).
pub const REASON: &str = "jwt_guard.reason";
/// Declared as strings, so logs and RBAC read plain text rather than base64 bytes
/// (envoyproxy/envoy#38795).
pub const PROPERTIES: [&str; 2] = [PRINCIPAL, REASON];

/// The properties to set for this outcome, in order; none while it waits for keys.
pub fn filter_state(outcome: &Outcome) -> Vec<(&'static str, &str)> {
    match outcome {
        Outcome::Allow { verified, .. } => {
            let mut out = vec![(REASON, "allowed")];
            if let Some(p) = verified.iter().find_map(|(_, v)| v.principal.as_deref()) {
                out.push((PRINCIPAL, p));
            }
            out
        }
        Outcome::Deny(d) => {
            let mut out = vec![(REASON, d.reason.as_str())];
            if let Some(p) = &d.principal {
                out.push((PRINCIPAL, p.as_str()));
            }
            out
        }
        Outcome::Wait { .. } => Vec::new(),
    }
}
