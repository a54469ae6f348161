//! `jwt-guard`: the filter's core on the command line.
//!
//!   jwt-guard check-config FILE
//!   jwt-guard explain --config FILE [--jwks FILE] [--path P | --url URL] [--method M]
//!                     [--dpop PROOF] [--client-cert-sha256 HEX] [--now UNIX] [TOKEN|-]
//!
//! `explain` prints the decision the filter would make for a request carrying TOKEN in the
//! Authorization header (or read from stdin), with every check and the exact response. With
//! `--dpop` the token goes as `Authorization: DPoP` with that proof.
//! Exit status: 0 allowed / valid config, 2 denied, 1 usage or configuration error.

use std::collections::HashSet;
use std::io::Read;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use jwt_guard::authn::token_kind::{classify, IdSignal, Kind};
use jwt_guard::authn::{authenticate_traced, Check, Tracer};
use jwt_guard::decision::{Engine, Outcome, Request};
use jwt_guard::jwks::KeySet;
use jwt_guard::jwks::{KeyState, KidRefetch};
use jwt_guard::policy::{Config, KeySource};
use jwt_guard::token::{self, fingerprint, Shape};

const USAGE: &str = "usage:
  jwt-guard check-config FILE
  jwt-guard explain --config FILE [--jwks FILE] [--path PATH | --url URL] [--method METHOD]
                    [--dpop PROOF] [--client-cert-sha256 HEX] [--now UNIX_SECONDS] [TOKEN|-]

explain reads the token from stdin when TOKEN is absent or `-`. --jwks supplies the keys of
providers that use remote_jwks or discovery. --url sets the scheme, host and path a DPoP
proof's htu is checked against (default http://localhost/ and --path). --dpop sends the token
as `Authorization: DPoP` with that proof; --client-cert-sha256 is the client certificate's
SHA-256 (hex) for certificate-bound tokens. Exit status: 0 allowed, 2 denied, 1 error.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("check-config") => check_config(&args[1..]),
        Some("explain") => explain(&args[1..]),
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
    // The proxy's clusters are not in this file: say which ones it must define.
    for p in &config.providers {
        if let KeySource::Remote(r) = &p.keys {
            println!(
                "  provider {}: fetches {} through cluster {:?}, which must exist in Envoy's configuration \
                 (this check cannot see it; a missing cluster is logged at runtime as 'Envoy has no cluster')",
                p.name, r.uri, r.cluster
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
    };
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
            "-" => o.token = None,
            t if !t.starts_with("--") && o.token.is_none() => o.token = Some(t.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if o.config.is_empty() {
        return Err(format!("--config is required\n{USAGE}"));
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
    let token = match o.token {
        Some(t) => t,
        None => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map_err(|e| format!("stdin: {e}"))?;
            s
        }
    };
    let trimmed = token.trim();
    let token =
        trimmed.strip_prefix("Bearer ").or_else(|| trimmed.strip_prefix("DPoP ")).unwrap_or(trimmed).to_string();

    println!("Token");
    let shape = token::shape(&token);
    println!(
        "  shape: {}, {} bytes, fingerprint {}",
        match shape {
            Shape::Jws => "JWS (a signed JWT)",
            Shape::Jwe => "JWE (an encrypted JWT)",
            Shape::Opaque => "opaque (not a JWT)",
            Shape::Malformed => "malformed",
        },
        token.len(),
        fingerprint(&token)
    );
    let parsed = if shape == Shape::Jws { token::parse(&token).ok() } else { None };
    if let Some(jwt) = &parsed {
        let header_json = token.split('.').next().and_then(|h| jwt_guard::token::base64url::decode(h.as_bytes()).ok());
        println!("  header: {}", header_json.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default());
        let claims = serde_json::to_string_pretty(&jwt.claims.all).unwrap_or_default();
        println!("  claims: {}", claims.replace('\n', "\n  "));
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
            p.audiences.join(", ")
        );
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
    let auth = format!("{} {token}", if o.dpop.is_some() { "DPoP" } else { "Bearer" });
    let mut headers: Vec<(&str, &[u8])> = vec![
        (":scheme", o.scheme.as_bytes()),
        (":authority", o.authority.as_bytes()),
        ("authorization", auth.as_bytes()),
    ];
    if let Some(proof) = &o.dpop {
        headers.push(("dpop", proof.as_bytes()));
    }
    let cert = o.client_cert.clone();
    let peer_certificate = move || cert.clone().map(String::into_bytes);
    let req = Request { method: &o.method, path: &o.path, headers: &headers, peer_certificate: &peer_certificate };
    let mut caches = engine.new_caches();
    println!();
    println!("Decision for {} {}", o.method, o.path);
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
        Outcome::WaitForKeys { .. } => {
            println!("  the filter would wait for keys (pass --jwks FILE)");
            Ok(ExitCode::from(2))
        }
    }
}
