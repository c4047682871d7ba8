"""Password hashing with werkzeug's scrypt at no less than OWASP's minimum cost.

A hash takes tens of milliseconds of CPU. Under gunicorn's gevent worker it runs in gevent's
pool of native threads (scrypt releases the GIL), so the worker keeps serving its other
requests meanwhile. Each process hashes at most PASSWORD_HASH_CONCURRENCY passwords at once
(see hashing_slot)."""

import sys
import threading
from contextlib import contextmanager
from functools import cache

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from .errors import ApiError

# OWASP: scrypt N=2^15, r=8, p=3 is one of the minimum equivalent settings.
METHOD = "scrypt:32768:8:3"


def off_event_loop(function, *args):
    """function(*args), in a native thread when this process runs on gevent's event loop."""
    if "gevent" in sys.modules:
        from gevent import get_hub, monkey
        if monkey.is_module_patched("threading"):
            return get_hub().threadpool.apply(function, args)
    return function(*args)


def hash_password(password: str) -> str:
    return off_event_loop(generate_password_hash, password, METHOD)


def needs_rehash(password_hash: str) -> bool:
    return password_hash.split("$", 1)[0] != METHOD


@cache
def _dummy_hash() -> str:
    return hash_password("no user has this password")


def _check(password_hash: str, password: str) -> bool:
    try:
        return check_password_hash(password_hash, password)
    except ValueError:  # a hash in a format werkzeug does not know
        return False


def verify(password_hash: str | None, password: str) -> bool:
    """Check a password; with no hash (unknown user) spend the same work and return False."""
    if password_hash is None:
        off_event_loop(_check, _dummy_hash(), password)
        return False
    return off_event_loop(_check, password_hash, password)


def init_app(app) -> None:
    limit = app.config["PASSWORD_HASH_CONCURRENCY"]
    app.extensions["password_hash_slots"] = threading.BoundedSemaphore(limit)
    # Sign-ups may hold at most half of the slots, so that a flood of them (which no account
    # is needed for) always leaves room for signed-up users to sign in.
    app.extensions["password_hash_sign_up_slots"] = threading.BoundedSemaphore(
        max(1, limit // 2))


@contextmanager
def hashing_slot(sign_up: bool = False):
    """One of this process's PASSWORD_HASH_CONCURRENCY hashing slots for the block, or 503.

    A flood of sign-ups or sign-ins could otherwise keep every core hashing and slow the whole
    API down; beyond the bound the request is refused at once, without waiting, so that waiting
    requests do not pile up either."""
    semaphores = [current_app.extensions["password_hash_slots"]]
    if sign_up:
        semaphores.insert(0, current_app.extensions["password_hash_sign_up_slots"])
    acquired = []
    try:
        for semaphore in semaphores:
            if not semaphore.acquire(blocking=False):
                raise ApiError(503, "service_unavailable",
                               "too many passwords are being checked right now; retry in a "
                               "second", headers={"Retry-After": "1"})
            acquired.append(semaphore)
        yield
    finally:
        for semaphore in acquired:
            semaphore.release()
