"""`make bench-webhooks`: webhook deliveries per second, and the lag from commit to delivery.

A throwaway PostgreSQL (or a new database on BENCH_DATABASE_URL's server) gets one owner with
ENDPOINTS clients, each with one webhook to its own path of a fast receiver on loopback (a
threaded Python HTTP server answering 204 at once). Then:

- throughput: with 1 and then 4 `chatconnect worker` processes running and idle, EVENTS events
  are committed at once (spread over the clients); the figure is deliveries / seconds from
  the commit to the last one received;
- lag: with one worker, events are committed one at a time at RATE a second for SECONDS; the
  lag of each is the time from its commit to its arrival at the receiver (same host, same
  clock), reported as p50 and p99.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from chatconnect import migrate
from run import BenchError, bench_database, cpu_seconds, stop

ROOT = Path(__file__).resolve().parent.parent
WAIT_LIMIT = 300  # seconds


class Receiver:
    """Records the arrival time of every event id; answers 204 at once."""

    def __init__(self):
        self.arrivals: dict[int, float] = {}
        self.count = 0
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                arrived = time.time()
                body = self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(204)
                self.end_headers()
                event_id = json.loads(body)["id"]
                with receiver.changed:
                    receiver.arrivals.setdefault(event_id, arrived)
                    receiver.count += 1
                    receiver.changed.notify_all()

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 1024  # the listen backlog: every worker connects at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, event_ids):
        deadline = time.monotonic() + WAIT_LIMIT
        with self.changed:
            while not all(e in self.arrivals for e in event_ids):
                if not self.changed.wait(max(deadline - time.monotonic(), 0)):
                    raise BenchError(f"only {len(self.arrivals)} events arrived")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def seed(database_url, receiver, endpoints) -> list[str]:
    """The ids of `endpoints` clients, each with a webhook to the receiver."""
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO users (id, username, password) VALUES ('bench', 'bench', 'x')")
        client_ids = []
        for n in range(endpoints):
            client_id = conn.execute(
                "INSERT INTO clients (user_id, name, public_api_key) VALUES ('bench', %s, %s) "
                "RETURNING id", (f"shop {n}", f"pk_bench_{n}")).fetchone()[0]
            conn.execute("INSERT INTO webhooks (client_id, url, secret) VALUES (%s, %s, 'whsec_b')",
                         (client_id, f"http://127.0.0.1:{receiver.port}/hook/{n}"))
            client_ids.append(client_id)
    return client_ids


def store_events(conn, client_ids, count, first=0) -> list[int]:
    rows = conn.execute(
        "INSERT INTO events (client_id, type, data) "
        "SELECT (%(clients)s::varchar[])[1 + n %% cardinality(%(clients)s::varchar[])], "
        "'message.created', %(data)s FROM generate_series(%(first)s::int, %(last)s::int) AS n RETURNING id",
        {"clients": client_ids, "data": Jsonb({"body": "hello"}), "first": first,
         "last": first + count - 1}).fetchall()
    return [row[0] for row in rows]


def start_workers(database_url, count, concurrency, log):
    env = {**os.environ, "DATABASE_URL": database_url, "CHATCONNECT_ENV": "development",
           "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true", "LOG_LEVEL": "WARNING"}
    script = Path(sys.executable).parent / "chatconnect"
    processes = [subprocess.Popen([script, "worker", "--concurrency", str(concurrency)],
                                  env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
                 for _ in range(count)]
    # Ready when each has its listening session.
    deadline = time.monotonic() + 60
    with psycopg.connect(database_url, autocommit=True) as conn:
        while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%%' "
                           "AND datname = current_database()").fetchone()[0] < count:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise BenchError("the workers did not start")
            time.sleep(0.1)
    return processes


def throughput(database_url, receiver, client_ids, workers, events, concurrency,
               log) -> tuple[float, float]:
    """(deliveries a second, CPU milliseconds of the workers per delivery)."""
    processes = start_workers(database_url, workers, concurrency, log)
    try:
        cpu_before = sum(cpu_seconds(p.pid) for p in processes)
        with psycopg.connect(database_url) as conn:
            ids = store_events(conn, client_ids, events)
            conn.commit()
            committed = time.time()
        receiver.wait_for(ids)
        cpu = sum(cpu_seconds(p.pid) for p in processes) - cpu_before
        last = max(receiver.arrivals[e] for e in ids)
        return events / (last - committed), cpu * 1000 / events
    finally:
        for process in processes:
            stop(process)


def lag(database_url, receiver, client_ids, rate, seconds, concurrency, log) -> dict:
    processes = start_workers(database_url, 1, concurrency, log)
    try:
        commits = {}
        with psycopg.connect(database_url) as conn:
            start = time.monotonic()
            for n in range(rate * seconds):
                time.sleep(max(0.0, start + n / rate - time.monotonic()))
                [event_id] = store_events(conn, client_ids[n % len(client_ids):][:1], 1, n)
                conn.commit()
                commits[event_id] = time.time()
        receiver.wait_for(list(commits))
        lags = sorted((receiver.arrivals[e] - t) * 1000 for e, t in commits.items())
        return {"events": len(lags), "p50_ms": statistics.median(lags),
                "p99_ms": lags[min(len(lags) - 1, int(len(lags) * 0.99))]}
    finally:
        for process in processes:
            stop(process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3000, help="events per throughput run")
    parser.add_argument("--endpoints", type=int, default=50, help="webhooks (one per client)")
    parser.add_argument("--concurrency", type=int, default=16, help="attempts per worker")
    parser.add_argument("--rate", type=int, default=20, help="events a second in the lag run")
    parser.add_argument("--seconds", type=int, default=15, help="length of the lag run")
    args = parser.parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="chatconnect-bench-webhooks-"))
    receiver = Receiver()
    try:
        with bench_database(work_dir) as (database_url, _), \
                open(work_dir / "workers.log", "wb") as log:
            migrate.upgrade(database_url)
            client_ids = seed(database_url, receiver, args.endpoints)
            for workers in (1, 4):
                rate, cpu_ms = throughput(database_url, receiver, client_ids, workers,
                                          args.events, args.concurrency, log)
                print(f"{workers} worker(s): {rate:,.0f} deliveries/s, {cpu_ms:.2f} ms of "
                      f"worker CPU per delivery ({args.events} events, {args.endpoints} "
                      f"endpoints, {os.cpu_count()} CPUs)", flush=True)
            measured = lag(database_url, receiver, client_ids, args.rate, args.seconds,
                           args.concurrency, log)
            print(f"lag from commit to delivery, 1 worker, {args.rate} events/s for "
                  f"{args.seconds} s: p50 {measured['p50_ms']:.1f} ms, "
                  f"p99 {measured['p99_ms']:.1f} ms")
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        receiver.close()
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
