"""The `ChatConnect-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256>`, as Stripe does.

The MAC covers `<t>.<raw body>`, so a receiver that checks it and refuses an old `t` knows
the body came from us and is not a replay of an old delivery."""

import hashlib
import hmac
import secrets
import time

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """`whsec_` and 256 random bits, URL-safe."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"
