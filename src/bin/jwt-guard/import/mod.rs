//! `jwt-guard import FILE...`: a jwt_authn (+ RBAC) Envoy configuration, or Istio
//! RequestAuthentication and AuthorizationPolicy resources, as jwt-guard's configuration.
//! Never wider: what cannot be expressed makes the affected rule refuse, and stderr says so.

mod cond;
mod envoy;
mod fields;
mod istio;
mod notes;
mod providers;
mod rbac;
mod yaml;

use std::process::ExitCode;

use jwt_guard::policy::Config;
use serde_json::Value;

use notes::Notes;

pub const USAGE: &str = "  jwt-guard import [--cluster HOST=NAME]... FILE...";

/// The configuration, or why nothing usable came out; `notes` says what was not carried either way.
pub fn import_documents(docs: &[Value], clusters: &[(String, String)], notes: &mut Notes) -> Result<Value, String> {
    let config = if docs.iter().any(istio::is_istio) {
        for d in docs.iter().filter(|d| !istio::is_istio(d)) {
            let kind = d.get("kind").and_then(Value::as_str).unwrap_or("a document without kind");
            notes.note(kind, "", "not a RequestAuthentication or AuthorizationPolicy; ignored");
        }
        let cluster_for = |host: &str, port: u16| {
            clusters
                .iter()
                .find(|(h, _)| h == host)
                .map(|(_, c)| c.clone())
                .unwrap_or_else(|| format!("outbound|{port}||{host}"))
        };
        istio::import(docs, &cluster_for, notes)?
    } else {
        let mut found: Vec<(Value, Vec<Value>)> = docs.iter().flat_map(envoy::find).collect();
        if found.is_empty() {
            return Err(
                "no envoy.filters.http.jwt_authn filter, and no Istio RequestAuthentication, in the input".into()
            );
        }
        if found.len() > 1 {
            notes.not_carried("input", "", format!("{} jwt_authn filters; only the first is carried", found.len()));
        }
        let (jwt, rbac) = found.swap_remove(0);
        envoy::import(&jwt, &rbac, notes)?
    };
    // What we print always passes check-config; its warnings are the reader's too.
    let parsed = Config::parse(config.to_string().as_bytes())
        .map_err(|e| format!("the imported configuration is not valid: {e}"))?;
    for w in parsed.warnings() {
        notes.note("check-config", "", w);
    }
    Ok(config)
}

pub fn run(args: &[String]) -> Result<ExitCode, String> {
    let mut files = Vec::new();
    let mut clusters = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--cluster" => {
                let v = it.next().ok_or("--cluster needs HOST=NAME")?;
                let (h, c) = v.split_once('=').ok_or("--cluster needs HOST=NAME")?;
                clusters.push((h.to_string(), c.to_string()));
            }
            f if f.starts_with('-') && f != "-" => return Err(format!("unknown option {f}")),
            f => files.push(f.to_string()),
        }
    }
    if files.is_empty() {
        return Err(format!("usage:\n{USAGE}"));
    }
    let mut docs = Vec::new();
    for f in &files {
        let text = if f == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| format!("stdin: {e}"))?;
            s
        } else {
            std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?
        };
        docs.extend(yaml::documents(&text).map_err(|e| format!("{f}: {e}"))?);
    }
    let mut notes = Notes::default();
    let config = import_documents(&docs, &clusters, &mut notes);
    for line in notes.lines() {
        eprintln!("{line}");
    }
    let config = config?;
    println!("{}", serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?);
    Ok(if notes.complete() { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

#[cfg(test)]
mod tests;
