"""One LISTEN connection per process, shared by everything that waits for a change.

Message long-polls, event streams, typing and cache invalidation are all "a NOTIFY wakes
someone in this process": each subscribes here, by channel and by a field of the payload
(a conversation, an owner), or registers a callback for every notification of a channel.

The hub runs in a daemon thread (a greenlet under gunicorn's gevent worker) with a dedicated
connection. It starts on first use, so never in a process that forks afterwards, and reconnects
by itself when the database goes away. Notifications sent while it is not listening are lost:
after every (re)connect the connect callbacks run (a cache empties itself) and every subscriber
is woken to look again."""

import json
import logging
import os
import threading
import time
from collections import deque
from contextlib import contextmanager

import psycopg
from flask import current_app
from psycopg import sql

from .. import metrics

EXTENSION = "realtime_hub"
# Every channel carries a JSON object; KEYS names the fields a subscriber may match on.
KEYS = {
    "chatconnect_events": ("conversation_id", "owner_id"),
    "chatconnect_typing": ("conversation_id", "owner_id"),
}
# Channels whose payloads are plain text, read only by callbacks: cache invalidation
# (chatconnect/caches.py).
CALLBACK_CHANNELS = ("chatconnect_widget_config", "chatconnect_sessions")
CHANNELS = (*KEYS, *CALLBACK_CHANNELS)
# Channels whose payloads are the news itself (nothing stored to read again): subscribers keep
# them. Stored events are read from the table, so their payloads are only a wake-up.
EPHEMERAL = frozenset({"chatconnect_typing"})
# How often the thread looks up from the socket to see whether it was asked to stop.
STOP_CHECK_SECONDS = 2.0
FIRST_RETRY_SECONDS = 0.2
MAX_RETRY_SECONDS = 10.0
# Payloads a subscriber keeps until it reads them; typing is the only one that needs them.
PAYLOADS_KEPT = 50
# A peer that vanished without closing the socket is noticed within about a minute.
CONNECT_OPTIONS = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 30,
                   "keepalives_interval": 10, "keepalives_count": 3}

log = logging.getLogger(__name__)
_start_lock = threading.Lock()


class Subscription:
    """What one waiting request sees: `event` is set on every matching notification (and on
    every reconnect), and `payloads` holds the matching payloads of EPHEMERAL channels, oldest
    first."""

    def __init__(self):
        self.event = threading.Event()
        self.payloads: deque[dict] = deque(maxlen=PAYLOADS_KEPT)


class Hub:
    def __init__(self, conninfo: str):
        self.conninfo = conninfo
        self.pid = os.getpid()
        self.connections = 0  # LISTENs that succeeded so far: a reconnect makes it grow
        self.connected = False
        self._subscriptions: dict[tuple, set[Subscription]] = {}
        self._callbacks: dict[str, list] = {channel: [] for channel in CHANNELS}
        self._connect_callbacks: list = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chatconnect-hub", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def add_callback(self, channel: str, callback) -> None:
        """Call `callback(payload_text)` for every notification on `channel`, in the hub's
        thread: it must be quick and must not raise."""
        self._callbacks[channel].append(callback)

    def add_connect_callback(self, callback) -> None:
        """Call `callback()` after every successful (re)connect, before waiters are woken."""
        self._connect_callbacks.append(callback)

    @contextmanager
    def subscribe(self, channels, **match):
        """A Subscription to the notifications of `channels` (one name or several) whose
        payload has the one field given, e.g. `subscribe("chatconnect_events",
        conversation_id=…)`. An event stream waits for events and typing with one
        Subscription, so that one wait covers both."""
        channels = (channels,) if isinstance(channels, str) else tuple(channels)
        ((field, value),) = match.items()
        keys = []
        for channel in channels:
            if field not in KEYS[channel]:
                raise ValueError(f"{channel} payloads cannot be matched on {field}")
            keys.append((channel, field, str(value)))
        subscription = Subscription()
        with self._lock:
            for key in keys:
                self._subscriptions.setdefault(key, set()).add(subscription)
        try:
            yield subscription
        finally:
            with self._lock:
                for key in keys:
                    subscriptions = self._subscriptions[key]
                    subscriptions.discard(subscription)
                    if not subscriptions:
                        del self._subscriptions[key]

    def waiting(self) -> int:
        """How many subscriptions are open right now."""
        with self._lock:
            return len(set().union(*self._subscriptions.values()))

    def _deliver(self, channel: str, payload_text: str) -> None:
        for callback in self._callbacks.get(channel, ()):
            callback(payload_text)
        if channel not in KEYS:
            return
        try:
            payload = json.loads(payload_text)
        except ValueError:
            log.warning("hub: %s sent a payload that is not JSON: %.100r", channel, payload_text)
            return
        keep = channel in EPHEMERAL
        with self._lock:
            for field in KEYS.get(channel, ()):
                for subscription in self._subscriptions.get((channel, field, str(payload.get(field))), ()):
                    if keep:
                        subscription.payloads.append(payload)
                    subscription.event.set()

    def _wake_all(self) -> None:
        with self._lock:
            for subscriptions in self._subscriptions.values():
                for subscription in subscriptions:
                    subscription.event.set()

    def _run(self) -> None:
        delay = FIRST_RETRY_SECONDS
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, **CONNECT_OPTIONS) as conn:
                    for channel in CHANNELS:
                        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self.connections += 1
                    delay = FIRST_RETRY_SECONDS
                    for callback in self._connect_callbacks:
                        callback()
                    self.connected = True
                    self._wake_all()
                    while not self._stopping.is_set():
                        for notify in conn.notifies(timeout=STOP_CHECK_SECONDS):
                            self._deliver(notify.channel, notify.payload)
            except psycopg.Error as error:
                if not self._stopping.is_set():
                    log.warning("hub: %s; reconnecting in %.1f s",
                                str(error).strip() or type(error).__name__, delay)
            except Exception:
                log.exception("hub failed; restarting in %.1f s", delay)
            finally:
                self.connected = False
            self._stopping.wait(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)


def get_hub(app=None) -> Hub:
    """This process's hub of `app` (the current app by default), started on first use."""
    app = app or current_app._get_current_object()
    hub = app.extensions.get(EXTENSION)
    if hub is not None and hub.pid == os.getpid():
        return hub
    with _start_lock:
        hub = app.extensions.get(EXTENSION)
        if hub is None or hub.pid != os.getpid():
            hub = Hub(app.config["DATABASE_URL"])
            hub.start()
            app.extensions[EXTENSION] = hub
    return hub


def wait_for_rows(fetch, seconds: float, channel: str, **match) -> list:
    """Call fetch() until it returns rows or `seconds` pass, sleeping between calls until a
    matching notification arrives. fetch() runs its own short transaction, so no connection
    is held while asleep."""
    deadline = time.monotonic() + seconds
    # Subscribed before looking, so a change committed after the look still wakes us.
    with get_hub().subscribe(channel, **match) as subscription, \
            metrics.open_connection("long_poll"):
        while True:
            subscription.event.clear()
            rows = fetch()
            remaining = deadline - time.monotonic()
            if rows or remaining <= 0:
                return rows
            subscription.event.wait(remaining)
