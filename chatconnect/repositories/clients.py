"""The clients table: the tenants of an owner, each with its public API key."""

import secrets

from psycopg import errors
from psycopg.types.json import Jsonb

# created_at is `timestamp without time zone` holding UTC (the original table's type).
SELECT_CLIENT_FOR_OWNER = """
SELECT id, name, public_api_key, allowed_domains, status, created_at,
    identity_required, retention_days
FROM clients
WHERE id = %(id)s AND user_id = %(owner_id)s"""

# A page as one row: the items as a JSON array built by PostgreSQL (the fields and format of
# client_json in views/clients.py), the sort key of the last item, and whether more follow.
# Keyset pagination, oldest first; served by clients_user_id_created_at_id_idx. (A window
# function over limit + 1 rows cost more than the index probe for `more`.)
PAGE_JSON_FOR_OWNER = """
WITH page AS MATERIALIZED (
    SELECT id, name, public_api_key, allowed_domains, status, created_at, identity_required,
        retention_days
    FROM clients
    WHERE user_id = %(owner_id)s AND {after}
    ORDER BY created_at, id
    LIMIT %(limit)s),
last AS (SELECT created_at, id FROM page ORDER BY created_at DESC, id DESC LIMIT 1)
SELECT (SELECT coalesce(json_agg(json_build_object(
            'id', id, 'name', name, 'public_api_key', public_api_key,
            'allowed_domains', allowed_domains, 'status', status,
            'created_at', replace(to_char(created_at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                                  '.000000Z', 'Z'),
            'identity_required', identity_required, 'retention_days', retention_days)
          ORDER BY created_at, id), '[]')::text FROM page) AS items,
       last.created_at AS last_created_at, last.id AS last_id,
       EXISTS (SELECT FROM clients c
               WHERE c.user_id = %(owner_id)s
                 AND (c.created_at, c.id) > (last.created_at, last.id)) AS more
FROM (VALUES (1)) AS one LEFT JOIN last ON true"""
FIRST_PAGE_JSON_FOR_OWNER = PAGE_JSON_FOR_OWNER.format(after="true")
PAGE_JSON_AFTER_FOR_OWNER = PAGE_JSON_FOR_OWNER.format(
    after="(created_at, id) > (%(after_created_at)s, %(after_id)s)")

INSERT_CLIENT = """
INSERT INTO clients (user_id, name, public_api_key, allowed_domains)
VALUES (%(owner_id)s, %(name)s, %(public_api_key)s, %(allowed_domains)s)
RETURNING id, name, public_api_key, allowed_domains, status, created_at,
    identity_required, retention_days"""

# Fields left out of a change are NULL here and keep their value; retention_days may be set to
# NULL, so whether it changes is a parameter of its own.
UPDATE_CLIENT_FOR_OWNER = """
UPDATE clients
SET name = coalesce(%(name)s, name),
    allowed_domains = coalesce(%(allowed_domains)s, allowed_domains),
    status = coalesce(%(status)s, status),
    identity_required = coalesce(%(identity_required)s, identity_required),
    retention_days = CASE WHEN %(set_retention_days)s THEN %(retention_days)s::integer
                          ELSE retention_days END
WHERE id = %(id)s AND user_id = %(owner_id)s
RETURNING id, name, public_api_key, allowed_domains, status, created_at,
    identity_required, retention_days"""

UPDATE_KEY_FOR_OWNER = """
UPDATE clients
SET public_api_key = %(public_api_key)s
WHERE id = %(id)s AND user_id = %(owner_id)s
RETURNING id, name, public_api_key, allowed_domains, status, created_at,
    identity_required, retention_days"""

UPDATE_IDENTITY_SECRET_FOR_OWNER = """
UPDATE clients SET identity_secret_encrypted = %(sealed)s
WHERE id = %(id)s AND user_id = %(owner_id)s
RETURNING id"""

# Clients with an identity secret sealed under another key than the current one.
SELECT_SECRETS_TO_RESEAL = """
SELECT id, identity_secret_encrypted FROM clients
WHERE identity_secret_encrypted IS NOT NULL
  AND substring(identity_secret_encrypted FROM 2 FOR 8) <> %(key_id)s AND id > %(after_id)s
ORDER BY id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED"""

UPDATE_SEALED_SECRET = """
UPDATE clients SET identity_secret_encrypted = %(sealed)s WHERE id = %(id)s"""

SELECT_WITH_RETENTION = """
SELECT id, retention_days, now() - make_interval(days => retention_days) AS cutoff
FROM clients WHERE retention_days IS NOT NULL
ORDER BY id"""

DELETE_CLIENT_FOR_OWNER = "DELETE FROM clients WHERE id = %(id)s AND user_id = %(owner_id)s"

# What the widget on a customer site needs, in one query. A suspended client serves nothing,
# but its row is read too, so that the cache knows which client the key names.
SELECT_PUBLIC_WIDGET_BY_KEY = """
SELECT c.id AS client_id, c.status, c.allowed_domains,
       w.widget_name, w.primary_color, w.position, w.welcome_message,
       s.theme, s.font_family, s.border_radius, s.offset_x, s.offset_y, s.launcher_icon,
       s.show_on_mobile, s.header_text, b.offline_message
FROM clients c
JOIN client_widgets w ON w.client_id = c.id
JOIN widget_styles s ON s.client_id = c.id
LEFT JOIN business_hours b ON b.client_id = c.id
WHERE c.public_api_key = %(public_api_key)s"""

# A savepoint of our own: the statement may be the first of the view's transaction, where
# psycopg's conn.transaction() would open (and commit) a transaction instead of a savepoint.
SAVEPOINT_NEW_KEY = "SAVEPOINT new_public_api_key"
ROLLBACK_TO_NEW_KEY = "ROLLBACK TO SAVEPOINT new_public_api_key"
RELEASE_NEW_KEY = "RELEASE SAVEPOINT new_public_api_key"

KEY_CONSTRAINT = "clients_public_api_key_unique"
KEY_ATTEMPTS = 5


def new_public_api_key() -> str:
    """`pk_` and 192 random bits, URL-safe."""
    return "pk_" + secrets.token_urlsafe(24)


class ClientRepository:
    def __init__(self, conn):
        self.conn = conn

    def get_for_owner(self, client_id: str, owner_id: str):
        return self.conn.execute(SELECT_CLIENT_FOR_OWNER,
                                 {"id": client_id, "owner_id": owner_id}).fetchone()

    def page_json_for_owner(self, owner_id: str, limit: int, after=None):
        """One row: `items` (the page as JSON text), `more`, and `last_created_at` and
        `last_id`, the sort key of the page's last item."""
        if after is None:
            return self.conn.execute(FIRST_PAGE_JSON_FOR_OWNER,
                                     {"owner_id": owner_id, "limit": limit}).fetchone()
        after_created_at, after_id = after
        return self.conn.execute(PAGE_JSON_AFTER_FOR_OWNER, {
            "owner_id": owner_id, "limit": limit,
            "after_created_at": after_created_at, "after_id": after_id}).fetchone()

    def create(self, owner_id: str, name: str, allowed_domains: list[str]):
        """A new client with a fresh public API key."""
        return self._with_new_key(INSERT_CLIENT, {
            "owner_id": owner_id, "name": name, "allowed_domains": Jsonb(allowed_domains)})

    def update(self, client_id: str, owner_id: str, changes: dict):
        """Apply `changes` (any of name, allowed_domains, status, identity_required,
        retention_days); None if not the owner's."""
        if not changes:
            return self.get_for_owner(client_id, owner_id)
        allowed_domains = changes.get("allowed_domains")
        return self.conn.execute(UPDATE_CLIENT_FOR_OWNER, {
            "id": client_id, "owner_id": owner_id,
            "name": changes.get("name"), "status": changes.get("status"),
            "identity_required": changes.get("identity_required"),
            "set_retention_days": "retention_days" in changes,
            "retention_days": changes.get("retention_days"),
            "allowed_domains": None if allowed_domains is None else Jsonb(allowed_domains),
        }).fetchone()

    def rotate_key(self, client_id: str, owner_id: str):
        """Give the client a new public API key; the old one matches nothing from now on."""
        return self._with_new_key(UPDATE_KEY_FOR_OWNER, {"id": client_id, "owner_id": owner_id})

    def delete(self, client_id: str, owner_id: str) -> bool:
        """Delete the client; its widget, conversations and messages go with it (cascade)."""
        cursor = self.conn.execute(DELETE_CLIENT_FOR_OWNER, {"id": client_id, "owner_id": owner_id})
        return cursor.rowcount == 1

    def set_identity_secret(self, client_id: str, owner_id: str, sealed: bytes) -> bool:
        """Replace the sealed identity secret; False if the client is not the owner's."""
        return self.conn.execute(UPDATE_IDENTITY_SECRET_FOR_OWNER, {
            "id": client_id, "owner_id": owner_id, "sealed": sealed}).fetchone() is not None

    def secrets_to_reseal(self, current_key_id: bytes, after_id: str, limit: int) -> list:
        """Up to `limit` (id, sealed secret) rows after `after_id` not sealed under the
        current key, locked."""
        return self.conn.execute(SELECT_SECRETS_TO_RESEAL, {
            "key_id": current_key_id, "after_id": after_id, "limit": limit}).fetchall()

    def replace_sealed_secret(self, client_id: str, sealed: bytes) -> None:
        self.conn.execute(UPDATE_SEALED_SECRET, {"id": client_id, "sealed": sealed})

    def with_retention(self) -> list:
        """(id, retention_days, cutoff) of every client with a retention period."""
        return self.conn.execute(SELECT_WITH_RETENTION).fetchall()

    def get_public_widget_by_key(self, public_api_key: str):
        """The client's id, status, allowed_domains, public widget settings, style and offline
        message, or None."""
        return self.conn.execute(SELECT_PUBLIC_WIDGET_BY_KEY,
                                 {"public_api_key": public_api_key}).fetchone()

    def _with_new_key(self, query: str, params: dict):
        # A collision of 192 random bits will not happen in practice; if it does, the
        # statement is retried with another key instead of failing the request.
        for attempt in range(KEY_ATTEMPTS):
            self.conn.execute(SAVEPOINT_NEW_KEY)
            try:
                row = self.conn.execute(
                    query, {**params, "public_api_key": new_public_api_key()}).fetchone()
            except errors.UniqueViolation as error:
                self.conn.execute(ROLLBACK_TO_NEW_KEY)
                if error.diag.constraint_name != KEY_CONSTRAINT or attempt == KEY_ATTEMPTS - 1:
                    raise
                continue
            self.conn.execute(RELEASE_NEW_KEY)
            return row
