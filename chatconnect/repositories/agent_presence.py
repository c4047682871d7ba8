"""The agent_presence table: when each user last had an event stream or long-poll open."""

# Never moves back: a long-poll that ends late must not hide a stream that touched meanwhile.
TOUCH = """
INSERT INTO agent_presence AS p (user_id, seen_at) VALUES (%(user_id)s, %(seen_at)s)
ON CONFLICT (user_id) DO UPDATE SET seen_at = EXCLUDED.seen_at
WHERE p.seen_at < EXCLUDED.seen_at"""

# The public status of a widget: its active client, and whether the owner was seen since.
SELECT_WIDGET_STATUS = """
SELECT c.id, c.allowed_domains,
       EXISTS (SELECT 1 FROM agent_presence p
               WHERE p.user_id = c.user_id AND p.seen_at > %(online_since)s) AS agents_online
FROM clients c
WHERE c.public_api_key = %(public_api_key)s AND c.status = 'active'"""


class AgentPresenceRepository:
    def __init__(self, conn):
        self.conn = conn

    def touch(self, user_id: str, seen_at) -> None:
        self.conn.execute(TOUCH, {"user_id": user_id, "seen_at": seen_at})

    def widget_status(self, public_api_key: str, online_since):
        """{id, allowed_domains, agents_online} of the active client with this key, or None."""
        return self.conn.execute(SELECT_WIDGET_STATUS, {
            "public_api_key": public_api_key, "online_since": online_since}).fetchone()
