"""Long-polls that wait for new messages without holding a pooled connection.

One listener per process: a daemon thread with a dedicated connection does
`LISTEN chatconnect_messages` (NOTIFYed with the conversation id by the trigger on `messages`,
whatever process or host inserted the row) and sets the events of the requests waiting on that
conversation. It starts on the first long-poll, so never in a process that gunicorn forks
afterwards, and reconnects by itself when the database goes away."""

import logging
import os
import threading
import time
from contextlib import contextmanager

import psycopg
from flask import current_app

LISTEN = "LISTEN chatconnect_messages"
EXTENSION = "message_listener"
# How often the thread looks up from the socket to see whether it was asked to stop.
STOP_CHECK_SECONDS = 2.0
FIRST_RETRY_SECONDS = 0.2
MAX_RETRY_SECONDS = 10.0
# A peer that vanished without closing the socket is noticed within about a minute.
CONNECT_OPTIONS = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 30,
                   "keepalives_interval": 10, "keepalives_count": 3}

log = logging.getLogger(__name__)
_start_lock = threading.Lock()


class MessageListener:
    def __init__(self, conninfo: str):
        self.conninfo = conninfo
        self.pid = os.getpid()
        self.connections = 0  # LISTENs that succeeded so far: a reconnect makes it grow
        self._waiters: dict[str, set[threading.Event]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chatconnect-listener",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    @contextmanager
    def waiting_for(self, conversation_id: str):
        """An event set whenever a message of the conversation may have arrived."""
        event = threading.Event()
        with self._lock:
            self._waiters.setdefault(conversation_id, set()).add(event)
        try:
            yield event
        finally:
            with self._lock:
                events = self._waiters[conversation_id]
                events.discard(event)
                if not events:
                    del self._waiters[conversation_id]

    def waiting(self) -> int:
        """How many requests are waiting right now."""
        with self._lock:
            return sum(len(events) for events in self._waiters.values())

    def _wake(self, conversation_id: str) -> None:
        with self._lock:
            for event in self._waiters.get(conversation_id, ()):
                event.set()

    def _wake_all(self) -> None:
        with self._lock:
            for events in self._waiters.values():
                for event in events:
                    event.set()

    def _run(self) -> None:
        delay = FIRST_RETRY_SECONDS
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, **CONNECT_OPTIONS) as conn:
                    conn.execute(LISTEN)
                    self.connections += 1
                    delay = FIRST_RETRY_SECONDS
                    # Notifications sent while nobody listened are lost: every waiter looks again.
                    self._wake_all()
                    while not self._stopping.is_set():
                        for notify in conn.notifies(timeout=STOP_CHECK_SECONDS):
                            self._wake(notify.payload)
            except psycopg.Error as error:
                if not self._stopping.is_set():
                    log.warning("message listener: %s; reconnecting in %.1f s",
                                str(error).strip() or type(error).__name__, delay)
            except Exception:
                log.exception("message listener failed; restarting in %.1f s", delay)
            self._stopping.wait(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)


def get_listener(app) -> MessageListener:
    """This process's listener of `app`, started on first use."""
    listener = app.extensions.get(EXTENSION)
    if listener is not None and listener.pid == os.getpid():
        return listener
    with _start_lock:
        listener = app.extensions.get(EXTENSION)
        if listener is None or listener.pid != os.getpid():
            listener = MessageListener(app.config["DATABASE_URL"])
            listener.start()
            app.extensions[EXTENSION] = listener
    return listener


def wait_for_rows(conversation_id: str, wait: float, fetch) -> list:
    """Call fetch() until it returns rows or `wait` seconds pass, sleeping between calls until a
    message of the conversation is announced. fetch() runs its own short transaction, so no
    connection is held while asleep."""
    deadline = time.monotonic() + wait
    listener = get_listener(current_app._get_current_object())
    # Registered before looking, so a message committed after the look still wakes us.
    with listener.waiting_for(conversation_id) as event:
        while True:
            event.clear()
            rows = fetch()
            remaining = deadline - time.monotonic()
            if rows or remaining <= 0:
                return rows
            event.wait(remaining)
