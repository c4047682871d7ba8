"""The api_tokens table: personal access tokens, stored as the SHA-256 digest of the token."""

MAX_TOKENS_PER_USER = 100

# The count keeps the list short enough to come whole; concurrent creations may pass it by a few.
INSERT_TOKEN = """
INSERT INTO api_tokens (user_id, name, token_hash)
SELECT %(user_id)s::varchar, %(name)s, %(token_hash)s
WHERE (SELECT count(*) FROM api_tokens WHERE user_id = %(user_id)s::varchar) < %(max_tokens)s
RETURNING id, name, created_at"""

SELECT_TOKENS_FOR_USER = """
SELECT id, name, created_at, last_used_at FROM api_tokens
WHERE user_id = %(user_id)s
ORDER BY created_at DESC, id"""

SELECT_TOKEN_WITH_USER = """
SELECT t.id, t.last_used_at, u.id AS user_id, u.username, u.created_at
FROM api_tokens t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = %(token_hash)s"""

UPDATE_LAST_USED = "UPDATE api_tokens SET last_used_at = now() WHERE id = %(id)s"

DELETE_TOKEN_FOR_USER = "DELETE FROM api_tokens WHERE id = %(id)s AND user_id = %(user_id)s"

DELETE_TOKENS_FOR_USER = "DELETE FROM api_tokens WHERE user_id = %(user_id)s"


class ApiTokenRepository:
    def __init__(self, conn):
        self.conn = conn

    def create(self, user_id: str, name: str, token_hash: str):
        """The new token's row, or None when the user already has MAX_TOKENS_PER_USER."""
        return self.conn.execute(INSERT_TOKEN, {
            "user_id": user_id, "name": name, "token_hash": token_hash,
            "max_tokens": MAX_TOKENS_PER_USER}).fetchone()

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
