//! Route rules: the rules whose match fits (path, method, headers, host), in order; the first
//! decides what the request needs unless its action hands the request on. Paths are matched
//! without the query string, as Envoy's route matching does.
//! Path normalization (`//`, `%2F`, `..`) is Envoy's job: the shipped configs turn on
//! `normalize_path` and `merge_slashes` so `/admin` cannot be reached as `//admin`.

use crate::decision::extractor::Headers;
use crate::policy::{HeaderCondition, HeaderTest, PathMatch, Pattern, Rule};

/// Every rule whose match fits, in order: an `allow` rule whose conditions fail, or a `deny`
/// rule whose conditions do not hold, hands the request to the next one.
pub fn matching_rules<'a, 'r>(
    rules: &'a [Rule],
    method: &'r str,
    path: &'r str,
    headers: &'r Headers<'r>,
) -> impl Iterator<Item = &'a Rule> + 'r
where
    'a: 'r,
{
    let path = path.split_once('?').map(|(p, _)| p).unwrap_or(path);
    let path = path.split_once('#').map(|(p, _)| p).unwrap_or(path);
    // Lower-cased once per request, and only if a rule has host conditions.
    let authority = std::cell::OnceCell::new();
    rules.iter().filter(move |rule| {
        let m = &rule.matcher;
        let path_ok = match &m.path {
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
            PathMatch::Exact(p) => path == p,
            PathMatch::SeparatedPrefix(p) => {
                p == "/" || path.strip_prefix(p.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }
            PathMatch::Suffix(s) => path.ends_with(s.as_str()),
        };
        path_ok
            && (m.methods.is_empty() || m.methods.iter().any(|x| x == method))
            && m.headers.iter().all(|h| header_matches(h, headers))
            && hosts_match(&m.hosts, &m.not_hosts, || authority.get_or_init(|| lower_authority(headers)))
    })
}

/// Envoy's HeaderMatcher: several values of a header are joined with `,`; a header that is
/// absent matches only `present_match: false` (or, inverted, `present_match: true`).
pub fn header_matches(c: &HeaderCondition, headers: &Headers<'_>) -> bool {
    let values: Vec<&[u8]> = headers.iter().filter(|(k, _)| *k == c.name).map(|(_, v)| *v).collect();
    if values.is_empty() {
        return matches!(c.test, HeaderTest::Present(present) if present == c.invert);
    }
    let joined = values.join(&b","[..]);
    let value = String::from_utf8_lossy(&joined);
    let hit = match &c.test {
        HeaderTest::Exact(e) => value == e.as_str(),
        HeaderTest::Prefix(p) => value.starts_with(p.as_str()),
        HeaderTest::Suffix(s) => value.ends_with(s.as_str()),
        HeaderTest::Contains(x) => value.contains(x.as_str()),
        HeaderTest::Present(present) => *present,
    };
    hit != c.invert
}

/// Istio's host matching: the whole `:authority` (port included), case-insensitively.
fn hosts_match<'x>(hosts: &[Pattern], not_hosts: &[Pattern], authority: impl FnOnce() -> &'x str) -> bool {
    if hosts.is_empty() && not_hosts.is_empty() {
        return true;
    }
    let authority = authority();
    (hosts.is_empty() || hosts.iter().any(|p| p.matches(authority))) && !not_hosts.iter().any(|p| p.matches(authority))
}

fn lower_authority(headers: &Headers<'_>) -> String {
    headers
        .iter()
        .find(|(k, _)| *k == ":authority")
        .map(|(_, v)| String::from_utf8_lossy(v).to_ascii_lowercase())
        .unwrap_or_default()
}
