#!/usr/bin/env python3
"""Mints an HS256 token the gateway accepts (for development): sub = USER, ws = WORKSPACES, exp = now + HOURS.

Usage: mint-token.py USER [WORKSPACE ...]
Key: $GATEWAY_SIGNING_KEY, else the development key of src/Gateway/appsettings.Development.json.
"""
import base64, hashlib, hmac, json, os, sys, time

DEV_KEY = "dev-only-signing-key-never-use-in-production-0123456789"
if len(sys.argv) < 2:
    sys.exit(__doc__)

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

key = os.environ.get("GATEWAY_SIGNING_KEY", DEV_KEY).encode()
now = int(time.time())
payload = {"sub": sys.argv[1], "iat": now, "exp": now + int(os.environ.get("HOURS", "12")) * 3600}
if len(sys.argv) > 2:
    payload["ws"] = sys.argv[2:]
signing_input = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64url(json.dumps(payload).encode())
signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
print(signing_input + "." + b64url(signature))
