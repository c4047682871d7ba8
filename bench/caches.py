"""`make bench-caches`: the notification latency of the per-worker caches.

Two app instances on one throwaway database stand for two workers, each with its own hub and
caches. For each sample, a change is committed from a plain connection (a session deleted, as a
sign-out or revocation does; a widget setting updated) and the time is taken until the other
worker's cache has dropped the entry: from then on that worker asks PostgreSQL, so the change
is in force there. The figures are the commit-to-drop times, median, 90th and 99th percentile.
"""

import argparse
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from run import bench_database
from chatconnect import create_app, migrate, widget_config
from chatconnect.session_store import COOKIE_NAME, session_cache
from chatconnect.tokens import hash_secret

PASSWORD = "bench owner password"
SPIN_SECONDS = 0.0002
GIVE_UP_SECONDS = 30


def app(database_url: str):
    return create_app({"DATABASE_URL": database_url, "CHATCONNECT_ENV": "development",
                       "SECRET_KEY": secrets.token_urlsafe(16), "DB_POOL_MIN_SIZE": "1",
                       "DB_POOL_MAX_SIZE": "2"})


def until(condition, what: str) -> None:
    deadline = time.monotonic() + GIVE_UP_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(SPIN_SECONDS)


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p90 = ms[int(0.9 * (len(ms) - 1))]
    p99 = ms[int(0.99 * (len(ms) - 1))]
    return (f"median {statistics.median(ms):.2f} ms, p90 {p90:.2f} ms, p99 {p99:.2f} ms, "
            f"max {ms[-1]:.2f} ms ({len(ms)} samples)")


def revocations(writer, reader, conn, samples: int) -> list[float]:
    client = writer.test_client()
    response = client.post("/api/auth/register", json={"username": "latency",
                                                       "password": PASSWORD})
    assert response.status_code == 201, response.get_json()
    [user_id, sess] = conn.execute("SELECT user_id, sess::text FROM session").fetchone()
    latencies = []
    browser = reader.test_client()
    cache = session_cache(reader)
    for _ in range(samples):
        sid = secrets.token_urlsafe(32)
        conn.execute("INSERT INTO session (sid, sess, expire, user_id) VALUES"
                     " (%s, %s, now() AT TIME ZONE 'UTC' + interval '1 hour', %s)",
                     (hash_secret(sid), sess, user_id))
        browser.set_cookie(COOKIE_NAME, sid)
        until(lambda: browser.get("/api/auth/me").status_code == 200
              and hash_secret(sid) in cache, "the session to be cached")
        started = time.perf_counter()
        conn.execute("DELETE FROM session WHERE sid = %s", (hash_secret(sid),))
        until(lambda: hash_secret(sid) not in cache, "the revocation to arrive")
        latencies.append(time.perf_counter() - started)
    assert browser.get("/api/auth/me").status_code == 401
    return latencies


def widget_changes(writer, reader, conn, samples: int) -> list[float]:
    owner = writer.test_client()
    owner.post("/api/auth/login", json={"username": "latency", "password": PASSWORD})
    shop = owner.post("/api/clients", json={"name": "Latency"}).get_json()
    key = shop["public_api_key"]
    browser = reader.test_client()
    cache = widget_config.cache(reader)
    latencies = []
    for sample in range(samples):
        until(lambda: browser.get(f"/api/public/widgets/{key}").status_code == 200
              and key in cache, "the widget to be cached")
        started = time.perf_counter()
        conn.execute("UPDATE client_widgets SET welcome_message = %s WHERE client_id = %s",
                     (f"Hello #{sample}", shop["id"]))
        until(lambda: key not in cache, "the change to arrive")
        latencies.append(time.perf_counter() - started)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200, help="changes of each kind")
    args = parser.parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="chatconnect-bench-"))
    with bench_database(work_dir) as (url, _):
        migrate.upgrade(url)
        writer, reader = app(url), app(url)
        try:
            for worker in (writer, reader):
                session_cache(worker), widget_config.cache(worker)
            until(lambda: session_cache(reader).live, "the listener")
            with psycopg.connect(url, autocommit=True) as conn:
                print("revocation (DELETE FROM session) to the other worker: "
                      + percentiles(revocations(writer, reader, conn, args.samples)), flush=True)
                print("widget change (UPDATE client_widgets) to the other worker: "
                      + percentiles(widget_changes(writer, reader, conn, args.samples)),
                      flush=True)
        finally:
            for worker in (writer, reader):
                worker.extensions["realtime_hub"].stop()
                worker.extensions["db_pool"].close()
    shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
