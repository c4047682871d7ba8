"""The business_hours table: a client's weekly schedule, written the first time it is set.

A client without a row has no time zone, so it is always open."""

from psycopg.types.json import Jsonb

# The client's row with its business hours, all NULL when none were set.
SELECT_FOR_OWNER = """
SELECT c.id AS client_id, b.timezone, b.schedule, b.offline_message
FROM clients c LEFT JOIN business_hours b ON b.client_id = c.id
WHERE c.id = %(client_id)s AND c.user_id = %(owner_id)s"""

SELECT_FOR_CLIENT = """
SELECT timezone, schedule, offline_message FROM business_hours WHERE client_id = %(client_id)s"""

# The whole resource is replaced (PUT); nothing is written for another owner's client.
UPSERT_FOR_OWNER = """
INSERT INTO business_hours (client_id, timezone, schedule, offline_message)
SELECT c.id, %(timezone)s, %(schedule)s, %(offline_message)s
FROM clients c
WHERE c.id = %(client_id)s AND c.user_id = %(owner_id)s
ON CONFLICT (client_id) DO UPDATE
SET timezone = excluded.timezone, schedule = excluded.schedule,
    offline_message = excluded.offline_message,
    updated_at = CASE
        WHEN (excluded.timezone, excluded.schedule, excluded.offline_message)
             IS DISTINCT FROM (business_hours.timezone, business_hours.schedule,
                               business_hours.offline_message)
        THEN now() ELSE business_hours.updated_at END
RETURNING client_id, timezone, schedule, offline_message"""


class BusinessHoursRepository:
    def __init__(self, conn):
        self.conn = conn

    def get_for_owner(self, client_id: str, owner_id: str):
        """The client's business hours (NULL fields when never set); None if not the owner's."""
        return self.conn.execute(SELECT_FOR_OWNER,
                                 {"client_id": client_id, "owner_id": owner_id}).fetchone()

    def get_for_client(self, client_id: str):
        """The client's business hours, with NULL fields when it never set them."""
        row = self.conn.execute(SELECT_FOR_CLIENT, {"client_id": client_id}).fetchone()
        return row or {"timezone": None, "schedule": None, "offline_message": None}

    def replace(self, client_id: str, owner_id: str, timezone, schedule, offline_message):
        """Store the business hours; None if the client is not the owner's."""
        return self.conn.execute(UPSERT_FOR_OWNER, {
            "client_id": client_id, "owner_id": owner_id, "timezone": timezone,
            "schedule": Jsonb(schedule), "offline_message": offline_message}).fetchone()
