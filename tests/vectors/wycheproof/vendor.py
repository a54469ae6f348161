"""Vendors the Wycheproof vectors for JWS's signature algorithms into this folder, slimmed to
what tests/wycheproof.rs reads (one key form per group; msg, sig, result, flags per test).

usage: python3 tests/vectors/wycheproof/vendor.py WYCHEPROOF_CHECKOUT
(a checkout of https://github.com/C2SP/wycheproof; the commit used is written into each file)
"""

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# JWS algorithm -> Wycheproof files (testvectors_v1). PSS: MGF1 with the same hash and a salt
# as long as the hash, as RFC 7518 §3.5 fixes them.
FILES = {
    "RS256": ["rsa_signature_2048_sha256", "rsa_signature_3072_sha256", "rsa_signature_4096_sha256"],
    "RS384": ["rsa_signature_2048_sha384", "rsa_signature_3072_sha384", "rsa_signature_4096_sha384"],
    "RS512": ["rsa_signature_2048_sha512", "rsa_signature_3072_sha512", "rsa_signature_4096_sha512"],
    "PS256": ["rsa_pss_2048_sha256_mgf1_32", "rsa_pss_3072_sha256_mgf1_32", "rsa_pss_4096_sha256_mgf1_32"],
    "PS384": ["rsa_pss_2048_sha384_mgf1_48", "rsa_pss_4096_sha384_mgf1_48"],
    "PS512": ["rsa_pss_4096_sha512_mgf1_64"],
    "ES256": ["ecdsa_secp256r1_sha256_p1363"],
    "ES384": ["ecdsa_secp384r1_sha384_p1363"],
    "EdDSA": ["ed25519"],
}


def key_of(group: dict) -> dict:
    """The public key as hex: RSA n and e, an uncompressed EC point, or an Ed25519 key."""
    pk = group["publicKey"]
    if "modulus" in pk:
        return {"n": pk["modulus"], "e": pk["publicExponent"]}
    if "uncompressed" in pk:
        return {"point": pk["uncompressed"]}
    return {"pk": pk["pk"]}


def main() -> int:
    repo = Path(sys.argv[1])
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    for alg, names in FILES.items():
        groups = []
        for name in names:
            path = f"testvectors_v1/{name}_test.json"
            data = json.loads(subprocess.run(["git", "-C", str(repo), "show", f"HEAD:{path}"], capture_output=True,
                                             text=True, check=True).stdout)
            for g in data["testGroups"]:
                groups.append({"file": name, "key": key_of(g), "tests": [
                    {"tcId": t["tcId"], "comment": t["comment"], "flags": t["flags"], "msg": t["msg"], "sig": t["sig"],
                     "result": t["result"]} for t in g["tests"]]})
        out = {"source": f"https://github.com/C2SP/wycheproof commit {commit}, testvectors_v1", "alg": alg, "groups": groups}
        (HERE / f"{alg}.json").write_text(json.dumps(out, separators=(",", ":")) + "\n")
        print(alg, sum(len(g["tests"]) for g in groups), "tests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
