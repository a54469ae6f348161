//! The docs cannot drift from the code: every field the parser accepts is in
//! docs/configuration.md's field index and nothing else is; every reason string and metric name
//! is documented and the docs name no other; every link and anchor in README.md, SECURITY.md and
//! docs/ resolves.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use jwt_guard::deny::Reason;
use jwt_guard::policy::Config;
use jwt_guard::runtime::metrics::{Metric, REASONS};
use jwt_guard::testkit::{provider_json, ISS};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The fields serde names when `config` has an unknown one at `at` (a JSON pointer).
fn accepted_at(mut config: Value, at: &str) -> Vec<String> {
    let target = config.pointer_mut(at).unwrap_or_else(|| panic!("no {at}"));
    target.as_object_mut().unwrap().insert("zz_unknown".into(), json!(1));
    let e = Config::parse(config.to_string().as_bytes()).unwrap_err().to_string();
    let expected = e.split("expected").nth(1).unwrap_or_else(|| panic!("{at}: {e}"));
    expected.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// Every dotted path the parser takes, `<name>` for a provider's name and `[]` for list items,
/// found by asking the parser itself (an unknown field's error lists the known ones).
fn parser_paths() -> BTreeSet<String> {
    let mut p = provider_json();
    p["remote_jwks"] = json!({"http_uri": {"uri": "https://idp.test/jwks", "cluster": "c"}});
    p.as_object_mut().unwrap().remove("local_jwks");
    p["from_headers"] = json!([{"name": "authorization", "value_prefix": "Bearer "}]);
    p["claim_to_headers"] = json!([{"header_name": "x-sub", "claim_name": "sub"}]);
    p["jwt_cache_config"] = json!({});
    p["dpop"] = json!({});
    p["normalize_payload_in_metadata"] = json!({});
    p["introspection"] = json!({"http_uri": {"uri": "https://idp.test/introspect", "cluster": "c"},
                                "client_id": "api", "client_secret": "x"});
    let rule = json!({"match": {"prefix": "/", "headers": [{"name": "a", "present_match": true}]},
                      "requires": {"provider_name": "p"}, "claims": [{"name": "a", "values": ["b"]}]});
    let base = json!({"providers": {"p": p}, "rules": [rule]});
    let mut discovery = base.clone();
    let remote = discovery["providers"]["p"].as_object_mut().unwrap().remove("remote_jwks").unwrap();
    discovery["providers"]["p"]["discovery"] = remote;
    let mut local = base.clone();
    local["providers"]["p"].as_object_mut().unwrap().remove("remote_jwks");
    local["providers"]["p"]["local_jwks"] = provider_json()["local_jwks"].clone();
    let levels: Vec<(&Value, &str, &str)> = vec![
        (&base, "", ""),
        (&base, "/providers/p", "providers.<name>"),
        (&base, "/providers/p/remote_jwks", "providers.<name>.remote_jwks"),
        (&base, "/providers/p/remote_jwks/http_uri", "providers.<name>.remote_jwks.http_uri"),
        (&discovery, "/providers/p/discovery", "providers.<name>.discovery"),
        (&discovery, "/providers/p/discovery/http_uri", "providers.<name>.discovery.http_uri"),
        (&local, "/providers/p/local_jwks", "providers.<name>.local_jwks"),
        (&base, "/providers/p/from_headers/0", "providers.<name>.from_headers[]"),
        (&base, "/providers/p/claim_to_headers/0", "providers.<name>.claim_to_headers[]"),
        (&base, "/providers/p/jwt_cache_config", "providers.<name>.jwt_cache_config"),
        (&base, "/providers/p/dpop", "providers.<name>.dpop"),
        (&base, "/providers/p/normalize_payload_in_metadata", "providers.<name>.normalize_payload_in_metadata"),
        (&base, "/providers/p/introspection", "providers.<name>.introspection"),
        (&base, "/providers/p/introspection/http_uri", "providers.<name>.introspection.http_uri"),
        (&base, "/rules/0", "rules[]"),
        (&base, "/rules/0/match", "rules[].match"),
        (&base, "/rules/0/match/headers/0", "rules[].match.headers[]"),
        (&base, "/rules/0/claims/0", "rules[].claims[]"),
    ];
    let mut out = BTreeSet::new();
    for (config, at, path) in levels {
        for field in accepted_at(config.clone(), at) {
            out.insert(if path.is_empty() { field } else { format!("{path}.{field}") });
        }
    }
    // Requirements are read by hand, not by serde: their forms from the refusal messages.
    let requires = |r: Value| {
        let c = json!({"providers": {"p": provider_json()}, "rules": [{"match": {"prefix": "/"}, "requires": r}]});
        Config::parse(c.to_string().as_bytes()).unwrap_err().to_string()
    };
    let forms = requires(json!({}));
    let forms = forms.split("exactly one of").nth(1).unwrap();
    for form in forms.split([',', ' ']).map(str::trim).filter(|w| !w.is_empty() && *w != "and") {
        out.insert(format!("rules[].requires.{form}"));
    }
    for (form, probe) in [
        ("requires_any", json!({"requires_any": {"zz_unknown": 1}})),
        ("requires_all", json!({"requires_all": {"zz_unknown": 1}})),
        ("provider_and_audiences", json!({"provider_and_audiences": {"zz_unknown": 1}})),
    ] {
        let e = requires(probe);
        for field in e.split("expected").nth(1).unwrap().split('`').skip(1).step_by(2) {
            out.insert(format!("rules[].requires.{form}.{field}"));
        }
    }
    out
}

/// The bullet list under `## Field index` in docs/configuration.md.
fn documented_paths(page: &str) -> BTreeSet<String> {
    let index = page.split("## Field index").nth(1).expect("docs/configuration.md has a `## Field index`");
    let index = index.split("\n## ").next().unwrap();
    index
        .lines()
        .filter_map(|l| l.strip_prefix("- `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_field_the_parser_accepts_is_documented_and_no_other() {
    let page = read("docs/configuration.md");
    let parsed = parser_paths();
    assert!(parsed.len() > 70, "{parsed:?}");
    let documented = documented_paths(&page);
    let undocumented: Vec<&String> = parsed.difference(&documented).collect();
    let unknown: Vec<&String> = documented.difference(&parsed).collect();
    assert!(
        undocumented.is_empty(),
        "fields the parser accepts but docs/configuration.md's index lacks: {undocumented:?}"
    );
    assert!(unknown.is_empty(), "docs/configuration.md lists fields the parser refuses: {unknown:?}");
    // Each field is also described in the page's tables or text, not only listed.
    let described = page.split("## Field index").next().unwrap();
    for path in &parsed {
        let leaf = path.rsplit('.').next().unwrap().trim_end_matches("[]");
        assert!(described.contains(leaf), "docs/configuration.md lists `{path}` but never describes `{leaf}`");
    }
    let _ = ISS;
}

#[test]
fn every_reason_is_documented_and_the_docs_name_no_other() {
    let decisions = read("docs/decisions.md");
    let table = decisions.split("### Decision table").nth(1).unwrap();
    let table = table.split("\n### ").next().unwrap();
    // The last column of each row: `reason` or `reason_a` / `reason_b`.
    let mut in_table: BTreeSet<String> = BTreeSet::new();
    for row in table.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| ---") && !l.starts_with("| case")) {
        let last = row.trim_end_matches('|').rsplit('|').next().unwrap();
        in_table.extend(last.split('`').skip(1).step_by(2).map(str::to_string));
    }
    let code: BTreeSet<String> = REASONS.iter().map(|r| r.to_string()).collect();
    assert_eq!(in_table, code, "the decision table's reasons against the code's");
    for r in Reason::all() {
        assert!(code.contains(r.as_str()));
    }
    let operations = read("docs/operations.md");
    let listed = operations
        .split("Reasons: ")
        .nth(1)
        .expect("docs/operations.md lists the reasons")
        .split("\n\n")
        .next()
        .unwrap();
    let listed: BTreeSet<String> = listed.split('`').skip(1).step_by(2).map(str::to_string).collect();
    assert_eq!(listed, code, "docs/operations.md's reason list against the code's");
}

#[test]
fn every_metric_is_documented_and_the_docs_name_no_other() {
    let names = vec!["<name>".to_string()];
    let mut code: BTreeSet<String> = BTreeSet::new();
    for m in Metric::all(1) {
        let pattern = match m {
            Metric::Denied(_) => "jwt_guard.requests.denied.<reason>".to_string(),
            Metric::ProviderDenied(..) => "jwt_guard.provider.<name>.denied.<reason>".to_string(),
            Metric::JwksFetchError(..) => "jwt_guard.provider.<name>.jwks_fetch.error.<cause>".to_string(),
            other => other.name(&names),
        };
        code.insert(pattern);
    }
    let page = read("docs/operations.md");
    let table = page.split("## Metrics").nth(1).unwrap().split("\n## ").next().unwrap();
    let mut documented: BTreeSet<String> = BTreeSet::new();
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        let first = row.split('|').nth(1).unwrap();
        let names: Vec<&str> = first.split('`').skip(1).step_by(2).collect();
        // `a.b.success` / `.failure`: a suffix after `/` replaces the last segment.
        let full = names[0].to_string();
        documented.insert(full.clone());
        for alt in &names[1..] {
            let stem = full.rsplit_once('.').map_or("", |(s, _)| s);
            documented.insert(format!("{stem}{alt}"));
        }
    }
    assert_eq!(documented, code, "docs/operations.md's metrics table against Metric::all");
}

/// GitHub's heading anchors: lower case, punctuation but `-` and `_` dropped, spaces to `-`.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut in_code = false;
    let mut out = BTreeSet::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if in_code || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim().to_lowercase();
        let slug: String = title
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        out.insert(slug);
    }
    out
}

fn links(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn every_link_and_anchor_resolves() {
    let mut pages: Vec<PathBuf> = vec![root().join("README.md"), root().join("SECURITY.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        pages.push(entry.unwrap().path());
    }
    let mut checked = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") || link.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = link.split_once('#').map_or((link.as_str(), None), |(f, a)| (f, Some(a)));
            let target: PathBuf = if file.is_empty() { page.clone() } else { page.parent().unwrap().join(file) };
            assert!(target.exists(), "{}: link {link} points at nothing", page.display());
            if let Some(a) = anchor {
                let md = std::fs::read_to_string(&target).unwrap();
                assert!(anchors(&md).contains(a), "{}: no heading for #{a} in {}", page.display(), target.display());
            }
            checked += 1;
        }
    }
    assert!(checked > 60, "only {checked} links");
    // The README reaches every page in one hop.
    let readme = read("README.md");
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(readme.contains(&format!("](docs/{name}")), "README.md does not link docs/{name}");
    }
    let _ = Path::new("");
}
