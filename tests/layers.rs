//! The architecture, checked: each folder of `src/` imports only the folders above it in
//! LAYERS (the order of docs/architecture.md's tree), so there is no import cycle and no arrow runs
//! back up; only `wasm/` names proxy-wasm.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

const LAYERS: [&str; 10] =
    ["deny", "crypto", "token", "jwks", "policy", "authn", "decision", "refresh", "runtime", "wasm"];

fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
        }
    }
    out
}

#[test]
fn each_folder_imports_only_the_folders_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    for (i, layer) in LAYERS.iter().enumerate() {
        for (file, text) in sources(&src.join(layer)) {
            for below in &LAYERS[i + 1..] {
                assert!(!text.contains(&format!("crate::{below}")), "{file} ({layer}) imports {below}, below it");
            }
            // Grouped imports would hide a folder name from the check above (and the Makefile's
            // PROOF_INPUTS relies on it): one path per `use`.
            assert!(!text.contains("crate::{"), "{file}: a grouped `use crate::{{..}}`");
            if *layer != "wasm" {
                assert!(!text.contains("proxy_wasm"), "{file} names proxy_wasm outside wasm/");
            }
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} files found");
}

#[test]
fn every_folder_is_in_the_list() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() && !["bin", "tests", "testdata"].contains(&name.as_str()) {
            assert!(LAYERS.contains(&name.as_str()), "src/{name} is not in LAYERS");
        }
    }
}
