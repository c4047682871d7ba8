"""The conversations table: a visitor's thread with a client's team.

Team-side queries join `clients` and scope by owner in the SQL; visitor-side queries match the
visitor token's hash and an active client, so a wrong token, another client's conversation and a
suspended client all look like no conversation at all."""

from psycopg import sql

CONVERSATION_COLUMNS = """
    v.id, v.client_id, v.status, v.visitor_name, v.visitor_email, v.tags, v.created_at,
    v.last_message_at, v.visitor_last_seen_message_id, v.agent_last_seen_message_id"""

SELECT_ACTIVE_CLIENT_BY_PUBLIC_KEY = """
SELECT id, allowed_domains FROM clients
WHERE public_api_key = %(public_api_key)s AND status = 'active'"""

INSERT_CONVERSATION = f"""
INSERT INTO conversations AS v (client_id, visitor_name, visitor_email, visitor_token_hash)
VALUES (%(client_id)s, %(visitor_name)s, %(visitor_email)s, %(visitor_token_hash)s)
RETURNING {CONVERSATION_COLUMNS}"""

SELECT_FOR_VISITOR = """
SELECT v.id, v.client_id, c.user_id AS owner_id, c.allowed_domains
FROM conversations v JOIN clients c ON c.id = v.client_id
WHERE v.id = %(id)s AND v.visitor_token_hash = %(visitor_token_hash)s AND c.status = 'active'"""

# A CORS preflight carries no visitor token: it learns only which origins may ask.
SELECT_ALLOWED_DOMAINS_FOR_PREFLIGHT = """
SELECT c.allowed_domains
FROM conversations v JOIN clients c ON c.id = v.client_id
WHERE v.id = %(id)s AND c.status = 'active'"""

SELECT_FOR_OWNER = f"""
SELECT {CONVERSATION_COLUMNS}
FROM conversations v JOIN clients c ON c.id = v.client_id
WHERE v.id = %(id)s AND c.id = %(client_id)s AND c.user_id = %(owner_id)s"""

# One row per conversation of the page, or a single row with a NULL id when the owner's client
# has none; no row at all when the client is not the owner's. The LATERAL subquery walks the
# (client_id[, status], last_message_at DESC, id DESC) index and stops after LIMIT rows.
LIST_FOR_OWNER = """
SELECT {columns}
FROM clients c
LEFT JOIN LATERAL (
    SELECT {columns} FROM conversations v
    WHERE v.client_id = c.id {filters}
    ORDER BY v.last_message_at DESC, v.id DESC
    LIMIT %(limit)s
) v ON true
WHERE c.id = %(client_id)s AND c.user_id = %(owner_id)s
ORDER BY v.last_message_at DESC, v.id DESC"""

FILTER_STATUS = "AND v.status = %(status)s"
FILTER_TAG = "AND v.tags @> ARRAY[%(tag)s::text]"
FILTER_AFTER = "AND (v.last_message_at, v.id) < (%(after_time)s::timestamptz, %(after_id)s::uuid)"

# In UPDATE … FROM, `old` is the row as it was before the update: `changed` tells whether the
# change announces anything.
UPDATE_FOR_OWNER = f"""
UPDATE conversations v
SET status = coalesce(%(status)s, v.status), tags = coalesce(%(tags)s, v.tags)
FROM clients c, conversations old
WHERE v.id = %(id)s AND c.id = v.client_id AND c.id = %(client_id)s AND c.user_id = %(owner_id)s
  AND old.id = v.id
RETURNING {CONVERSATION_COLUMNS}, (v.status, v.tags) IS DISTINCT FROM (old.status, old.tags)
    AS changed"""

# An agent's reply reopens the conversation.
RECORD_AGENT_MESSAGE = f"""
UPDATE conversations v SET last_message_at = now(), status = 'open'
FROM clients c, conversations old
WHERE v.id = %(id)s AND c.id = v.client_id AND c.id = %(client_id)s AND c.user_id = %(owner_id)s
  AND old.id = v.id
RETURNING {CONVERSATION_COLUMNS}, old.status = 'closed' AS reopened"""

# A visitor may not write to a closed conversation; the row lock orders this against a close.
RECORD_VISITOR_MESSAGE = """
UPDATE conversations SET last_message_at = now()
WHERE id = %(id)s AND status = 'open'
RETURNING id"""

# A seen mark only moves forward: the row lock makes concurrent marks take turns, and each
# re-checks the condition on the row as the previous one left it.
MOVE_SEEN_MARK = """
UPDATE conversations SET {column} = %(message_id)s
WHERE id = %(id)s AND ({column} IS NULL OR {column} < %(message_id)s)
RETURNING id"""
SEEN_MARK_COLUMNS = {"visitor": "visitor_last_seen_message_id",
                     "agent": "agent_last_seen_message_id"}


class ConversationRepository:
    def __init__(self, conn):
        self.conn = conn

    def active_client_by_public_key(self, public_api_key: str):
        """{id, allowed_domains} of the active client with this key, or None."""
        return self.conn.execute(SELECT_ACTIVE_CLIENT_BY_PUBLIC_KEY,
                                 {"public_api_key": public_api_key}).fetchone()

    def create(self, client_id, visitor_name, visitor_email, visitor_token_hash):
        return self.conn.execute(INSERT_CONVERSATION, {
            "client_id": client_id, "visitor_name": visitor_name,
            "visitor_email": visitor_email, "visitor_token_hash": visitor_token_hash,
        }).fetchone()

    def get_for_visitor(self, conversation_id: str, visitor_token_hash: str):
        """{id, client_id, owner_id, allowed_domains} when the token is this conversation's and its client
        is active, else None."""
        return self.conn.execute(SELECT_FOR_VISITOR, {
            "id": conversation_id, "visitor_token_hash": visitor_token_hash}).fetchone()

    def allowed_domains_for_preflight(self, conversation_id: str) -> list | None:
        row = self.conn.execute(SELECT_ALLOWED_DOMAINS_FOR_PREFLIGHT,
                                {"id": conversation_id}).fetchone()
        return row["allowed_domains"] if row else None

    def get_for_owner(self, owner_id: str, client_id: str, conversation_id: str):
        return self.conn.execute(SELECT_FOR_OWNER, {
            "owner_id": owner_id, "client_id": client_id, "id": conversation_id}).fetchone()

    def list_for_owner(self, owner_id, client_id, limit, status=None, tag=None, after=None):
        """Up to `limit` conversations, most recent activity first, after the (time, id) key
        `after`; None when the client is not the owner's."""
        filters = [FILTER_STATUS] if status else []
        filters += [FILTER_TAG] if tag is not None else []
        filters += [FILTER_AFTER] if after else []
        query = sql.SQL(LIST_FOR_OWNER).format(
            columns=sql.SQL(CONVERSATION_COLUMNS),
            filters=sql.SQL(" ".join(filters)))
        after_time, after_id = after or (None, None)
        rows = self.conn.execute(query, {
            "owner_id": owner_id, "client_id": client_id, "limit": limit, "status": status,
            "tag": tag, "after_time": after_time, "after_id": after_id,
        }).fetchall()
        if not rows:
            return None
        return [row for row in rows if row["id"] is not None]

    def update_for_owner(self, owner_id, client_id, conversation_id, status=None, tags=None):
        """Set the given fields (None leaves one as it is); the row with `changed`, or None
        when not found."""
        return self.conn.execute(UPDATE_FOR_OWNER, {
            "owner_id": owner_id, "client_id": client_id, "id": conversation_id,
            "status": status, "tags": tags}).fetchone()

    def record_agent_message(self, owner_id, client_id, conversation_id):
        """Mark activity now and reopen: the row with `reopened`, or None when the
        conversation is not the owner's."""
        return self.conn.execute(RECORD_AGENT_MESSAGE, {
            "owner_id": owner_id, "client_id": client_id, "id": conversation_id,
        }).fetchone()

    def record_visitor_message(self, conversation_id) -> bool:
        """Mark activity now; False when the conversation is closed."""
        return self.conn.execute(RECORD_VISITOR_MESSAGE,
                                 {"id": conversation_id}).fetchone() is not None

    def move_seen_mark(self, conversation_id, by: str, message_id: int) -> bool:
        """Set the `by` side's seen mark to `message_id` if that is further; whether it moved."""
        query = sql.SQL(MOVE_SEEN_MARK).format(column=sql.Identifier(SEEN_MARK_COLUMNS[by]))
        return self.conn.execute(query, {"id": conversation_id,
                                         "message_id": message_id}).fetchone() is not None
