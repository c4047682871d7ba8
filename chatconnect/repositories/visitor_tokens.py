"""The visitor_tokens table: the hashes of the X-Visitor-Token each browser of a contact holds."""

INSERT_TOKEN = """
INSERT INTO visitor_tokens (token_hash, client_id, contact_id)
VALUES (%(token_hash)s, %(client_id)s, %(contact_id)s)"""

DELETE_TOKEN = """
DELETE FROM visitor_tokens WHERE token_hash = %(token_hash)s AND client_id = %(client_id)s"""

SELECT_FOR_CONTACT = """
SELECT created_at FROM visitor_tokens
WHERE contact_id = %(contact_id)s AND client_id = %(client_id)s
ORDER BY created_at"""


class VisitorTokenRepository:
    def __init__(self, conn):
        self.conn = conn

    def create(self, client_id: str, contact_id, token_hash: str) -> None:
        self.conn.execute(INSERT_TOKEN, {"token_hash": token_hash, "client_id": client_id,
                                         "contact_id": contact_id})

    def delete(self, client_id: str, token_hash: str) -> None:
        self.conn.execute(DELETE_TOKEN, {"token_hash": token_hash, "client_id": client_id})

    def list_for_contact(self, client_id: str, contact_id) -> list:
        """When each of the contact's browsers got its token (never the hashes)."""
        return self.conn.execute(SELECT_FOR_CONTACT, {"client_id": client_id,
                                                      "contact_id": contact_id}).fetchall()
