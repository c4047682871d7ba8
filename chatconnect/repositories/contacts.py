"""The contacts table: the visitors of a client, anonymous or verified.

Visitor-side lookups go through the hash of the visitor token (visitor_tokens) and an active
client; team-side queries join `clients` and scope by owner in the SQL."""

from psycopg import sql

CONTACT_COLUMNS = """
    k.id, k.client_id, k.external_id, k.name, k.email, k.verified, k.created_at,
    k.last_seen_at"""

INSERT_ANONYMOUS = f"""
INSERT INTO contacts AS k (client_id, name, email)
VALUES (%(client_id)s, %(name)s, %(email)s)
RETURNING {CONTACT_COLUMNS}"""

# The same external id on any device is the same contact; name and email follow the latest
# identify that gives them.
UPSERT_VERIFIED = f"""
INSERT INTO contacts AS k (client_id, external_id, verified, name, email)
VALUES (%(client_id)s, %(external_id)s, true, %(name)s, %(email)s)
ON CONFLICT (client_id, external_id) DO UPDATE
SET name = coalesce(excluded.name, k.name), email = coalesce(excluded.email, k.email),
    last_seen_at = now()
RETURNING {CONTACT_COLUMNS}"""

SELECT_BY_VISITOR_TOKEN = f"""
SELECT {CONTACT_COLUMNS}
FROM visitor_tokens t JOIN contacts k ON k.id = t.contact_id
WHERE t.token_hash = %(token_hash)s AND t.client_id = %(client_id)s"""
# Identify locks it, so that two requests with the same token do not both merge it away.
LOCK_SUFFIX = "\nFOR UPDATE OF k"

# A merged-away contact's name and email fill in what the verified one lacks.
ADOPT_DETAILS = f"""
UPDATE contacts k
SET name = coalesce(k.name, a.name), email = coalesce(k.email, a.email)
FROM contacts a
WHERE k.id = %(id)s AND k.client_id = %(client_id)s AND a.id = %(from_id)s
  AND a.client_id = %(client_id)s
RETURNING {CONTACT_COLUMNS}"""

DELETE_CONTACT = "DELETE FROM contacts WHERE id = %(id)s AND client_id = %(client_id)s"

TOUCH = """
UPDATE contacts SET last_seen_at = now()
WHERE id = %(id)s AND client_id = %(client_id)s AND last_seen_at < now() - interval '1 minute'"""

SELECT_FOR_OWNER = f"""
SELECT {CONTACT_COLUMNS}
FROM contacts k JOIN clients c ON c.id = k.client_id
WHERE k.id = %(id)s AND c.id = %(client_id)s AND c.user_id = %(owner_id)s"""

DELETE_FOR_OWNER = """
DELETE FROM contacts k USING clients c
WHERE k.id = %(id)s AND c.id = k.client_id AND c.id = %(client_id)s AND c.user_id = %(owner_id)s
RETURNING k.id"""

# As conversations' LIST_FOR_OWNER: a single row with a NULL id when the owner's client has no
# match, none when the client is not the owner's. The LATERAL subquery walks
# contacts_client_seen_idx from the most recently seen contact (or the cursor) on.
LIST_FOR_OWNER = """
SELECT {columns}
FROM clients c
LEFT JOIN LATERAL (
    SELECT {columns} FROM contacts k
    WHERE k.client_id = c.id {after}
    ORDER BY k.last_seen_at DESC, k.id DESC
    LIMIT %(limit)s
) k ON true
WHERE c.id = %(client_id)s AND c.user_id = %(owner_id)s
ORDER BY k.last_seen_at DESC, k.id DESC"""

# A search looks in two steps (bench/contacts.py measured why). First among the most recently
# seen contacts only (a few milliseconds): a common text fills the page there. When it does
# not, the text is rare, and the trigram index finds every match at once; walking the whole
# client instead, as the planner may choose for one query, took seconds at a million contacts.
SEARCH_RECENT_FOR_OWNER = """
SELECT {columns}
FROM clients c
LEFT JOIN LATERAL (
    SELECT {columns} FROM (
        SELECT {columns} FROM contacts k
        WHERE k.client_id = c.id {after}
        ORDER BY k.last_seen_at DESC, k.id DESC
        LIMIT %(recent)s
    ) k
    WHERE {search}
    ORDER BY k.last_seen_at DESC, k.id DESC
    LIMIT %(limit)s
) k ON true
WHERE c.id = %(client_id)s AND c.user_id = %(owner_id)s
ORDER BY k.last_seen_at DESC, k.id DESC"""

# MATERIALIZED: every match through contacts_search_idx, then the page, never the walk.
SEARCH_ALL_FOR_OWNER = """
WITH matches AS MATERIALIZED (
    SELECT {columns} FROM contacts k
    WHERE k.client_id = %(client_id)s AND {search} {after}
      AND EXISTS (SELECT FROM clients c WHERE c.id = %(client_id)s AND c.user_id = %(owner_id)s)
)
SELECT {columns} FROM matches k
ORDER BY k.last_seen_at DESC, k.id DESC
LIMIT %(limit)s"""

SEARCH_CONDITION = """(coalesce(k.name, '') || chr(31) || coalesce(k.email, '') || chr(31)
    || coalesce(k.external_id, '')) ILIKE %(pattern)s"""
FILTER_AFTER = "AND (k.last_seen_at, k.id) < (%(after_time)s::timestamptz, %(after_id)s::uuid)"
RECENT_CONTACTS_SEARCHED_FIRST = 2000

# Retention: contacts of the client with no conversation left and not seen since the cutoff.
DELETE_UNUSED_BATCH = """
DELETE FROM contacts WHERE id IN (
    SELECT k.id FROM contacts k
    WHERE k.client_id = %(client_id)s AND k.last_seen_at < %(cutoff)s
      AND NOT EXISTS (SELECT FROM conversations v WHERE v.contact_id = k.id)
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
  AND last_seen_at < %(cutoff)s
  AND NOT EXISTS (SELECT FROM conversations v WHERE v.contact_id = contacts.id)"""


def like_pattern(text: str) -> str:
    """`%text%` for ILIKE, with the text's own wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class ContactRepository:
    def __init__(self, conn):
        self.conn = conn

    def create_anonymous(self, client_id: str, name=None, email=None):
        return self.conn.execute(INSERT_ANONYMOUS, {
            "client_id": client_id, "name": name, "email": email}).fetchone()

    def upsert_verified(self, client_id: str, external_id: str, name=None, email=None):
        """The verified contact of `external_id`, created if new, seen now."""
        return self.conn.execute(UPSERT_VERIFIED, {
            "client_id": client_id, "external_id": external_id, "name": name,
            "email": email}).fetchone()

    def get_by_visitor_token(self, client_id: str, token_hash: str, lock=False):
        """The contact whose browser holds this token (row-locked with `lock`), or None."""
        query = SELECT_BY_VISITOR_TOKEN + (LOCK_SUFFIX if lock else "")
        return self.conn.execute(query, {
            "client_id": client_id, "token_hash": token_hash}).fetchone()

    def adopt_details(self, client_id: str, contact_id, from_contact_id):
        return self.conn.execute(ADOPT_DETAILS, {
            "client_id": client_id, "id": contact_id, "from_id": from_contact_id}).fetchone()

    def delete(self, client_id: str, contact_id) -> None:
        self.conn.execute(DELETE_CONTACT, {"client_id": client_id, "id": contact_id})

    def touch(self, client_id: str, contact_id) -> None:
        """Seen now (written at most once a minute)."""
        self.conn.execute(TOUCH, {"client_id": client_id, "id": contact_id})

    def get_for_owner(self, owner_id: str, client_id: str, contact_id: str):
        return self.conn.execute(SELECT_FOR_OWNER, {
            "owner_id": owner_id, "client_id": client_id, "id": contact_id}).fetchone()

    def delete_for_owner(self, owner_id: str, client_id: str, contact_id: str) -> bool:
        """Delete the contact with its conversations, messages and tokens (cascade)."""
        return self.conn.execute(DELETE_FOR_OWNER, {
            "owner_id": owner_id, "client_id": client_id, "id": contact_id,
        }).fetchone() is not None

    def list_for_owner(self, owner_id, client_id, limit, search=None, after=None):
        """Up to `limit` contacts, most recently seen first, whose name, email or external id
        contains `search` (any letter case; 3 characters or more, for the trigram index),
        after the (time, id) key `after`; None when the client is not the owner's."""
        after_time, after_id = after or (None, None)
        params = {"owner_id": owner_id, "client_id": client_id, "limit": limit,
                  "after_time": after_time, "after_id": after_id,
                  "pattern": like_pattern(search) if search else None,
                  "recent": RECENT_CONTACTS_SEARCHED_FIRST}
        parts = {"columns": sql.SQL(CONTACT_COLUMNS), "search": sql.SQL(SEARCH_CONDITION),
                 "after": sql.SQL(FILTER_AFTER if after else "")}
        query = SEARCH_RECENT_FOR_OWNER if search else LIST_FOR_OWNER
        rows = self.conn.execute(sql.SQL(query).format(**parts), params).fetchall()
        if not rows:
            return None
        rows = [row for row in rows if row["id"] is not None]
        if search and len(rows) < limit:
            rows = self.conn.execute(sql.SQL(SEARCH_ALL_FOR_OWNER).format(**parts),
                                     params).fetchall()
        return rows

    def delete_unused(self, client_id: str, cutoff, limit: int) -> int:
        """Delete up to `limit` contacts left with no conversation and not seen since `cutoff`."""
        return self.conn.execute(DELETE_UNUSED_BATCH, {
            "client_id": client_id, "cutoff": cutoff, "limit": limit}).rowcount
