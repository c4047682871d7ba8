"""Helpers of the tests that involve the per-process caches."""

import time
import uuid

import psycopg

from chatconnect import widget_config
from chatconnect.realtime.hub import get_hub
from chatconnect.session_store import session_cache

LIVENESS_SECONDS = 30  # generous: the machine may be busy; a pass takes milliseconds


def eventually(condition, seconds=LIVENESS_SECONDS) -> bool:
    """Whether condition() comes true within `seconds` (a liveness wait, not a timing test)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def wait_until_cache_is_live(app) -> bool:
    """Start the app's caches and wait for its hub to listen, so that lookups are cached."""
    with app.app_context():
        caches = [widget_config.cache(app), session_cache(app)]
    return eventually(lambda: all(cache.live for cache in caches))


def settle(apps, database_url, channel="chatconnect_widget_config") -> bool:
    """Wait until the hub of every app has received every notification sent so far on
    `channel` (those of the test's own setup included), so that none arrives late. Notifications
    come in commit order: a marker sent now comes after all of them."""
    marker = f"settled-{uuid.uuid4().hex}"
    seen = []
    for app in apps:
        get_hub(app).add_callback(channel, lambda payload, app=app: payload == marker
                                  and seen.append(app))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (channel, marker))
    return eventually(lambda: len(seen) == len(apps))
