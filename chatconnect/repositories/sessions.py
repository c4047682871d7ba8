"""The session table: server-side login sessions, keyed by the hash of the cookie value."""

from psycopg.types.json import Json

# expire is `timestamp without time zone` in UTC (the original table's type).
SELECT_LIVE_SESSION = """
SELECT s.id, s.sess, s.last_seen_at, s.expire, u.id AS user_id, u.username, u.created_at
FROM session s JOIN users u ON u.id = s.user_id
WHERE s.sid = %(sid_hash)s AND s.expire > (now() AT TIME ZONE 'UTC')"""

INSERT_SESSION = """
INSERT INTO session (sid, sess, expire, user_id, user_agent)
VALUES (%(sid_hash)s, %(sess)s,
        (now() AT TIME ZONE 'UTC') + make_interval(secs => least(%(idle)s, %(lifetime)s)),
        %(user_id)s, %(user_agent)s)
RETURNING id"""

TOUCH_SESSION = """
UPDATE session
SET sess = %(sess)s, last_seen_at = now(),
    expire = least((now() AT TIME ZONE 'UTC') + make_interval(secs => %(idle)s),
                   (created_at AT TIME ZONE 'UTC') + make_interval(secs => %(lifetime)s))
WHERE sid = %(sid_hash)s"""

DELETE_SESSION = "DELETE FROM session WHERE sid = %(sid_hash)s"

DELETE_SESSION_FOR_USER = "DELETE FROM session WHERE id = %(id)s AND user_id = %(user_id)s"

DELETE_SESSIONS_FOR_USER = "DELETE FROM session WHERE user_id = %(user_id)s"

SELECT_LIVE_SESSIONS_FOR_USER = """
SELECT id, created_at, last_seen_at, user_agent FROM session
WHERE user_id = %(user_id)s AND expire > (now() AT TIME ZONE 'UTC')
ORDER BY last_seen_at DESC, id"""

# Rows without a user come from the original application; nothing can ever use them again.
DELETE_EXPIRED = """
DELETE FROM session WHERE expire <= (now() AT TIME ZONE 'UTC') OR user_id IS NULL"""


class SessionRepository:
    def __init__(self, conn):
        self.conn = conn

    def get_live(self, sid_hash: str):
        """The unexpired session with this hash, joined with its user, or None."""
        return self.conn.execute(SELECT_LIVE_SESSION, {"sid_hash": sid_hash}).fetchone()

    def create(self, sid_hash, sess, user_id, user_agent, idle, lifetime):
        return self.conn.execute(INSERT_SESSION, {
            "sid_hash": sid_hash, "sess": Json(sess), "user_id": user_id,
            "user_agent": user_agent, "idle": idle, "lifetime": lifetime}).fetchone()["id"]

    def touch(self, sid_hash, sess, idle, lifetime) -> None:
        self.conn.execute(TOUCH_SESSION, {
            "sid_hash": sid_hash, "sess": Json(sess), "idle": idle, "lifetime": lifetime})

    def delete(self, sid_hash: str) -> None:
        self.conn.execute(DELETE_SESSION, {"sid_hash": sid_hash})

    def delete_for_user(self, session_id: str, user_id: str) -> bool:
        cursor = self.conn.execute(DELETE_SESSION_FOR_USER, {"id": session_id, "user_id": user_id})
        return cursor.rowcount == 1

    def delete_all_for_user(self, user_id: str) -> int:
        return self.conn.execute(DELETE_SESSIONS_FOR_USER, {"user_id": user_id}).rowcount

    def list_live_for_user(self, user_id: str):
        return self.conn.execute(SELECT_LIVE_SESSIONS_FOR_USER, {"user_id": user_id}).fetchall()

    def purge_expired(self) -> int:
        """Delete expired sessions; returns how many."""
        return self.conn.execute(DELETE_EXPIRED).rowcount
