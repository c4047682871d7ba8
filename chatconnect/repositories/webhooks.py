"""The webhooks table: the URLs a client's events are POSTed to, and how far each has got."""

MAX_WEBHOOKS_PER_CLIENT = 10

COLUMNS = "id, client_id, url, secret, events, active, created_at"

# Held until the end of the transaction, so that two creations at once count each other.
LOCK_CLIENT_FOR_OWNER = """
SELECT id FROM clients WHERE id = %(client_id)s AND user_id = %(owner_id)s FOR UPDATE"""

COUNT_FOR_CLIENT = "SELECT count(*) AS n FROM webhooks WHERE client_id = %(client_id)s"

# A new webhook receives the events stored from now on: its cursor starts at the last id.
INSERT_WEBHOOK = f"""
INSERT INTO webhooks (client_id, url, secret, events, active, last_event_id)
VALUES (%(client_id)s, %(url)s, %(secret)s, %(events)s, %(active)s,
        (SELECT coalesce(max(id), 0) FROM events))
RETURNING {COLUMNS}"""

SELECT_FOR_CLIENT = f"""
SELECT {COLUMNS} FROM webhooks w
WHERE client_id = %(client_id)s
  AND EXISTS (SELECT 1 FROM clients c WHERE c.id = w.client_id AND c.user_id = %(owner_id)s)
ORDER BY created_at, id"""

SELECT_FOR_OWNER = f"""
SELECT {COLUMNS} FROM webhooks w
WHERE id = %(id)s AND client_id = %(client_id)s
  AND EXISTS (SELECT 1 FROM clients c WHERE c.id = w.client_id AND c.user_id = %(owner_id)s)"""

# Fields left out of a change are NULL here and keep their value (none is nullable).
UPDATE_FOR_OWNER = f"""
UPDATE webhooks w
SET url = coalesce(%(url)s, url),
    events = coalesce(%(events)s, events),
    active = coalesce(%(active)s, active)
WHERE id = %(id)s AND client_id = %(client_id)s
  AND EXISTS (SELECT 1 FROM clients c WHERE c.id = w.client_id AND c.user_id = %(owner_id)s)
RETURNING {COLUMNS}"""

DELETE_FOR_OWNER = """
DELETE FROM webhooks w
WHERE id = %(id)s AND client_id = %(client_id)s
  AND EXISTS (SELECT 1 FROM clients c WHERE c.id = w.client_id AND c.user_id = %(owner_id)s)"""


class TooManyWebhooks(Exception):
    """The client has MAX_WEBHOOKS_PER_CLIENT webhooks already."""


class WebhookRepository:
    def __init__(self, conn):
        self.conn = conn

    def create(self, client_id: str, owner_id: str, url: str, secret: str,
               events: list[str], active: bool):
        """The new webhook, or None when the client is not the owner's.

        Raises TooManyWebhooks at the limit."""
        scope = {"client_id": client_id, "owner_id": owner_id}
        if self.conn.execute(LOCK_CLIENT_FOR_OWNER, scope).fetchone() is None:
            return None
        if self.conn.execute(COUNT_FOR_CLIENT, scope).fetchone()["n"] >= MAX_WEBHOOKS_PER_CLIENT:
            raise TooManyWebhooks
        return self.conn.execute(INSERT_WEBHOOK, {
            "client_id": client_id, "url": url, "secret": secret, "events": events,
            "active": active}).fetchone()

    def list_for_owner(self, client_id: str, owner_id: str):
        return self.conn.execute(SELECT_FOR_CLIENT,
                                 {"client_id": client_id, "owner_id": owner_id}).fetchall()

    def get_for_owner(self, webhook_id: str, client_id: str, owner_id: str):
        return self.conn.execute(SELECT_FOR_OWNER, {
            "id": webhook_id, "client_id": client_id, "owner_id": owner_id}).fetchone()

    def update(self, webhook_id: str, client_id: str, owner_id: str, changes: dict):
        """Apply `changes` (any of url, events, active); None if not the owner's."""
        if not changes:
            return self.get_for_owner(webhook_id, client_id, owner_id)
        return self.conn.execute(UPDATE_FOR_OWNER, {
            "id": webhook_id, "client_id": client_id, "owner_id": owner_id,
            "url": changes.get("url"), "events": changes.get("events"),
            "active": changes.get("active")}).fetchone()

    def delete(self, webhook_id: str, client_id: str, owner_id: str) -> bool:
        """Delete the webhook and its delivery log."""
        return self.conn.execute(DELETE_FOR_OWNER, {
            "id": webhook_id, "client_id": client_id, "owner_id": owner_id}).rowcount == 1
