"""The webhook_deliveries table: one row per event and webhook, its attempts and its outcome.

The worker's queries live here too: turning new events into deliveries, leasing due
deliveries, and recording what an attempt gave."""

COLUMNS = ("id, event_id, event_type, attempt, status, response_status, duration_ms, error, "
           "created_at, next_attempt_at")

# The events up to `horizon` are all visible: ids become visible in increasing order (the
# events trigger), so every id at or below the largest one seen has committed. Only webhooks
# whose client has events past their cursor are touched; each is locked while its events are
# copied (another worker skips it rather than waits) and advances by at most `batch` of its
# client's events a statement. A cursor may stay behind while its client is quiet: the next
# scan from it costs one index probe. The unique index makes a second copy impossible.
FAN_OUT = """
WITH horizon AS (
    SELECT coalesce(max(id), 0) AS id FROM events
), claimed AS (
    SELECT w.id, w.client_id, w.events, w.active, w.last_event_id,
           CASE WHEN next.count < %(batch)s THEN h.id ELSE next.last END AS upto
    FROM webhooks w
    CROSS JOIN horizon h
    CROSS JOIN LATERAL (
        SELECT count(*) AS count, max(id) AS last FROM (
            SELECT e.id FROM events e
            WHERE e.client_id = w.client_id AND e.id > w.last_event_id AND e.id <= h.id
            ORDER BY e.id
            LIMIT %(batch)s) AS pending
    ) AS next
    WHERE w.last_event_id < h.id AND next.count > 0
    ORDER BY w.last_event_id
    LIMIT %(webhooks)s
    FOR UPDATE OF w SKIP LOCKED
), inserted AS (
    INSERT INTO webhook_deliveries (client_id, webhook_id, event_id, event_type, created_at)
    SELECT c.client_id, c.id, e.id, e.type, clock_timestamp()
    FROM claimed c
    JOIN events e ON e.client_id = c.client_id AND e.id > c.last_event_id AND e.id <= c.upto
    WHERE c.active AND (cardinality(c.events) = 0 OR e.type = ANY (c.events))
    ORDER BY e.id
    ON CONFLICT DO NOTHING
    RETURNING 1
)
UPDATE webhooks w SET last_event_id = c.upto
FROM claimed c
WHERE w.id = c.id
RETURNING w.id, (SELECT count(*) FROM inserted) AS inserted"""

NOTIFY_DELIVERIES = "SELECT pg_notify('chatconnect_webhook_deliveries', '')"

# Leases of workers whose session is gone (killed, crashed, cut off) count for nothing: their
# rows are due again at once, not when the lease runs out. An endpoint with `per_endpoint`
# attempts in flight, in all workers together, gets no more until one ends; a few more may
# start when several workers lease at the same instant. Every row scanned is locked (and
# written), so the scan is kept to a few times the rows wanted.
LEASE_DUE = """
WITH live AS MATERIALIZED (
    SELECT pid FROM pg_stat_activity
), in_flight AS (
    SELECT webhook_id, count(*) AS n FROM webhook_deliveries
    WHERE lease_token IS NOT NULL AND leased_until > now()
      AND leased_by IN (SELECT pid FROM live)
    GROUP BY webhook_id
), locked AS (
    SELECT d.id, d.webhook_id, d.next_attempt_at
    FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND w.active
      AND (d.lease_token IS NULL OR d.leased_until <= now()
           OR d.leased_by NOT IN (SELECT pid FROM live))
      AND d.webhook_id NOT IN (SELECT webhook_id FROM in_flight WHERE n >= %(per_endpoint)s)
    ORDER BY d.next_attempt_at
    LIMIT %(scan)s
    FOR UPDATE OF d SKIP LOCKED
), chosen AS (
    SELECT id FROM (
        SELECT l.id, l.next_attempt_at, coalesce(f.n, 0) AS busy,
               row_number() OVER (PARTITION BY l.webhook_id
                                  ORDER BY l.next_attempt_at, l.id) AS rank
        FROM locked l LEFT JOIN in_flight f USING (webhook_id)
    ) ranked
    WHERE rank <= %(per_endpoint)s - busy
    ORDER BY next_attempt_at
    LIMIT %(limit)s
)
UPDATE webhook_deliveries d
SET attempt = d.attempt + 1, lease_token = gen_random_uuid(),
    leased_until = now() + make_interval(secs => %(lease_seconds)s), leased_by = %(worker_pid)s
FROM chosen, webhooks w, events e
WHERE d.id = chosen.id AND w.id = d.webhook_id AND e.id = d.event_id
RETURNING d.id, d.webhook_id, d.attempt, d.lease_token, w.url, w.secret,
          e.id AS event_id, e.type AS event_type, e.client_id, e.conversation_id, e.data,
          e.created_at AS event_created_at"""

RECORD_SUCCESS = """
UPDATE webhook_deliveries
SET status = 'succeeded', response_status = %(response_status)s, duration_ms = %(duration_ms)s,
    error = NULL, next_attempt_at = NULL, lease_token = NULL, leased_until = NULL, leased_by = NULL
WHERE id = %(id)s AND lease_token = %(lease_token)s"""

# Retried until `retry_window` has passed since the delivery was created, then failed.
RECORD_FAILURE = """
UPDATE webhook_deliveries
SET status = CASE WHEN now() >= created_at + %(retry_window)s THEN 'failed' ELSE 'pending' END,
    next_attempt_at = CASE WHEN now() >= created_at + %(retry_window)s THEN NULL
                           ELSE now() + make_interval(secs => %(delay_seconds)s) END,
    response_status = %(response_status)s, duration_ms = %(duration_ms)s, error = %(error)s,
    lease_token = NULL, leased_until = NULL, leased_by = NULL
WHERE id = %(id)s AND lease_token = %(lease_token)s"""

# A lease given back unused: the attempt was never made.
RELEASE = """
UPDATE webhook_deliveries
SET attempt = attempt - 1, lease_token = NULL, leased_until = NULL, leased_by = NULL
WHERE id = %(id)s AND lease_token = %(lease_token)s"""

# Only the future: what is due now was leased already, or is waiting for its endpoint.
SELECT_SECONDS_TO_NEXT_DUE = """
SELECT extract(epoch FROM min(next_attempt_at) - now())::float8 AS seconds
FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at > now()"""

SELECT_PAGE_FOR_WEBHOOK = f"""
SELECT {COLUMNS} FROM webhook_deliveries
WHERE webhook_id = %(webhook_id)s AND client_id = %(client_id)s
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s"""

SELECT_PAGE_BEFORE_FOR_WEBHOOK = f"""
SELECT {COLUMNS} FROM webhook_deliveries
WHERE webhook_id = %(webhook_id)s AND client_id = %(client_id)s
  AND (created_at, id) < (%(before_created_at)s, %(before_id)s)
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s"""

INSERT_REDELIVERY = f"""
INSERT INTO webhook_deliveries (client_id, webhook_id, event_id, event_type, redelivery_of)
SELECT client_id, webhook_id, event_id, event_type, id FROM webhook_deliveries
WHERE id = %(id)s AND webhook_id = %(webhook_id)s AND client_id = %(client_id)s
RETURNING {COLUMNS}"""


# Pending deliveries stay, however old: they are still owed.
DELETE_FINISHED_BEFORE = """
DELETE FROM webhook_deliveries
WHERE status <> 'pending' AND created_at < now() - make_interval(days => %(days)s)"""


class WebhookDeliveryRepository:
    def __init__(self, conn):
        self.conn = conn

    def list_for_webhook(self, webhook_id: str, client_id: str, limit: int, before=None):
        """Up to `limit` deliveries newest first, before the (created_at, id) key `before`.

        The caller has checked that the webhook is the owner's."""
        params = {"webhook_id": webhook_id, "client_id": client_id, "limit": limit}
        if before is None:
            return self.conn.execute(SELECT_PAGE_FOR_WEBHOOK, params).fetchall()
        params["before_created_at"], params["before_id"] = before
        return self.conn.execute(SELECT_PAGE_BEFORE_FOR_WEBHOOK, params).fetchall()

    def redeliver(self, delivery_id: str, webhook_id: str, client_id: str):
        """A new pending delivery of the same event to the same webhook, or None."""
        row = self.conn.execute(INSERT_REDELIVERY, {
            "id": delivery_id, "webhook_id": webhook_id, "client_id": client_id}).fetchone()
        if row is not None:
            self.conn.execute(NOTIFY_DELIVERIES)
        return row

    def fan_out(self, batch: int = 1000, webhooks: int = 100) -> tuple[int, int]:
        """Turn new events into deliveries: (webhooks advanced, deliveries created)."""
        rows = self.conn.execute(FAN_OUT, {"batch": batch, "webhooks": webhooks}).fetchall()
        created = rows[0]["inserted"] if rows else 0
        if created:
            self.conn.execute(NOTIFY_DELIVERIES)
        return len(rows), created

    def lease_due(self, limit: int, per_endpoint: int, lease_seconds: float, worker_pid: int):
        """Lease up to `limit` due deliveries, with what is needed to attempt them.

        Fewer may come back while more are due, when several belong to one endpoint; the
        next call, which sees that endpoint busy, gets the others."""
        return self.conn.execute(LEASE_DUE, {
            "limit": limit, "per_endpoint": per_endpoint, "lease_seconds": lease_seconds,
            "worker_pid": worker_pid, "scan": 2 * limit}).fetchall()

    def record_success(self, delivery_id, lease_token, response_status, duration_ms) -> bool:
        return self.conn.execute(RECORD_SUCCESS, {
            "id": delivery_id, "lease_token": lease_token, "response_status": response_status,
            "duration_ms": duration_ms}).rowcount == 1

    def record_failure(self, delivery_id, lease_token, response_status, duration_ms, error,
                       delay_seconds, retry_window) -> bool:
        return self.conn.execute(RECORD_FAILURE, {
            "id": delivery_id, "lease_token": lease_token, "response_status": response_status,
            "duration_ms": duration_ms, "error": error, "delay_seconds": delay_seconds,
            "retry_window": retry_window}).rowcount == 1

    def release(self, delivery_id, lease_token) -> None:
        self.conn.execute(RELEASE, {"id": delivery_id, "lease_token": lease_token})

    def seconds_to_next_due(self) -> float | None:
        """Seconds until the next pending delivery that is not due yet becomes due, or None."""
        return self.conn.execute(SELECT_SECONDS_TO_NEXT_DUE).fetchone()["seconds"]

    def purge_finished(self, days: int) -> int:
        """Delete the succeeded and failed deliveries created more than `days` days ago."""
        return self.conn.execute(DELETE_FINISHED_BEFORE, {"days": days}).rowcount
