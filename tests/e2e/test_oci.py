"""`make oci` and `make oci-push` against a real registry (Debian's docker-registry, on
127.0.0.1) with a real OCI client (oras): the image Istio pulls round-trips to the same module."""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

import pytest
import requests
from jwtguard_support import ROOT, WASM, free_port, wait_until



def plugin_wasm(layer: bytes) -> bytes:
    """What Istio's fetcher reads: the file named plugin.wasm in the gzipped tar layer."""
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer)), mode="r:") as tar:
        names = tar.getnames()
        assert names == ["plugin.wasm"], names
        return tar.extractfile("plugin.wasm").read()


def make(*args):
    env = dict(os.environ)
    env.pop("MAKEFLAGS", None)
    r = subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


@pytest.fixture(scope="module")
def registry():
    exe = shutil.which("docker-registry")
    assert exe, "docker-registry is not installed (make system-deps)"
    root = tempfile.mkdtemp(prefix="jwt-guard-registry-")
    port = free_port()
    config = os.path.join(root, "config.yml")
    with open(config, "w") as f:
        f.write(f"""version: 0.1
log: {{level: warn}}
storage:
  filesystem: {{rootdirectory: {root}/data}}
http:
  addr: 127.0.0.1:{port}
""")
    proc = subprocess.Popen([exe, "serve", config], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)

    def up():
        try:
            return requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    try:
        assert wait_until(up, 20), "the registry did not start"
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def version():
    for line in (ROOT / "Cargo.toml").read_text().splitlines():
        if line.startswith("version = "):
            return line.split('"')[1]
    raise AssertionError("no version in Cargo.toml")


def test_make_oci_builds_the_compat_image_istio_reads():
    out = make("oci")
    layout = ROOT / "target" / "oci" / "jwt-guard"
    index = json.loads((layout / "index.json").read_text())
    [entry] = index["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == version()
    assert f"digest {entry['digest']}" in out
    blob = lambda d: (layout / "blobs" / "sha256" / d.split(":", 1)[1]).read_bytes()  # noqa: E731
    manifest_bytes = blob(entry["digest"])
    assert "sha256:" + hashlib.sha256(manifest_bytes).hexdigest() == entry["digest"]
    manifest = json.loads(manifest_bytes)
    # The media types of the Wasm image spec's compat variant, which Istio's fetcher tries first.
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert manifest["annotations"]["module.wasm.image/variant"] == "compat"
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    data = blob(layer["digest"])
    assert len(data) == layer["size"]
    assert plugin_wasm(data) == WASM.read_bytes()
    config = json.loads(blob(manifest["config"]["digest"]))
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest()]
    # Reproducible: the same module gives the same digest.
    assert f"digest {entry['digest']}" in make("oci")


def test_push_to_a_registry_and_pull_back_the_same_module(registry, tmp_path):
    import oras.layout.layout
    import oras.provider

    image = f"{registry}/jwt-guard:{version()}"
    out = make("oci-push", f"IMAGE={image}", "OCI_FLAGS=--insecure")
    index = json.loads((ROOT / "target" / "oci" / "jwt-guard" / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    assert f"pushed {image} digest {digest}" in out, out
    assert f'url: oci://{image}  sha256: "{digest.split(":", 1)[1]}"' in out, out

    # Pulled back by tag with oras into a new layout, as any OCI client would.
    client = oras.provider.Registry(hostname=registry, insecure=True)
    pulled = tmp_path / "pulled"
    oras.layout.layout.NewLayout(str(pulled), validate=False).pull_from_registry(client, image, tag="pulled")
    manifest = client.get_manifest(image)
    [layer] = manifest["layers"]
    layer_bytes = (pulled / "blobs" / "sha256" / layer["digest"].split(":", 1)[1]).read_bytes()
    assert plugin_wasm(layer_bytes) == WASM.read_bytes()
    # The registry names the image by the digest `make oci` printed: what Istio's sha256 pins.
    r = requests.head(f"http://{registry}/v2/jwt-guard/manifests/{version()}",
                      headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}, timeout=5)
    assert r.headers["Docker-Content-Digest"] == digest
