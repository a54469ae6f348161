//! Route rules: the first rule whose path and method match decides what the request needs.
//! Matching sees the path without its query string, as Envoy's route matching does. Path
//! normalization (`//`, `%2F`, `..`) is Envoy's job: the shipped configs turn on
//! `normalize_path` and `merge_slashes` so `/admin` cannot be reached as `//admin`.

use crate::policy::{PathMatch, Rule};

pub fn find_rule<'a>(rules: &'a [Rule], method: &str, path: &str) -> Option<&'a Rule> {
    let path = path.split_once('?').map(|(p, _)| p).unwrap_or(path);
    let path = path.split_once('#').map(|(p, _)| p).unwrap_or(path);
    rules.iter().find(|rule| {
        let path_ok = match &rule.matcher.path {
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
            PathMatch::Exact(p) => path == p,
        };
        path_ok && (rule.matcher.methods.is_empty() || rule.matcher.methods.iter().any(|m| m == method))
    })
}
