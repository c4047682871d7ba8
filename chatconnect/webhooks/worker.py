"""`chatconnect worker`: turns stored events into deliveries and makes them, at least once.

Any number of workers may run, on any hosts. They share nothing but the database:

- Fan-out copies each webhook's new events into deliveries and moves the webhook's cursor in
  the same statement, the webhook row locked with SKIP LOCKED (see FAN_OUT).
- A delivery is attempted under a lease written into its row (LEASE_DUE), so no transaction
  stays open while a receiver answers. The lease names this worker's own session (its
  backend pid): when the worker dies, PostgreSQL ends that session, and the other workers
  take the delivery over at once instead of when the lease runs out.
- A worker sleeps until a NOTIFY on chatconnect_events (a new event) or
  chatconnect_webhook_deliveries (new deliveries, a redelivery), until the next retry is due,
  or for `poll_interval` at most, in case a notification was lost.

SIGTERM stops leasing, lets the attempts in flight finish (at most TOTAL_TIMEOUT), records
them and exits."""

import json
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg
from psycopg import sql

from ..repositories.webhook_deliveries import WebhookDeliveryRepository
from ..serialize import event_json
from .http import TOTAL_TIMEOUT, post
from .signing import signature

log = logging.getLogger(__name__)

CHANNELS = ("chatconnect_events", "chatconnect_webhook_deliveries")
RETRY_WINDOW = timedelta(hours=24)
# Longer than an attempt can take (resolving, TOTAL_TIMEOUT, recording), so that a live worker
# never loses its lease; it matters only for a worker that hangs with its session open.
LEASE_SECONDS = 4 * TOTAL_TIMEOUT
ERROR_BODY_CHARACTERS = 200
RECORD_TRIES = 3


def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt`: 30 s doubling up to 4 h, with
    ±25 % jitter so that the deliveries of an endpoint that was down do not return at once.
    About 15 attempts fill the 24 hours of RETRY_WINDOW."""
    return min(30 * 2 ** (attempt - 1), 4 * 3600) * random.uniform(0.75, 1.25)


def event_body(row) -> bytes:
    """The event JSON, exactly as the event streams show it."""
    event = event_json({
        "id": row["event_id"], "type": row["event_type"], "client_id": row["client_id"],
        "conversation_id": row["conversation_id"], "data": row["data"],
        "created_at": row["event_created_at"]})
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


class Worker:
    def __init__(self, pool, database_url: str, *, concurrency: int = 16, per_endpoint: int = 4,
                 poll_interval: float = 10, allow_private: bool = False, backoff=backoff,
                 retry_window: timedelta = RETRY_WINDOW):
        self.pool = pool
        self.database_url = database_url
        self.concurrency = concurrency
        self.per_endpoint = per_endpoint
        self.poll_interval = poll_interval
        self.allow_private = allow_private
        self.backoff = backoff
        self.retry_window = retry_window
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.session_pid = None  # the backend pid of the listening session, while it is up
        self.in_flight = 0
        self.lock = threading.Lock()

    # --- running and stopping ---------------------------------------------------------------

    def run(self) -> None:
        """Work until stop() is called; then finish the attempts in flight and return."""
        listener = threading.Thread(target=self._listen, name="webhook-listener", daemon=True)
        listener.start()
        senders = ThreadPoolExecutor(self.concurrency, thread_name_prefix="webhook-sender")
        failures = 0
        try:
            while not self.stopping.is_set():
                self.wake.clear()
                try:
                    self._fan_out()
                    timeout = self._lease_and_send(senders)
                    failures = 0
                except psycopg.Error as error:
                    failures += 1
                    timeout = min(self.poll_interval, 0.5 * 2 ** failures)
                    log.warning("webhook worker: database error, retrying in %.1f s: %s",
                                timeout, error)
                if timeout:
                    self.wake.wait(timeout)
        finally:
            senders.shutdown(wait=True)
            self.stopping.set()
            listener.join(timeout=5)

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    # --- the steps --------------------------------------------------------------------------

    def _fan_out(self) -> None:
        while not self.stopping.is_set():
            with self.pool.connection() as conn:
                advanced, _ = WebhookDeliveryRepository(conn).fan_out()
            if not advanced:
                return

    def _lease_and_send(self, senders) -> float:
        """Start attempts on every free sender; the seconds to sleep afterwards (0: go on)."""
        with self.lock:
            free = self.concurrency - self.in_flight
        if free and self.session_pid is not None:
            with self.pool.connection() as conn:
                rows = WebhookDeliveryRepository(conn).lease_due(
                    free, self.per_endpoint, LEASE_SECONDS, self.session_pid)
            with self.lock:
                self.in_flight += len(rows)
            for row in rows:
                senders.submit(self._attempt, row)
            if rows:
                return 0  # more may be due, for endpoints that were not busy a moment ago
        if not free:
            return self.poll_interval  # woken when an attempt ends
        with self.pool.connection() as conn:
            seconds = WebhookDeliveryRepository(conn).seconds_to_next_due()
        return self.poll_interval if seconds is None else min(max(seconds, 0.01),
                                                              self.poll_interval)

    def _attempt(self, row) -> None:
        try:
            body = event_body(row)
            headers = {
                "ChatConnect-Event-Id": str(row["event_id"]),
                "ChatConnect-Event-Type": row["event_type"],
                "ChatConnect-Delivery-Id": str(row["id"]),
                "ChatConnect-Signature": signature(row["secret"], body),
            }
            outcome = post(row["url"], body, headers, self.allow_private)
            self._record(row, outcome)
            log.info("webhook delivery %s of event %s: attempt %s, %s", row["id"],
                     row["event_id"], row["attempt"],
                     "delivered" if outcome.succeeded else outcome.error)
        except Exception:
            # The lease runs out and the delivery is attempted again.
            log.exception("webhook delivery %s: could not record the attempt", row["id"])
        finally:
            with self.lock:
                self.in_flight -= 1
            self.wake.set()

    def _record(self, row, outcome) -> None:
        """Write the attempt down. A database away for a moment is tried again a few times: an
        attempt left unrecorded is made again when its lease runs out."""
        error = outcome.error
        if outcome.body and not outcome.succeeded:
            snippet = outcome.body[:ERROR_BODY_CHARACTERS * 4].decode(
                "utf-8", "replace")[:ERROR_BODY_CHARACTERS]
            error = f"{error}: {snippet}".replace("\x00", "\ufffd")
        for tries_left in reversed(range(RECORD_TRIES)):
            try:
                with self.pool.connection() as conn:
                    deliveries = WebhookDeliveryRepository(conn)
                    if outcome.succeeded:
                        deliveries.record_success(row["id"], row["lease_token"],
                                                  outcome.status, outcome.duration_ms)
                    else:
                        deliveries.record_failure(row["id"], row["lease_token"],
                                                  outcome.status, outcome.duration_ms, error,
                                                  self.backoff(row["attempt"]),
                                                  self.retry_window)
                return
            except psycopg.Error:
                if not tries_left:
                    raise
                time.sleep(1)

    def _listen(self) -> None:
        """LISTEN on CHANNELS and wake the loop on every notification; reconnect with backoff.

        This session's pid names the leases of this worker (see the module docstring)."""
        delay = 0.5
        while not self.stopping.is_set():
            try:
                with psycopg.connect(self.database_url, autocommit=True) as conn:
                    for channel in CHANNELS:
                        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self.session_pid = conn.info.backend_pid
                    delay = 0.5
                    self.wake.set()  # notifications sent while nobody listened are lost
                    while not self.stopping.is_set():
                        for _ in conn.notifies(timeout=1, stop_after=1):
                            self.wake.set()
            except psycopg.Error as error:
                log.warning("webhook worker: listening connection lost, reconnecting in "
                            "%.1f s: %s", delay, error)
            self.session_pid = None
            self.stopping.wait(delay)
            delay = min(delay * 2, 30)
