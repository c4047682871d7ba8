"""The rate_limits table: fixed-window hit counters shared by every worker and host."""

HIT = """
INSERT INTO rate_limits AS r (key, window_start, hits) VALUES (%(key)s, now(), 1)
ON CONFLICT (key) DO UPDATE SET
    hits = CASE WHEN r.window_start > now() - make_interval(secs => %(window)s)
                THEN r.hits + 1 ELSE 1 END,
    window_start = CASE WHEN r.window_start > now() - make_interval(secs => %(window)s)
                        THEN r.window_start ELSE now() END
RETURNING hits, ceil(extract(epoch FROM
    r.window_start + make_interval(secs => %(window)s) - now()))::int AS retry_after"""

DELETE = "DELETE FROM rate_limits WHERE key = %(key)s"

# Counters of one kind (key prefix) whose window ended long ago count nothing any more.
DELETE_STALE = """
DELETE FROM rate_limits
WHERE starts_with(key, %(prefix)s) AND window_start < now() - make_interval(secs => %(seconds)s)"""

RELEASE = "UPDATE rate_limits SET hits = greatest(hits - 1, 0) WHERE key = %(key)s"


class RateLimitRepository:
    def __init__(self, conn):
        self.conn = conn

    def hit(self, key: str, window_seconds: int) -> tuple[int, int]:
        """Count one hit; return (hits in the current window, seconds until it ends)."""
        row = self.conn.execute(HIT, {"key": key, "window": window_seconds}).fetchone()
        return row["hits"], row["retry_after"]

    def reset(self, key: str) -> None:
        self.conn.execute(DELETE, {"key": key})

    def release(self, key: str) -> None:
        """Take back one hit (one that turned out not to count, e.g. a successful sign-in)."""
        self.conn.execute(RELEASE, {"key": key})

    def delete_stale(self, prefix: str, seconds: int) -> int:
        """Delete the counters of keys starting with `prefix` whose window began more than
        `seconds` ago (longer than their window)."""
        return self.conn.execute(DELETE_STALE, {"prefix": prefix, "seconds": seconds}).rowcount
