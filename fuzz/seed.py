"""Seeds fuzz/corpus/<target>/ from tests/vectors/conformance and the repository's own configs."""
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONF = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "vectors" / "conformance"


def put(target, name, data):
    d = HERE / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


count = {}
for f in ("jwt_verify_lib.json", "envoy_jwt_authn.json"):
    for case in json.loads((CONF / f).read_text()):
        if case.get("token"):
            put("jwt", case["id"], case["token"])
            put("extract", case["id"], "/x?access_token=" + case["token"] + "\0Bearer " + case["token"] + "\0\0session=" + case["token"])
        if case.get("jwks"):
            put("jwks", case["id"], json.dumps(case["jwks"]))
for case in json.loads((CONF / "jwks_only.json").read_text()):
    put("jwks", case["id"], case["text"])
put("jwks", "fixture", (ROOT / "src" / "testdata" / "jwks.json").read_text())
put("config", "example", (ROOT / "envoy" / "example-config.json").read_text())
put("header_map", "basic", b"\x02\x00\x00\x00\x05\x00\x00\x00\x01\x00\x00\x00\x0d\x00\x00\x00\x08\x00\x00\x00:path\x00/\x00authorization\x00Bearer t\x00")
# signature: algorithm byte, message length, message, then a signature of each verifier's size
for alg, size in ((0, 256), (4, 64), (5, 96), (6, 64)):
    put("signature", f"alg{alg}", bytes([alg, 8]) + b"message!" + bytes(range(size)))
# naf: curve byte (even P-256, odd P-384), then a scalar: all ones carries through every window
for pick, size in ((0, 32), (1, 48)):
    put("naf", f"ones{pick}", bytes([pick]) + b"\xff" * size)
    put("naf", f"ramp{pick}", bytes([pick]) + bytes(range(size)))
for t in ("jwt", "extract", "jwks", "config", "header_map", "signature", "naf"):
    count[t] = len(list((HERE / "corpus" / t).iterdir()))
print("seed corpus:", ", ".join(f"{t} {n}" for t, n in count.items()))
