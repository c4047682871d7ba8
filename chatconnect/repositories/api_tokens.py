"""The api_tokens table: personal access tokens, stored as the SHA-256 digest of the token."""

MAX_TOKENS_PER_USER = 100

# Only while the user's credentials are still those the request was signed in with (as for
# sessions: a password change ends every token of an older credentials_version). The count
# keeps the list short enough to come whole; concurrent creations may pass it by a few.
INSERT_TOKEN = """
INSERT INTO api_tokens (user_id, name, token_hash, credentials_version)
SELECT u.id, %(name)s, %(token_hash)s, u.credentials_version
FROM users u
WHERE u.id = %(user_id)s AND u.credentials_version = %(credentials_version)s
  AND (SELECT count(*) FROM api_tokens t
       WHERE t.user_id = u.id AND t.credentials_version = u.credentials_version) < %(max_tokens)s
RETURNING id, name, created_at"""

SELECT_TOKENS_FOR_USER = """
SELECT t.id, t.name, t.created_at, t.last_used_at
FROM api_tokens t JOIN users u ON u.id = t.user_id AND u.credentials_version = t.credentials_version
WHERE t.user_id = %(user_id)s
ORDER BY t.created_at DESC, t.id"""

SELECT_TOKEN_WITH_USER = """
SELECT t.id, t.last_used_at, u.id AS user_id, u.username, u.created_at, u.credentials_version
FROM api_tokens t JOIN users u ON u.id = t.user_id AND u.credentials_version = t.credentials_version
WHERE t.token_hash = %(token_hash)s"""

UPDATE_LAST_USED = "UPDATE api_tokens SET last_used_at = now() WHERE id = %(id)s"

DELETE_TOKEN_FOR_USER = "DELETE FROM api_tokens WHERE id = %(id)s AND user_id = %(user_id)s"

DELETE_TOKENS_FOR_USER = "DELETE FROM api_tokens WHERE user_id = %(user_id)s"


class ApiTokenRepository:
    def __init__(self, conn):
        self.conn = conn

    def create(self, user_id: str, credentials_version: int, name: str, token_hash: str):
        """The new token's row, or None when the user already has MAX_TOKENS_PER_USER or the
        credentials are no longer at `credentials_version`."""
        return self.conn.execute(INSERT_TOKEN, {
            "user_id": user_id, "credentials_version": credentials_version, "name": name,
            "token_hash": token_hash, "max_tokens": MAX_TOKENS_PER_USER}).fetchone()

    def list_for_user(self, user_id: str):
        return self.conn.execute(SELECT_TOKENS_FOR_USER, {"user_id": user_id}).fetchall()

    def get_with_user(self, token_hash: str):
        """The token with this hash joined with its user (user_id, username, created_at)."""
        return self.conn.execute(SELECT_TOKEN_WITH_USER, {"token_hash": token_hash}).fetchone()

    def mark_used(self, token_id) -> None:
        self.conn.execute(UPDATE_LAST_USED, {"id": token_id})

    def delete_for_user(self, token_id: str, user_id: str) -> bool:
        cursor = self.conn.execute(DELETE_TOKEN_FOR_USER, {"id": token_id, "user_id": user_id})
        return cursor.rowcount == 1

    def delete_all_for_user(self, user_id: str) -> int:
        return self.conn.execute(DELETE_TOKENS_FOR_USER, {"user_id": user_id}).rowcount
