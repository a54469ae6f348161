//! What an allowed request carries upstream: claim headers set, the token stripped (header,
//! query parameter or cookie) unless forwarded, and headers only jwt-guard may set dropped.

use std::rc::Rc;

use crate::authn::Verified;
use crate::decision::engine::{Engine, Mutations, Request};
use crate::decision::extractor::{find_token, remove_cookie, remove_query_param, Found, Location};
use crate::policy::PAYLOAD_HEADER;

impl Engine {
    /// Claim headers a client sent are always dropped: only we may set them. So are their
    /// spellings with `_` for `-`, which CGI, WSGI, Rack and PHP upstreams read as the same
    /// header (`x_jwt_sub` is their `HTTP_X_JWT_SUB`, as is `x-jwt-sub`).
    fn base_mutations(&self, req: &Request<'_>) -> Mutations {
        // Only what the client sent: a removal is a hostcall, and most requests carry none.
        let mut remove_headers: Vec<String> = Vec::new();
        for (name, _) in req.headers.iter() {
            let protected = if name.contains('_') {
                self.config.protected_headers.contains(&name.replace('_', "-"))
            } else {
                self.config.protected_headers.iter().any(|h| h == name)
            };
            if protected && !remove_headers.iter().any(|h| h == name) {
                remove_headers.push(name.to_string());
            }
        }
        Mutations { remove_headers, ..Mutations::default() }
    }

    /// A route without `requires` checks no token, but a provider with `forward: false` still
    /// keeps its tokens from the upstream. A credential header that does not even extract
    /// (repeated, say) is dropped whole.
    pub(super) fn unchecked_route_mutations(&self, req: &Request<'_>) -> Mutations {
        let mut malformed: Vec<&str> = Vec::new();
        let found: Vec<Option<Found>> = self
            .config
            .providers
            .iter()
            .map(|p| match find_token(&p.extraction, req.path, req.headers) {
                Ok(f) => f,
                Err(_) => {
                    if !p.forward {
                        malformed.extend(p.extraction.headers.iter().map(|h| h.name.as_str()));
                    }
                    None
                }
            })
            .collect();
        let mut m = self.mutations(req, &found, &[]);
        for name in malformed {
            if req.headers.iter().any(|(k, _)| *k == name) && !m.remove_headers.iter().any(|h| h == name) {
                m.remove_headers.push(name.to_string());
            }
        }
        m
    }

    pub(super) fn mutations(
        &self,
        req: &Request<'_>,
        found: &[Option<Found>],
        verified: &[(usize, Rc<Verified>)],
    ) -> Mutations {
        let mut m = self.base_mutations(req);
        // Only a token in the query string changes the path; most requests never copy it.
        let mut path: Option<String> = None;
        let mut cookies_to_drop: Vec<&str> = Vec::new();
        for (i, f) in found.iter().enumerate() {
            let Some(f) = f else { continue };
            if self.config.providers[self.config.verifier(i).0].forward {
                continue;
            }
            match &f.location {
                Location::Header(name) => {
                    if !m.remove_headers.contains(name) {
                        m.remove_headers.push(name.clone());
                    }
                    // The proof goes with its token: the upstream could replay neither.
                    if f.dpop && !m.remove_headers.iter().any(|h| h == "dpop") {
                        m.remove_headers.push("dpop".to_string());
                    }
                }
                Location::Param(name) => path = Some(remove_query_param(path.as_deref().unwrap_or(req.path), name)),
                Location::Cookie(name) => cookies_to_drop.push(name),
            }
        }
        m.path = path.filter(|p| p != req.path);
        if !cookies_to_drop.is_empty() {
            let joined: Vec<String> = req
                .headers
                .iter()
                .filter(|(k, _)| *k == "cookie")
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .collect();
            let mut value = Some(joined.join("; "));
            for name in cookies_to_drop {
                value = value.and_then(|v| remove_cookie(&v, name));
            }
            match value {
                Some(v) => m.set_headers.push(("cookie".to_string(), v)),
                None => m.remove_headers.push("cookie".to_string()),
            }
        }
        for (i, v) in verified {
            let p = &self.config.providers[*i];
            if let Some(h) = &p.forward_payload_header {
                m.set_headers.push((h.clone(), v.payload_b64.clone()));
            }
            // One header, so the first verified token that carries it (in requirement order).
            if let Some(pm) = &v.payload_metadata {
                if !m.set_headers.iter().any(|(h, _)| h == PAYLOAD_HEADER) {
                    m.set_headers.push((PAYLOAD_HEADER.to_string(), pm.clone()));
                }
            }
            m.set_headers.extend(v.claim_headers.iter().cloned());
        }
        m
    }
}
