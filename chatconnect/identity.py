"""Verified identity: the per-client identity secret, kept encrypted, and identify signatures.

A customer's server signs `"{user_id}:{timestamp}"` with the client's identity secret
(HMAC-SHA256, lowercase hex). The secret is stored encrypted with AES-GCM under a key derived
from the `IDENTITY_ENCRYPTION_KEYS` setting, which never reaches the database, so that a dump
alone cannot mint identities. The first key encrypts; every key decrypts, so keys can be
rotated (`chatconnect identity reencrypt`)."""

import hashlib
import hmac
import os
import secrets
import time

from flask import current_app
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# A signature is accepted this many seconds either side of the server's clock (whole seconds).
SIGNATURE_WINDOW_SECONDS = 300
# The replay store keeps a signature this long past its timestamp: its window, and a margin
# for app hosts whose clocks differ from the database's (which purges) by up to a minute.
REPLAY_KEEP_SECONDS = SIGNATURE_WINDOW_SECONDS + 60
SECRET_PREFIX = "cc_ids_"
FORMAT_VERSION = b"\x01"
KEY_ID_BYTES = 8
NONCE_BYTES = 12
HKDF_INFO = b"chatconnect identity secret v1"


class UndecryptableSecret(Exception):
    """The stored secret was encrypted with a key that is not configured (or was altered)."""


def new_identity_secret() -> str:
    """`cc_ids_` and 256 random bits, URL-safe."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class SecretBox:
    """AES-256-GCM under keys derived (HKDF-SHA256) from the configured key strings.

    A sealed value is version (1 byte), key id (8), nonce (12), ciphertext and tag. The
    client's id is authenticated with it, so a value copied to another client's row does not
    open there."""

    def __init__(self, key_strings: list[str]):
        self._keys = []
        for key_string in key_strings:
            key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=HKDF_INFO).derive(key_string.encode())
            self._keys.append((hashlib.sha256(key).digest()[:KEY_ID_BYTES], AESGCM(key)))

    @property
    def current_key_id(self) -> bytes:
        return self._keys[0][0]

    def seal(self, client_id: str, secret: str) -> bytes:
        key_id, aead = self._keys[0]
        nonce = os.urandom(NONCE_BYTES)
        return FORMAT_VERSION + key_id + nonce + aead.encrypt(nonce, secret.encode(),
                                                              client_id.encode())

    def open(self, client_id: str, sealed: bytes) -> str:
        sealed = bytes(sealed)
        key_id = sealed[1:1 + KEY_ID_BYTES]
        nonce = sealed[1 + KEY_ID_BYTES:1 + KEY_ID_BYTES + NONCE_BYTES]
        for candidate_id, aead in self._keys:
            if candidate_id == key_id and sealed[:1] == FORMAT_VERSION:
                try:
                    return aead.decrypt(nonce, sealed[1 + KEY_ID_BYTES + NONCE_BYTES:],
                                        client_id.encode()).decode()
                except InvalidTag:
                    break
        raise UndecryptableSecret(f"the identity secret of client {client_id} does not open "
                                  "with any key of IDENTITY_ENCRYPTION_KEYS")


def now() -> float:
    """The server's clock, in Unix seconds."""
    return time.time()


def sign(secret: str, user_id: str, timestamp: int) -> str:
    """The signature a customer's server computes (see the README for other languages)."""
    return hmac.new(secret.encode(), f"{user_id}:{timestamp}".encode(),
                    hashlib.sha256).hexdigest()


def signature_is_valid(secret: str, user_id: str, timestamp: int, signature: str,
                       now: float) -> bool:
    """Right secret and within the window; compared in constant time."""
    expected = sign(secret, user_id, timestamp)
    in_window = abs(int(now) - timestamp) <= SIGNATURE_WINDOW_SECONDS
    return hmac.compare_digest(expected, signature) and in_window


def secret_box() -> SecretBox:
    """The app's SecretBox, built once from IDENTITY_ENCRYPTION_KEYS."""
    box = current_app.extensions.get("identity_secret_box")
    if box is None:
        box = current_app.extensions["identity_secret_box"] = SecretBox(
            current_app.config["IDENTITY_ENCRYPTION_KEYS"])
    return box
