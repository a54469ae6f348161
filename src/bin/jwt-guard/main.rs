//! `jwt-guard`: the filter's core on the command line.
//!
//!   jwt-guard check-config FILE
//!   jwt-guard import [--cluster HOST=NAME]... FILE...
//!   jwt-guard explain --config FILE [--jwks FILE] [--path P | --url URL] [--method M]
//!                     [--host HOST] [--header NAME:VALUE]... [--param NAME=VALUE]...
//!                     [--cookie NAME=VALUE]... [--dpop PROOF] [--client-cert-sha256 HEX]
//!                     [--now UNIX] [--no-token | TOKEN | -]
//!
//! `explain` prints the decision the filter would make for a request carrying TOKEN in the
//! Authorization header (or read from stdin), or no token, or tokens in the headers, query
//! parameters and cookies given: which rule matched and why, every provider's checks on the
//! token it finds, and the exact response. With `--dpop` the token goes as
//! `Authorization: DPoP` with that proof.
//! `import` prints jwt-guard's configuration for a jwt_authn (+ RBAC) Envoy configuration or
//! Istio RequestAuthentication/AuthorizationPolicy resources, and on stderr what it did not carry.
//! Exit status: 0 allowed / valid config / all carried, 2 denied / not all carried, 1 usage or
//! configuration error.

use std::collections::HashSet;
use std::io::Read;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use jwt_guard::authn::token_kind::{classify, IdSignal, Kind};
use jwt_guard::authn::{authenticate_traced, Check, Tracer};
use jwt_guard::decision::extractor::find_token;
use jwt_guard::decision::route::matching_rules;
use jwt_guard::decision::{Engine, Outcome, Request};
use jwt_guard::jwks::KeySet;
use jwt_guard::jwks::{KeyState, KidRefetch};
use jwt_guard::policy::{ClientSecret, Config, KeySource, Rule, RuleAction};

mod describe;
mod import;
use describe::{describe_rule, describe_token};

const USAGE: &str = "usage:
  jwt-guard check-config FILE
  jwt-guard import [--cluster HOST=NAME]... FILE...
  jwt-guard explain --config FILE [--jwks FILE] [--path PATH | --url URL] [--method METHOD]
                    [--host HOST] [--header NAME:VALUE]... [--param NAME=VALUE]...
                    [--cookie NAME=VALUE]... [--dpop PROOF] [--client-cert-sha256 HEX]
                    [--now UNIX_SECONDS] [--no-token | TOKEN | -]

explain sends TOKEN as `Authorization: Bearer`, reading it from stdin when it is `-`, or when
it is absent and no --no-token, --header, --param or --cookie says where the credentials are.
--header, --param and --cookie add request headers (pseudo-headers too), query parameters and
cookies (a token in a custom place goes there); --host sets :authority. --jwks supplies the keys of
providers that use remote_jwks or discovery. --url sets the scheme, host and path a DPoP
proof's htu is checked against (default http://localhost/ and --path). --dpop sends the token
as `Authorization: DPoP` with that proof; --client-cert-sha256 is the client certificate's
SHA-256 (hex) for certificate-bound tokens. Exit status: 0 allowed, 2 denied, 1 error.

import reads Envoy configurations (YAML or JSON) holding a jwt_authn filter, with RBAC filters
after it or not, or Istio RequestAuthentication and AuthorizationPolicy resources, and prints
jwt-guard's configuration; stderr names each thing not carried. An Istio jwksUri is fetched
through cluster outbound|PORT||HOST unless --cluster HOST=NAME names another. Exit status: 0
everything carried, 2 printed but not everything carried, 1 nothing usable.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("check-config") => check_config(&args[1..]),
        Some("explain") => explain(&args[1..]),
        Some("import") => import::run(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{path}: {e}"))
}

fn load_config(path: &str) -> Result<Config, String> {
    Config::parse(&read(path)?).map_err(|e| e.to_string())
}

fn check_config(args: &[String]) -> Result<ExitCode, String> {
    let [path] = args else { return Err(USAGE.to_string()) };
    let config = load_config(path)?;
    println!(
        "{path}: OK ({} provider{}: {}; {})",
        config.providers.len(),
        if config.providers.len() == 1 { "" } else { "s" },
        config.providers.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "),
        match &config.rules {
            None => "no rules: every request needs a valid token from any provider".to_string(),
            Some(r) => format!("{} rule{}", r.len(), if r.len() == 1 { "" } else { "s" }),
        }
    );
    for w in config.warnings() {
        println!("  warning: {w}");
    }
    // The proxy's clusters are not in this file: say which ones it must define.
    for p in &config.providers {
        if let KeySource::Remote(r) = &p.keys {
            println!(
                "  provider {}: fetches {} through cluster {:?}, which must exist in Envoy's configuration \
                 (this check cannot see it; a missing cluster is logged at runtime as 'Envoy has no cluster')",
                p.name, r.uri, r.cluster
            );
        }
        if let Some(i) = &p.introspection {
            let secret = match &i.secret {
                ClientSecret::Env(name) => format!("the secret from the VM's environment variable {name}"),
                _ => "the inline client_secret".to_string(),
            };
            let at = if i.discovered { format!("the introspection_endpoint {} names", i.uri) } else { i.uri.clone() };
            println!(
                "  provider {}: introspects tokens that are not JWTs at {at} through cluster {:?} as client {:?}, \
                 with {secret}",
                p.name, i.cluster, i.client_id
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

struct Recorder(HashSet<&'static str>);

impl Tracer for Recorder {
    fn passed(&mut self, check: Check) {
        self.0.insert(check.name());
    }
}

struct Options {
    config: String,
    jwks: Option<String>,
    path: String,
    method: String,
    now: u64,
    token: Option<String>,
    scheme: String,
    authority: String,
    dpop: Option<String>,
    client_cert: Option<String>,
    /// `--no-token`, or credentials only in --header/--param/--cookie.
    no_token: bool,
    headers: Vec<(String, String)>,
    params: Vec<String>,
    cookies: Vec<String>,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut o = Options {
        config: String::new(),
        jwks: None,
        path: "/".into(),
        method: "GET".into(),
        now,
        token: None,
        scheme: "http".into(),
        authority: "localhost".into(),
        dpop: None,
        client_cert: None,
        no_token: false,
        headers: Vec::new(),
        params: Vec::new(),
        cookies: Vec::new(),
    };
    let mut stdin_token = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{a} needs a value\n{USAGE}"));
        match a.as_str() {
            "--config" => o.config = value()?,
            "--jwks" => o.jwks = Some(value()?),
            "--path" => o.path = value()?,
            "--url" => {
                let url = value()?;
                let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("--url {url:?} is not absolute"))?;
                let (authority, path) = match rest.find('/') {
                    Some(i) => (&rest[..i], &rest[i..]),
                    None => (rest, "/"),
                };
                (o.scheme, o.authority, o.path) = (scheme.to_string(), authority.to_string(), path.to_string());
            }
            "--dpop" => o.dpop = Some(value()?),
            "--client-cert-sha256" => o.client_cert = Some(value()?),
            "--method" => o.method = value()?.to_ascii_uppercase(),
            "--now" => o.now = value()?.parse().map_err(|_| "--now takes Unix seconds".to_string())?,
            "--no-token" => o.no_token = true,
            "--host" => o.authority = value()?,
            "--header" => {
                let v = value()?;
                let (name, val) = v.split_once(':').filter(|(n, _)| !n.is_empty()).map_or_else(
                    // `:authority:x` names a pseudo-header: the first `:` belongs to the name.
                    || Err(format!("--header {v:?} is not NAME:VALUE")),
                    |(n, val)| Ok((n.to_string(), val.trim_start().to_string())),
                )?;
                let (name, val) = match v.strip_prefix(':').and_then(|r| r.split_once(':')) {
                    Some((pseudo, val)) => (format!(":{pseudo}"), val.trim_start().to_string()),
                    None => (name, val),
                };
                o.headers.push((name.to_ascii_lowercase(), val));
            }
            "--param" => o.params.push(value()?),
            "--cookie" => o.cookies.push(value()?),
            "-" => stdin_token = true,
            t if !t.starts_with("--") && o.token.is_none() => o.token = Some(t.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if o.config.is_empty() {
        return Err(format!("--config is required\n{USAGE}"));
    }
    if o.no_token && (o.token.is_some() || stdin_token) {
        return Err(format!("--no-token takes no TOKEN\n{USAGE}"));
    }
    // Credentials placed elsewhere: no Authorization header unless a TOKEN is given too.
    if o.token.is_none() && !stdin_token && !(o.headers.is_empty() && o.params.is_empty() && o.cookies.is_empty()) {
        o.no_token = true;
    }
    Ok(o)
}

fn explain(args: &[String]) -> Result<ExitCode, String> {
    let o = parse_options(args)?;
    let config = load_config(&o.config)?;
    let remote_keys = match &o.jwks {
        Some(path) => Some(KeySet::parse(&read(path)?).map_err(|e| format!("{path}: {e}"))?),
        None => None,
    };
    let token = match (&o.token, o.no_token) {
        (_, true) => None,
        (Some(t), false) => Some(t.clone()),
        (None, false) => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map_err(|e| format!("stdin: {e}"))?;
            Some(s)
        }
    };
    let token = token.map(|t| {
        let trimmed = t.trim();
        trimmed.strip_prefix("Bearer ").or_else(|| trimmed.strip_prefix("DPoP ")).unwrap_or(trimmed).to_string()
    });

    // The request as the filter would see it.
    let mut path = o.path.clone();
    for (i, param) in o.params.iter().enumerate() {
        path.push(if i == 0 && !path.contains('?') { '?' } else { '&' });
        path.push_str(param);
    }
    let auth = token.as_ref().map(|t| format!("{} {t}", if o.dpop.is_some() { "DPoP" } else { "Bearer" }));
    let cookie = o.cookies.join("; ");
    let mut headers: Vec<(&str, &[u8])> = vec![
        (":method", o.method.as_bytes()),
        (":path", path.as_bytes()),
        (":scheme", o.scheme.as_bytes()),
        (":authority", o.authority.as_bytes()),
    ];
    headers.retain(|(k, _)| !o.headers.iter().any(|(h, _)| h == k));
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_bytes()));
    }
    if !cookie.is_empty() {
        headers.push(("cookie", cookie.as_bytes()));
    }
    if let Some(proof) = &o.dpop {
        headers.push(("dpop", proof.as_bytes()));
    }
    headers.extend(o.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));

    println!("Request");
    println!("  {} {path}", o.method);
    for (k, v) in &headers {
        if *k != ":method" && *k != ":path" {
            let v = String::from_utf8_lossy(v);
            let shown =
                if *k == "authorization" || v.len() > 80 { format!("({} bytes)", v.len()) } else { v.into_owned() };
            println!("  {k}: {shown}");
        }
    }
    println!();
    match &config.rules {
        None => println!("Rule: none configured, so every request needs a valid token from any provider"),
        Some(rules) => {
            let index = |rule: &Rule| rules.iter().position(|r| std::ptr::eq(r, rule)).unwrap_or(0);
            let mut fits = matching_rules(rules, &o.method, &path, &headers);
            match fits.next() {
                None => println!("Rule: none matches (path, method, headers and host), so the request is refused"),
                Some(rule) => {
                    println!(
                        "Rule: rules[{}] is the first whose match fits: {}",
                        index(rule),
                        describe_rule(&config, rule)
                    );
                    // An allow rule whose conditions fail, or a deny rule whose do not hold, hands on.
                    if rule.action != RuleAction::Require {
                        for next in fits {
                            println!(
                                "  then, unless one decides: rules[{}]: {}",
                                index(next),
                                describe_rule(&config, next)
                            );
                            if next.action == RuleAction::Require {
                                break;
                            }
                        }
                    }
                }
            }
        }
    }

    let keys_for = |src: &KeySource| -> Option<KeySet> {
        match src {
            KeySource::Local(k) => Some(k.clone()),
            KeySource::Remote(_) => remote_keys.clone(),
        }
    };
    for p in &config.providers {
        println!();
        println!(
            "Provider {} (issuer {}, audiences {})",
            p.name,
            p.issuers.as_ref().map(|i| i.describe()).unwrap_or_else(|| "-".to_string()),
            if p.allow_any_audience { "any, unchecked".to_string() } else { p.audiences.join(", ") }
        );
        let token = match find_token(&p.extraction, &path, &headers) {
            Ok(Some(found)) => found.token,
            Ok(None) => {
                println!("  no token in this provider's places (headers, parameters, cookies)");
                continue;
            }
            Err(r) => {
                println!("  the request is refused before any check: {} ({})", r.as_str(), r.description(&p.audiences));
                continue;
            }
        };
        let parsed = describe_token(&token);
        if let Some(jwt) = &parsed {
            let kind = classify(p, &jwt.header, &jwt.claims);
            println!(
                "  classification: {}",
                match kind {
                    Kind::Access => "access token (header typ at+jwt)".to_string(),
                    Kind::Id(IdSignal::PayloadTyp) => "ID token (payload typ \"ID\")".to_string(),
                    Kind::Id(IdSignal::Claim(c)) => format!("ID token (claim `{c}` is present)"),
                    Kind::Id(IdSignal::ClientAudience) => "ID token (aud names the client, not the API)".to_string(),
                    Kind::Unmarked => "no signal: checked as an access token".to_string(),
                }
            );
        }
        let Some(keys) = keys_for(&p.keys) else {
            println!("  no keys: this provider fetches its JWKS; pass --jwks FILE to check signatures");
            continue;
        };
        let mut rec = Recorder(HashSet::new());
        let result = authenticate_traced(p, &keys, &token, o.now, &mut rec);
        let signature_passed = rec.0.contains(Check::Signature.name());
        let mut failed_shown = false;
        for check in Check::ALL {
            let name = check.name();
            if rec.0.contains(name) {
                println!("  pass  {name}");
            } else if check == Check::Audience && signature_passed {
                println!("  no    {name}: aud does not name this API (decided by classification below)");
            } else if !failed_shown {
                if let Err(r) = &result {
                    println!("  FAIL  {name}: {} ({})", r.as_str(), r.description(&p.audiences));
                }
                failed_shown = true;
            } else {
                println!("  ----  {name} (not reached)");
            }
        }
        match &result {
            Ok(v) => println!(
                "  verdict: valid (scopes: {})",
                if v.scopes.is_empty() { "none".into() } else { v.scopes.join(" ") }
            ),
            Err(r) => println!("  verdict: {}", r.as_str()),
        }
    }

    let engine = Engine::new(config.clone());
    let key_sets: Vec<Option<KeySet>> = config.providers.iter().map(|p| keys_for(&p.keys)).collect();
    let states: Vec<KeyState<'_>> = key_sets
        .iter()
        .map(|k| match k {
            Some(k) => KeyState::Ready(k, KidRefetch::Exhausted),
            None => KeyState::Unavailable,
        })
        .collect();
    let cert = o.client_cert.clone();
    let peer_certificate = move || cert.clone().map(String::into_bytes);
    let req = Request { method: &o.method, path: &path, headers: &headers, peer_certificate: &peer_certificate };
    let mut caches = engine.new_caches();
    println!();
    println!("Decision for {} {path}", o.method);
    match engine.decide(&req, &states, o.now, &mut caches) {
        // No preflight here: explain sends no Origin header.
        Outcome::Allow { mutations, verified, .. } => {
            println!("  status: allowed (the request goes upstream)");
            for (i, _) in verified {
                println!("  verified by: {}", config.providers[i].name);
            }
            for h in &mutations.remove_headers {
                println!("  remove header: {h}");
            }
            for (h, v) in &mutations.set_headers {
                println!("  set header: {h}: {v}");
            }
            if let Some(p) = &mutations.path {
                println!("  new path: {p}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Deny(d) => {
            println!("  status: {}", d.response.status);
            println!("  reason: {}", d.reason.as_str());
            for (h, v) in &d.response.headers {
                println!("  {h}: {v}");
            }
            println!("  body: {}", d.response.body);
            Ok(ExitCode::from(2))
        }
        Outcome::Wait { introspect, .. } if !introspect.is_empty() => {
            for (i, _) in introspect {
                let uri = config.providers[i].introspection.as_ref().map_or("", |x| x.uri.as_str());
                println!("  the filter would ask {uri} about this opaque token (RFC 7662) and decide on its answer");
            }
            Ok(ExitCode::from(2))
        }
        Outcome::Wait { .. } => {
            println!("  the filter would wait for keys (pass --jwks FILE)");
            Ok(ExitCode::from(2))
        }
    }
}
