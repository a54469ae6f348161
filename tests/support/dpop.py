"""A DPoP client key (RFC 9449): its public JWK, RFC 7638 thumbprint (`cnf.jkt`) and proofs.

As a script it makes one proof, for trying jwt-guard with curl (docs/sender-constrained.md: Sender-constrained
tokens):

    python tests/support/dpop.py --key client.pem --method GET --url https://api.example.com/items --token "$AT"

It creates the P-256 key file if it does not exist and prints the proof; `--jkt` prints the
key's thumbprint instead (what the token's `cnf.jkt` must be).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import sys
import time
from pathlib import Path

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ath(token: str) -> str:
    return b64url(hashlib.sha256(token.encode()).digest())


class DpopKey:
    def __init__(self, key=None):
        self.key = key or ec.generate_private_key(ec.SECP256R1())

    def jwk(self) -> dict:
        n = self.key.public_key().public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": b64url(n.x.to_bytes(32, "big")), "y": b64url(n.y.to_bytes(32, "big"))}

    def jkt(self) -> str:
        j = self.jwk()
        canonical = json.dumps({k: j[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
        return b64url(hashlib.sha256(canonical.encode()).digest())

    def proof(self, method: str, url: str, token: str | None = None, iat: int | None = None,
              jti: str | None = None, headers: dict | None = None, **claims) -> str:
        body = {"jti": jti or secrets.token_urlsafe(16), "htm": method, "htu": url,
                "iat": int(time.time()) if iat is None else iat}
        if token is not None:
            body["ath"] = ath(token)
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        h = {"typ": "dpop+jwt", "jwk": self.jwk()}
        h.update(headers or {})
        return pyjwt.encode(body, self.key, algorithm="ES256", headers=h)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--key", required=True, type=Path, help="PEM file of the client's P-256 key (created if missing)")
    ap.add_argument("--method", default="GET")
    ap.add_argument("--url", help="the URL as the client calls it (query and fragment are ignored)")
    ap.add_argument("--token", help="the access token the proof goes with (sets ath)")
    ap.add_argument("--jkt", action="store_true", help="print the key's RFC 7638 thumbprint and exit")
    a = ap.parse_args()
    if a.key.exists():
        key = DpopKey(serialization.load_pem_private_key(a.key.read_bytes(), password=None))
    else:
        key = DpopKey()
        a.key.write_bytes(key.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    if a.jkt:
        print(key.jkt())
        return 0
    if not a.url:
        ap.error("--url is required for a proof")
    print(key.proof(a.method, a.url, a.token))
    return 0


if __name__ == "__main__":
    sys.exit(main())
