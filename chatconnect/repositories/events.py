"""The events table: every stored change, in the order of its id (see schema.sql).

Appending takes the lock that orders event ids until the transaction ends, so append after
the other writes of a transaction (row locks first, then the event), and commit soon."""

import json

from psycopg.types.json import Jsonb

EVENT_COLUMNS = "e.id, e.type, e.client_id, e.conversation_id, e.data, e.created_at"

INSERT_EVENT = """
INSERT INTO events (client_id, conversation_id, type, data)
VALUES (%(client_id)s, %(conversation_id)s, %(type)s, %(data)s)
RETURNING id"""

# The owner's events, optionally of one of their clients only; scoped by owner in the SQL.
SELECT_FOR_OWNER_AFTER = f"""
SELECT {EVENT_COLUMNS}
FROM events e JOIN clients c ON c.id = e.client_id
WHERE c.user_id = %(owner_id)s AND e.id > %(after)s
  AND (%(client_id)s::varchar IS NULL OR e.client_id = %(client_id)s::varchar)
ORDER BY e.id
LIMIT %(limit)s"""

# Only the given types: what the visitor may see is a list of types, not everything but some.
SELECT_FOR_CONVERSATION_AFTER = f"""
SELECT {EVENT_COLUMNS}
FROM events e
WHERE e.conversation_id = %(conversation_id)s AND e.client_id = %(client_id)s
  AND e.id > %(after)s AND e.type = ANY(%(types)s)
ORDER BY e.id
LIMIT %(limit)s"""

# Typing is never stored: a notification only, delivered at commit to the streams open then.
NOTIFY_TYPING = "SELECT pg_notify('chatconnect_typing', %(payload)s)"

# Every id up to this one is committed (or rolled back): a new stream starts after it.
SELECT_LATEST_ID = "SELECT coalesce(max(id), 0) AS id FROM events"

DELETE_OLDER_THAN = """
DELETE FROM events WHERE created_at < now() - make_interval(secs => %(seconds)s)"""


class EventRepository:
    def __init__(self, conn):
        self.conn = conn

    def append(self, client_id: str, type: str, data: dict, conversation_id=None) -> int:
        """Store an event in the caller's transaction; it is announced when that commits."""
        return self.conn.execute(INSERT_EVENT, {
            "client_id": client_id, "conversation_id": conversation_id, "type": type,
            "data": Jsonb(data)}).fetchone()["id"]

    def list_for_owner(self, owner_id: str, after: int, limit: int, client_id=None):
        return self.conn.execute(SELECT_FOR_OWNER_AFTER, {
            "owner_id": owner_id, "after": after, "limit": limit,
            "client_id": client_id}).fetchall()

    def list_for_conversation(self, client_id: str, conversation_id, after: int, limit: int,
                              types: list[str]):
        return self.conn.execute(SELECT_FOR_CONVERSATION_AFTER, {
            "client_id": client_id, "conversation_id": conversation_id, "after": after,
            "limit": limit, "types": types}).fetchall()

    def latest_id(self) -> int:
        return self.conn.execute(SELECT_LATEST_ID).fetchone()["id"]

    def delete_older_than(self, seconds: int) -> int:
        return self.conn.execute(DELETE_OLDER_THAN, {"seconds": seconds}).rowcount

    def announce_typing(self, owner_id: str, client_id: str, conversation_id, by: str) -> None:
        self.conn.execute(NOTIFY_TYPING, {"payload": json.dumps({
            "type": "typing", "owner_id": owner_id, "client_id": client_id,
            "conversation_id": str(conversation_id), "by": by})})
