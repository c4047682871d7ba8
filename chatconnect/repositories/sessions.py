"""The session table: server-side login sessions, keyed by the hash of the cookie value."""

from psycopg.types.json import Json

# expire is `timestamp without time zone` in UTC (the original table's type). A session made
# before the user's last password change (an older credentials_version) is no session.
SELECT_LIVE_SESSION = """
SELECT s.id, s.sess, s.last_seen_at, s.expire, u.id AS user_id, u.username, u.created_at,
       u.credentials_version
FROM session s JOIN users u ON u.id = s.user_id AND u.credentials_version = s.credentials_version
WHERE s.sid = %(sid_hash)s AND s.expire > (now() AT TIME ZONE 'UTC')"""

# Only while the user's credentials are still the ones that were checked: a sign-in whose
# password check came before a password change creates nothing once the change has committed,
# and a row written before that commit carries the old version, which the change ends.
INSERT_SESSION = """
INSERT INTO session (sid, sess, expire, user_id, user_agent, credentials_version)
SELECT %(sid_hash)s, %(sess)s,
       (now() AT TIME ZONE 'UTC') + make_interval(secs => least(%(idle)s, %(lifetime)s)),
       u.id, %(user_agent)s, u.credentials_version
FROM users u
WHERE u.id = %(user_id)s AND u.credentials_version = %(credentials_version)s
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
SELECT s.id, s.created_at, s.last_seen_at, s.user_agent
FROM session s JOIN users u ON u.id = s.user_id AND u.credentials_version = s.credentials_version
WHERE s.user_id = %(user_id)s AND s.expire > (now() AT TIME ZONE 'UTC')
ORDER BY s.last_seen_at DESC, s.id"""

# Rows without a user come from the original application, and rows of older credentials from
# sign-ins that raced a password change; nothing can ever use them again.
DELETE_EXPIRED = """
DELETE FROM session s
WHERE s.expire <= (now() AT TIME ZONE 'UTC') OR s.user_id IS NULL
   OR s.credentials_version <> (SELECT u.credentials_version FROM users u WHERE u.id = s.user_id)"""


class SessionRepository:
    def __init__(self, conn):
        self.conn = conn

    def get_live(self, sid_hash: str):
        """The unexpired session with this hash, joined with its user, or None."""
        return self.conn.execute(SELECT_LIVE_SESSION, {"sid_hash": sid_hash}).fetchone()

    def create(self, sid_hash, sess, user_id, credentials_version, user_agent, idle, lifetime):
        """The new session's id, or None when the user's credentials are no longer at
        `credentials_version` (the password changed after it was checked)."""
        row = self.conn.execute(INSERT_SESSION, {
            "sid_hash": sid_hash, "sess": Json(sess), "user_id": user_id,
            "credentials_version": credentials_version, "user_agent": user_agent,
            "idle": idle, "lifetime": lifetime}).fetchone()
        return row["id"] if row else None

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
