"""Vendors Istio's CRD schemas for the kinds envoy/istio/ and envoy/migration/ use (WasmPlugin,
ServiceEntry, DestinationRule, EnvoyFilter, RequestAuthentication, AuthorizationPolicy) from istio/api's kubernetes/customresourcedefinitions.gen.yaml at one release
tag, unchanged, into crds.yaml here. tests/e2e/test_istio.py validates the manifests with them.

usage: python3 tests/vectors/istio/vendor.py ISTIO_API_GIT_DIR TAG
(a clone of https://github.com/istio/api; Apache-2.0, see istio/api's LICENSE)
"""

import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
KINDS = {"WasmPlugin", "ServiceEntry", "DestinationRule", "EnvoyFilter", "RequestAuthentication", "AuthorizationPolicy"}


def main() -> int:
    git_dir, tag = sys.argv[1], sys.argv[2]
    text = subprocess.run(["git", "--git-dir", git_dir, "show", f"{tag}:kubernetes/customresourcedefinitions.gen.yaml"],
                          check=True, capture_output=True, text=True).stdout
    commit = subprocess.run(["git", "--git-dir", git_dir, "rev-list", "-n1", tag],
                            check=True, capture_output=True, text=True).stdout.strip()
    # Split on document markers so each CRD is copied byte for byte.
    docs = [d for d in text.split("\n---\n") if d.strip()]
    kept = [d.strip("\n") for d in docs if (yaml.safe_load(d) or {}).get("spec", {}).get("names", {}).get("kind") in KINDS]
    found = {yaml.safe_load(d)["spec"]["names"]["kind"] for d in kept}
    if found != KINDS:
        print(f"missing: {KINDS - found}", file=sys.stderr)
        return 1
    header = (f"# Istio's CRDs for {', '.join(sorted(KINDS))}, copied unchanged from istio/api\n"
              f"# kubernetes/customresourcedefinitions.gen.yaml at tag {tag} (commit {commit}).\n"
              f"# Apache License 2.0, Copyright Istio Authors. Regenerate: tests/vectors/istio/vendor.py\n")
    (HERE / "crds.yaml").write_text(header + "---\n" + "\n---\n".join(kept) + "\n")
    print(f"wrote {HERE / 'crds.yaml'}: {len(kept)} CRDs from {tag} ({commit})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
