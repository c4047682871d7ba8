"""`make bench-register-flood`: how a sign-up flood affects everyone else's sign-in.

The app is served by gunicorn with the shipped deploy/gunicorn.conf.py (on a throwaway
PostgreSQL, or a new database on BENCH_DATABASE_URL's server). One owner signs in over and over,
one request at a time, and reads GET /api/auth/me, first on a quiet server, then during each
flood of POST /api/auth/register from --concurrency connections:

  taken   a name that exists already, from one client IP (the flood that once kept both cores
          hashing while every answer was 409);
  fresh   new names, each from another client IP (X-Forwarded-For, as behind nginx): what no
          per-IP limit stops, and only the bound on concurrent hashes holds back.

For each phase it prints the sign-in and /me latencies (median and largest), the sign-ins'
statuses, the flood's statuses, and the CPU time gunicorn spent.
"""

import argparse
import http.client
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from run import GUNICORN_CONFIG, BenchError, bench_database, cpu_seconds, gunicorn

from chatconnect import migrate
from chatconnect.localdb import LocalClusterError

OWNER = "bench-owner"
TAKEN = "bench-taken"
PASSWORD = "bench owner password"


def request(port, method, path, body=None, headers=None):
    """(status, headers, milliseconds) over a new connection."""
    headers = dict(headers or {})
    if body is not None:
        body = json.dumps(body)
        headers["Content-Type"] = "application/json"
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    return response.status, response.headers, (time.perf_counter() - started) * 1000


def sign_in(port):
    status, headers, ms = request(port, "POST", "/api/auth/login",
                                  {"username": OWNER, "password": PASSWORD})
    cookies = [c.split(";", 1)[0] for c in headers.get_all("Set-Cookie") or []]
    return status, ms, "; ".join(cookies)


def flood(port, kind, concurrency, stop):
    statuses, lock = Counter(), threading.Lock()

    def one_connection(n):
        while not stop.is_set():
            if kind == "taken":
                username, headers = TAKEN, {}
            else:
                username = f"flood-{uuid.uuid4().hex[:12]}"
                headers = {"X-Forwarded-For": f"10.{n}.{secrets.randbelow(256)}."
                                              f"{secrets.randbelow(256)}"}
            try:
                status = request(port, "POST", "/api/auth/register",
                                 {"username": username, "password": "flood password 1"},
                                 headers)[0]
            except OSError:
                status = "socket error"
            with lock:
                statuses[status] += 1

    threads = [threading.Thread(target=one_connection, args=(n,)) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    return threads, statuses


def phase(port, server_pid, kind, concurrency, seconds):
    stop = threading.Event()
    threads, flood_statuses = flood(port, kind, concurrency, stop) if kind else ([], Counter())
    cpu_before = cpu_seconds(server_pid)
    time.sleep(0.5 if kind else 0)  # let the flood get going
    sign_ins, me_ms, statuses = [], [], Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status, ms, cookie = sign_in(port)
        statuses[status] += 1
        sign_ins.append(ms)
        if status == 200:
            me_ms.append(request(port, "GET", "/api/auth/me", headers={"Cookie": cookie})[2])
    cpu = cpu_seconds(server_pid) - cpu_before
    stop.set()
    for thread in threads:
        thread.join()
    return {"flood": kind or "none", "sign_in_p50_ms": statistics.median(sign_ins),
            "sign_in_max_ms": max(sign_ins), "sign_in_statuses": dict(statuses),
            "me_p50_ms": statistics.median(me_ms) if me_ms else None,
            "me_max_ms": max(me_ms) if me_ms else None,
            "flood_statuses": dict(flood_statuses), "server_cpu_s": cpu, "seconds": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8, help="seconds per phase (default 8)")
    parser.add_argument("--concurrency", type=int, default=16,
                        help="connections flooding at once (default 16)")
    parser.add_argument("--floods", default="taken,fresh",
                        help="comma-separated floods to run (default taken,fresh)")
    args = parser.parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="chatconnect-register-flood-"))
    try:
        with bench_database(work_dir) as (database_url, _):
            migrate.upgrade(database_url)
            env = {**os.environ, "DATABASE_URL": database_url,
                   "CHATCONNECT_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(32),
                   "TRUSTED_PROXY_HOPS": "1",
                   # The owner signs in hundreds of times: the sign-in limits must not apply.
                   "LOGIN_LIMIT_PER_USERNAME": "100000/60", "LOGIN_LIMIT_PER_IP": "100000/60"}
            with gunicorn(GUNICORN_CONFIG.absolute(), "wsgi:app", env, work_dir / "app.log",
                          "/readyz") as server:
                for username in (OWNER, TAKEN):
                    status = request(server.port, "POST", "/api/auth/register",
                                     {"username": username, "password": PASSWORD},
                                     {"X-Forwarded-For": "192.0.2.1"})[0]
                    if status != 201:
                        raise BenchError(f"signing up {username} answered {status}")
                results = [phase(server.port, server.process.pid, None, 0, args.seconds)]
                for kind in args.floods.split(","):
                    results.append(phase(server.port, server.process.pid, kind,
                                         args.concurrency, args.seconds))
    except (BenchError, LocalClusterError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    print(f"{args.concurrency} flooding connections, {args.seconds} s per phase")
    print("| flood | sign-in p50 ms | sign-in max ms | sign-in statuses | /me p50 ms | "
          "/me max ms | flood statuses | server CPU s |")
    print("|---|---:|---:|---|---:|---:|---|---:|")
    for r in results:
        me = (f"{r['me_p50_ms']:.0f} | {r['me_max_ms']:.0f}" if r["me_p50_ms"] is not None
              else "– | –")
        print(f"| {r['flood']} | {r['sign_in_p50_ms']:.0f} | {r['sign_in_max_ms']:.0f} | "
              f"{_counts(r['sign_in_statuses'])} | {me} | {_counts(r['flood_statuses'])} | "
              f"{r['server_cpu_s']:.1f} |")
    return 0


def _counts(statuses: dict) -> str:
    return ", ".join(f"{n} × {status}" for status, n in sorted(statuses.items(), key=str)) or "–"


if __name__ == "__main__":
    sys.exit(main())
