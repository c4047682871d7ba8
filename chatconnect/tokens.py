"""Hashing of the random secrets the server hands out (session ids, tokens, visitor tokens)."""

import hashlib


def hash_secret(value: str) -> str:
    """SHA-256 hex digest: enough for random 256-bit secrets, which cannot be guessed."""
    return hashlib.sha256(value.encode()).hexdigest()
