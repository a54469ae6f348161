"""The Wasm OCI image Istio pulls (`url: oci://...`), as an OCI image layout, and its push.

Istio's agent (pkg/wasm/imagefetcher.go) takes three shapes. We build the one its docs
recommend and any OCI tool handles: the *compat* variant of the Wasm image spec with standard
OCI media types. One `application/vnd.oci.image.layer.v1.tar+gzip` layer holding `plugin.wasm`,
an `application/vnd.oci.image.config.v1+json` config, and the manifest annotation
`module.wasm.image/variant: compat`. The build is reproducible (no timestamps), so the same
.wasm always gives the same image digest.

    python packaging/oci_image.py build WASM LAYOUT_DIR TAG      # what `make oci` runs
    python packaging/oci_image.py push LAYOUT_DIR TAG REGISTRY/REPO:TAG [--insecure]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
import sys
import tarfile
from pathlib import Path

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
PLUGIN_FILE = "plugin.wasm"  # the name Istio's fetcher looks for in the layer
REF_NAME = "org.opencontainers.image.ref.name"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(doc: dict) -> bytes:
    # The bytes are the digest, so write them the way registries and clients will see them.
    return json.dumps(doc).encode()


def _layer(wasm: bytes) -> tuple[bytes, bytes]:
    """(the tar, the tar.gz) of plugin.wasm, with every timestamp and owner fixed."""
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(PLUGIN_FILE)
        info.size, info.mode, info.mtime, info.uid, info.gid = len(wasm), 0o644, 0, 0, 0
        tar.addfile(info, io.BytesIO(wasm))
    raw = tar_buf.getvalue()
    gz_buf = io.BytesIO()
    with gzip.GzipFile(fileobj=gz_buf, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw)
    return raw, gz_buf.getvalue()


def build(wasm_path: Path, layout: Path, tag: str) -> str:
    """Writes the OCI image layout for `wasm_path` to `layout` (replacing it); returns the
    manifest digest, which is what Istio's `sha256` field pins for an oci:// url."""
    wasm = wasm_path.read_bytes()
    raw_tar, layer = _layer(wasm)
    config = _json({
        "architecture": "wasm", "os": "wasip1",
        "rootfs": {"type": "layers", "diff_ids": [_digest(raw_tar)]},
    })
    manifest = _json({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": _digest(config), "size": len(config)},
        "layers": [{"mediaType": LAYER, "digest": _digest(layer), "size": len(layer),
                    "annotations": {"org.opencontainers.image.title": PLUGIN_FILE}}],
        "annotations": {"module.wasm.image/variant": "compat",
                        "org.opencontainers.image.title": "jwt-guard",
                        "org.opencontainers.image.version": tag},
    })
    if layout.exists():
        shutil.rmtree(layout)
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for blob in (layer, config, manifest):
        (blobs / _digest(blob).split(":", 1)[1]).write_bytes(blob)
    (layout / "oci-layout").write_bytes(_json({"imageLayoutVersion": "1.0.0"}))
    (layout / "index.json").write_bytes(_json({
        "schemaVersion": 2, "mediaType": INDEX,
        "manifests": [{"mediaType": MANIFEST, "digest": _digest(manifest), "size": len(manifest),
                       "annotations": {REF_NAME: tag}}],
    }))
    return _digest(manifest)


def plugin_from_layer(layer: bytes) -> bytes:
    """plugin.wasm out of a compat layer, the way Istio's fetcher reads it."""
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer)), mode="r:") as tar:
        for member in tar.getmembers():
            if Path(member.name).name == PLUGIN_FILE and member.isfile():
                f = tar.extractfile(member)
                if f is not None:
                    return f.read()
    raise ValueError(f"{PLUGIN_FILE} is not in the layer")


def push(layout: Path, tag: str, target: str, insecure: bool) -> str:
    """Pushes the layout's `tag` to `target` (REGISTRY/REPO:TAG) with oras; returns the digest
    the registry reports."""
    import oras.layout.layout
    import oras.provider

    registry = oras.provider.Registry(hostname=target.split("/", 1)[0], insecure=insecure)
    response = oras.layout.layout.NewLayout(str(layout)).push_to_registry(registry, target, tag=tag)
    return response.headers.get("Docker-Content-Digest", "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("wasm", type=Path)
    b.add_argument("layout", type=Path)
    b.add_argument("tag")
    p = sub.add_parser("push")
    p.add_argument("layout", type=Path)
    p.add_argument("tag")
    p.add_argument("target", help="REGISTRY/REPO:TAG, e.g. registry.example.com/jwt-guard:0.1.0")
    p.add_argument("--insecure", action="store_true", help="plain HTTP (a registry on localhost)")
    args = ap.parse_args()
    if args.cmd == "build":
        digest = build(args.wasm, args.layout, args.tag)
        print(f"{args.layout}: OCI image layout, tag {args.tag}, digest {digest}")
    else:
        digest = push(args.layout, args.tag, args.target, args.insecure)
        print(f"pushed {args.target} digest {digest}")
        print(f"WasmPlugin: url: oci://{args.target}  sha256: \"{digest.split(':', 1)[-1]}\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
