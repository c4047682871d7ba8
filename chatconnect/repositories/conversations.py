"""The conversations table: a visitor's thread with a client's team.

Team-side queries join `clients` and scope by owner in the SQL; visitor-side queries match the
visitor token's hash and an active client, so a wrong token, another client's conversation and a
suspended client all look like no conversation at all."""

from psycopg import sql

CONVERSATION_COLUMNS = """
    v.id, v.client_id, v.contact_id, v.status, v.visitor_name, v.visitor_email, v.tags,
    v.created_at, v.last_message_at, v.visitor_last_seen_message_id,
    v.agent_last_seen_message_id"""

SELECT_ACTIVE_CLIENT_BY_PUBLIC_KEY = """
SELECT id, allowed_domains, identity_required, identity_secret_encrypted FROM clients
WHERE public_api_key = %(public_api_key)s AND status = 'active'"""

INSERT_CONVERSATION = f"""
INSERT INTO conversations AS v (client_id, contact_id, visitor_name, visitor_email)
VALUES (%(client_id)s, %(contact_id)s, %(visitor_name)s, %(visitor_email)s)
RETURNING {CONVERSATION_COLUMNS}"""

# The token is the contact's: it opens every conversation of the contact.
SELECT_FOR_VISITOR = """
SELECT v.id, v.client_id, v.contact_id, c.user_id AS owner_id, c.allowed_domains
FROM conversations v
JOIN visitor_tokens t ON t.contact_id = v.contact_id AND t.client_id = v.client_id
JOIN clients c ON c.id = v.client_id
WHERE v.id = %(id)s AND t.token_hash = %(visitor_token_hash)s AND c.status = 'active'"""

# Keyset pages of a contact's conversations, most recent activity first
# (conversations_contact_activity_idx).
SELECT_FOR_CONTACT = f"""
SELECT {CONVERSATION_COLUMNS}
FROM conversations v
WHERE v.contact_id = %(contact_id)s AND v.client_id = %(client_id)s
  AND (%(after_time)s::timestamptz IS NULL
       OR (v.last_message_at, v.id) < (%(after_time)s::timestamptz, %(after_id)s::uuid))
ORDER BY v.last_message_at DESC, v.id DESC
LIMIT %(limit)s"""

# Identify and merge: an anonymous contact's conversations go to the verified contact.
REASSIGN_CONTACT = f"""
UPDATE conversations v SET contact_id = %(to_contact_id)s
WHERE v.contact_id = %(from_contact_id)s AND v.client_id = %(client_id)s
RETURNING {CONVERSATION_COLUMNS}"""

SELECT_IDS_FOR_CONTACT = """
SELECT id FROM conversations WHERE contact_id = %(contact_id)s AND client_id = %(client_id)s"""

# Retention: conversations of the client whose last message is older than the cutoff.
SELECT_EXPIRED_IDS = """
SELECT id FROM conversations
WHERE client_id = %(client_id)s AND last_message_at < %(cutoff)s
LIMIT %(limit)s"""

# Checked again as the row is deleted: a message that arrived meanwhile keeps it.
DELETE_EXPIRED = """
DELETE FROM conversations
WHERE id = ANY(%(ids)s) AND client_id = %(client_id)s AND last_message_at < %(cutoff)s"""

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

    def create(self, client_id, contact_id, visitor_name, visitor_email):
        return self.conn.execute(INSERT_CONVERSATION, {
            "client_id": client_id, "contact_id": contact_id, "visitor_name": visitor_name,
            "visitor_email": visitor_email,
        }).fetchone()

    def get_for_visitor(self, conversation_id: str, visitor_token_hash: str):
        """{id, client_id, contact_id, owner_id, allowed_domains} when the token is that of the
        conversation's contact and its client is active, else None."""
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

    def list_for_contact(self, client_id, contact_id, limit, after=None):
        """Up to `limit` of the contact's conversations, most recent activity first, after the
        (time, id) key `after`."""
        after_time, after_id = after or (None, None)
        return self.conn.execute(SELECT_FOR_CONTACT, {
            "client_id": client_id, "contact_id": contact_id, "limit": limit,
            "after_time": after_time, "after_id": after_id}).fetchall()

    def ids_for_contact(self, client_id, contact_id) -> list:
        return [row["id"] for row in self.conn.execute(SELECT_IDS_FOR_CONTACT, {
            "client_id": client_id, "contact_id": contact_id})]

    def reassign_contact(self, client_id, from_contact_id, to_contact_id) -> list:
        """Move every conversation of one contact to another; the moved rows."""
        return self.conn.execute(REASSIGN_CONTACT, {
            "client_id": client_id, "from_contact_id": from_contact_id,
            "to_contact_id": to_contact_id}).fetchall()

    def expired_ids(self, client_id, cutoff, limit) -> list:
        """Ids of up to `limit` conversations whose last message is older than `cutoff`."""
        return [row["id"] for row in self.conn.execute(SELECT_EXPIRED_IDS, {
            "client_id": client_id, "cutoff": cutoff, "limit": limit})]

    def delete_expired(self, client_id, ids, cutoff) -> int:
        """Delete those of `ids` that are still older than `cutoff` (messages go with them)."""
        return self.conn.execute(DELETE_EXPIRED, {
            "client_id": client_id, "ids": ids, "cutoff": cutoff}).rowcount

    def move_seen_mark(self, conversation_id, by: str, message_id: int) -> bool:
        """Set the `by` side's seen mark to `message_id` if that is further; whether it moved."""
        query = sql.SQL(MOVE_SEEN_MARK).format(column=sql.Identifier(SEEN_MARK_COLUMNS[by]))
        return self.conn.execute(query, {"id": conversation_id,
                                         "message_id": message_id}).fetchone() is not None
