"""Bounds on the waits (long-polls and event streams) one caller holds at once.

A wait costs no thread and no database connection, but it does hold a socket, a greenlet and
some memory until it ends: without a bound, one visitor token (its public key is on every
customer page) could open waits until the process runs out of file descriptors. So each
process counts the waits it holds per visitor token, per signed-in session or token, and per
client IP, and refuses one more with 429 and Retry-After.

The counts are per process on purpose. What they protect (sockets, memory) is per process
too, and a count kept in memory is exact: it is released when the wait ends, whatever ends
it, and dies with the process, where a shared counter would need a write at every start and
end and would keep the waits of a crashed worker forever. A caller spread over W workers holds
at most W times the bound."""

import threading
from collections import Counter
from contextlib import contextmanager

from flask import current_app, request, session

from ..errors import ApiError
from ..session_store import PUBLIC_PREFIX
from ..tokens import hash_secret

EXTENSION = "wait_counts"
RETRY_AFTER_SECONDS = 5


class WaitCounts:
    def __init__(self):
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def acquire(self, limits: dict[str, int]) -> bool:
        """Count one wait against every key of `limits` (key -> bound), or none of them and
        return False when one is at its bound."""
        with self._lock:
            if any(self._counts[key] >= bound for key, bound in limits.items()):
                return False
            self._counts.update(limits.keys())
            return True

    def release(self, keys) -> None:
        with self._lock:
            self._counts.subtract(keys)
            for key in keys:
                if self._counts[key] <= 0:
                    del self._counts[key]

    def held(self, key: str) -> int:
        with self._lock:
            return self._counts[key]


def _counts(app) -> WaitCounts:
    return app.extensions.setdefault(EXTENSION, WaitCounts())


def _limits() -> dict[str, int]:
    """The keys this request's wait counts against, with their bounds."""
    config = current_app.config
    if request.path.startswith(PUBLIC_PREFIX):
        caller = "visitor:" + hash_secret(request.headers.get("X-Visitor-Token", ""))
        bound = config["WAITS_PER_VISITOR"]
    elif getattr(session, "public_id", None):  # a signed-in cookie session
        caller, bound = "session:" + session.public_id, config["WAITS_PER_SESSION"]
    else:
        caller = "token:" + hash_secret(request.headers.get("Authorization", ""))
        bound = config["WAITS_PER_SESSION"]
    return {caller: bound, f"ip:{request.remote_addr}": config["WAITS_PER_IP"]}


def hold_wait():
    """Count the request's wait and return the function that ends it; 429 beyond a bound."""
    counts, limits = _counts(current_app), _limits()
    if not counts.acquire(limits):
        raise ApiError(429, "rate_limited",
                       "too many long-polls or event streams open at once; close one or retry "
                       "later", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    keys = list(limits)
    released = []

    def release():
        if not released:  # called once, whoever calls it first
            released.append(True)
            counts.release(keys)
    return release


@contextmanager
def bounded_wait():
    """A wait of this request, counted while the block runs."""
    release = hold_wait()
    try:
        yield
    finally:
        release()
