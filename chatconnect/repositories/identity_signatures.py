"""The identity_signatures table: identify signatures already accepted (the replay store)."""

# Nothing is inserted when the signature was accepted before: that is a replay.
ACCEPT_ONCE = """
INSERT INTO identity_signatures (client_id, signature, expires_at)
VALUES (%(client_id)s, %(signature)s, to_timestamp(%(expires_at)s))
ON CONFLICT DO NOTHING
RETURNING signature"""

# Signatures past their window can never be accepted again, replayed or not. SKIP LOCKED: two
# requests purging at once share the work instead of waiting for each other.
PURGE_EXPIRED = """
DELETE FROM identity_signatures WHERE (client_id, signature) IN (
    SELECT client_id, signature FROM identity_signatures
    WHERE expires_at < now()
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)"""


class IdentitySignatureRepository:
    def __init__(self, conn):
        self.conn = conn

    def accept_once(self, client_id: str, signature: str, expires_at: int) -> bool:
        """Record the signature (kept until `expires_at`, Unix seconds); False if it was
        recorded before."""
        return self.conn.execute(ACCEPT_ONCE, {
            "client_id": client_id, "signature": signature, "expires_at": expires_at,
        }).fetchone() is not None

    def purge_expired(self, limit: int) -> int:
        return self.conn.execute(PURGE_EXPIRED, {"limit": limit}).rowcount
