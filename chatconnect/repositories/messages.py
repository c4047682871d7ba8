"""The messages table. Every insert comes after an update of its conversation's row, whose lock
orders the messages of one conversation: their ids become visible in increasing order."""

MESSAGE_COLUMNS = "id, conversation_id, sender, body, created_at"

INSERT_MESSAGE = f"""
INSERT INTO messages (conversation_id, sender, body)
VALUES (%(conversation_id)s, %(sender)s, %(body)s)
RETURNING {MESSAGE_COLUMNS}"""

SELECT_AFTER = f"""
SELECT {MESSAGE_COLUMNS} FROM messages
WHERE conversation_id = %(conversation_id)s AND id > %(after)s
ORDER BY id
LIMIT %(limit)s"""

SELECT_LATEST = f"""
SELECT {MESSAGE_COLUMNS} FROM (
    SELECT {MESSAGE_COLUMNS} FROM messages
    WHERE conversation_id = %(conversation_id)s
    ORDER BY id DESC
    LIMIT %(limit)s
) latest
ORDER BY id"""

SELECT_IN_CONVERSATION = """
SELECT 1 FROM messages WHERE id = %(id)s AND conversation_id = %(conversation_id)s"""


class MessageRepository:
    def __init__(self, conn):
        self.conn = conn

    def create(self, conversation_id, sender: str, body: str):
        return self.conn.execute(INSERT_MESSAGE, {
            "conversation_id": conversation_id, "sender": sender, "body": body}).fetchone()

    def list_after(self, conversation_id, after: int, limit: int):
        """Up to `limit` messages with an id greater than `after`, oldest first."""
        return self.conn.execute(SELECT_AFTER, {
            "conversation_id": conversation_id, "after": after, "limit": limit}).fetchall()

    def list_latest(self, conversation_id, limit: int):
        """The latest `limit` messages, oldest first."""
        return self.conn.execute(SELECT_LATEST, {
            "conversation_id": conversation_id, "limit": limit}).fetchall()

    def is_in_conversation(self, conversation_id, message_id: int) -> bool:
        return self.conn.execute(SELECT_IN_CONVERSATION, {
            "id": message_id, "conversation_id": conversation_id}).fetchone() is not None
