"""Per-process caches of hot reads, kept true by PostgreSQL notifications.

A cache is a bounded LRU. Triggers on the tables a cached value is built from NOTIFY a channel
of this process's hub (chatconnect/realtime/hub.py) with words naming what changed: each word
drops the entry of that key and every entry of that group (a client id, a user id), and `*`
drops everything. So a change made by any process or host, or with plain SQL, reaches every
worker within the notification latency.

Fail-safe: while the hub's LISTEN connection is down, notifications are lost, so the cache is
bypassed (every lookup asks the database), and it is emptied on every (re)connect.

A value loaded while a notification arrived is not kept: it may predate the change."""

import threading
from collections import OrderedDict

from . import metrics

_create_lock = threading.Lock()


def process_cache(app, extension: str, name: str, size: int, group, channel: str):
    """This process's NotifiedCache kept in `app.extensions[extension]`, made on first use and
    attached to the process's hub on `channel`."""
    cache = app.extensions.get(extension)
    if cache is None:
        from .realtime.hub import get_hub
        with _create_lock:
            cache = app.extensions.get(extension)
            if cache is None:
                cache = NotifiedCache(name, size, group)
                cache.attach(get_hub(app), channel)
                app.extensions[extension] = cache
    return cache


class NotifiedCache:
    def __init__(self, name: str, size: int, group_of=lambda value: None):
        self.name = name
        self.size = size
        self._group_of = group_of
        self._entries: OrderedDict = OrderedDict()
        self._groups: dict[str, set] = {}
        self._lock = threading.Lock()
        self._generation = 0  # moves on every invalidation
        self._hub = None

    def attach(self, hub, channel: str) -> None:
        hub.add_callback(channel, self.forget_words)
        hub.add_connect_callback(self.clear)
        self._hub = hub

    @property
    def live(self) -> bool:
        """Whether lookups may be answered from memory: the listener is connected."""
        return self._hub is not None and self._hub.connected and self.size > 0

    def get(self, key, load):
        """The value of `key`, from memory or from load(key) (which may return None: an
        unknown key is cached too)."""
        if not self.live:
            metrics.count_cache_lookup(self.name, "bypass")
            return load(key)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                value = self._entries[key]
                hit = True
            else:
                generation = self._generation
                hit = False
        if hit:
            metrics.count_cache_lookup(self.name, "hit")
            return value
        metrics.count_cache_lookup(self.name, "miss")
        value = load(key)
        with self._lock:
            if generation == self._generation and self.live:
                self._store(key, value)
        return value

    def _store(self, key, value) -> None:
        self._entries[key] = value
        group = self._group_of(value)
        if group is not None:
            self._groups.setdefault(group, set()).add(key)
        while len(self._entries) > self.size:
            old_key, old_value = self._entries.popitem(last=False)
            self._ungroup(old_key, old_value)

    def _ungroup(self, key, value) -> None:
        group = self._group_of(value)
        keys = self._groups.get(group)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._groups[group]

    def forget(self, *words: str) -> None:
        """Drop the entries whose key or group is one of `words`; `*` drops them all."""
        with self._lock:
            self._generation += 1
            for word in words:
                if word == "*":
                    self._entries.clear()
                    self._groups.clear()
                    return
                for key in [word, *self._groups.pop(word, ())]:
                    value = self._entries.pop(key, _MISSING)
                    if value is not _MISSING:
                        self._ungroup(key, value)

    def forget_words(self, payload: str) -> None:
        """The hub's callback: a notification's payload is the words to forget."""
        self.forget(*payload.split())

    def clear(self) -> None:
        self.forget("*")

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key) -> bool:
        return key in self._entries


_MISSING = object()
