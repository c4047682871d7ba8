"""`make bench-realtime`: thousands of visitors waiting live, on the shipped gunicorn config.

It parks N visitor long-polls (each re-polls as soon as it is answered, as the widget does)
plus the team's event streams, and measures, in the same run: the widget route's latency
with none waiting and with all of them waiting, the delivery latency of agent replies to their
waiting visitors, the resident memory of each worker, and the widget route's latency during a
burst of 50 sign-ins. Exits with 1 when a target is missed.
"""

import argparse
import http.client
import json
import os
import secrets
import selectors
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

import seed
from run import (GUNICORN_CONFIG, OWNER_PASSWORD, BenchError, bench_database, cpu_seconds,
                 gunicorn, seed_database, sign_in, wrk)
from chatconnect import migrate
from chatconnect.tokens import hash_secret

WIDGET_CLIENTS = 1000
TEAM_STREAMS = 20
SIGN_IN_BURST = 50
SAMPLED_REPLIES = 200
OPEN_BATCH = 250  # connections opened at once while parking, within the listen backlog
TARGETS = {"errors": 0, "delivery_p99_ms": 100, "widget_p99_ratio": 2.0}


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="chatconnect-bench-rt-") as tmp:
        work_dir = Path(tmp)
        with bench_database(work_dir) as (database_url, _):
            report = run(args, database_url, work_dir)
    print_report(report)
    return 0 if report["targets_met"] else 1


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waiters", type=int, default=5000,
                        help="visitor long-polls parked at once (default 5,000)")
    parser.add_argument("--duration", type=int, default=10,
                        help="seconds of each widget measurement (default 10)")
    parser.add_argument("--connections", type=int, default=8,
                        help="wrk connections for the widget route (default 8)")
    return parser.parse_args()


def run(args, database_url: str, work_dir: Path) -> dict:
    migrate.upgrade(database_url)
    seed_database(database_url, WIDGET_CLIENTS, 10)
    with psycopg.connect(database_url) as conn:
        keys = seed.sample_keys(conn, WIDGET_CLIENTS, WIDGET_CLIENTS)
        owner, = seed.owner_names(conn, 1)
        client_id, = conn.execute(
            "SELECT c.id FROM clients c JOIN users u ON u.id = c.user_id "
            "WHERE u.username = %s AND c.status = 'active' LIMIT 1", (owner,)).fetchone()
    conversations = start_conversations(database_url, client_id, args.waiters)
    widgets_file = work_dir / "widgets.txt"
    widgets_file.write_text("".join(f"/api/public/widgets/{key}\tOrigin: {origin}\n"
                                    for key, origin in keys))
    env = {**os.environ, "DATABASE_URL": database_url, "CHATCONNECT_ENV": "production",
           "SECRET_KEY": secrets.token_urlsafe(32),
           "LOGIN_LIMIT_PER_USERNAME": "1000/60", "LOGIN_LIMIT_PER_IP": "1000/60",
           # Every waiter comes from 127.0.0.1 here; on the internet each has its own address.
           "WAITS_PER_IP": str(args.waiters + TEAM_STREAMS + 100),
           # The team's long-polls share one session, which an event stream would replace.
           "WAITS_PER_SESSION": str(TEAM_STREAMS)}
    report = {"waiters": args.waiters, "team_waiters": TEAM_STREAMS}
    with gunicorn(GUNICORN_CONFIG.absolute(), "wsgi:app", env, work_dir / "app.log",
                  "/readyz") as app:
        cookie = sign_in(app, owner)
        print("widget route, nobody waiting", flush=True)
        wrk(app, widgets_file, 1, args.connections, 2)
        report["widget_idle"] = widget_figures(wrk(app, widgets_file, 1, args.connections,
                                                   args.duration))
        # The team's event streams (Server-Sent Events) of the owner's whole feed.
        team = [(f"team:{number}", "/api/events", {"Cookie": cookie, "Accept": "text/event-stream"})
                for number in range(TEAM_STREAMS)]
        visitors = [(f"visitor:{conversation_id}", f"/api/public/conversations/{conversation_id}/messages"
                                      f"?after={first_id}&wait=25", {"X-Visitor-Token": token})
                    for conversation_id, token, first_id in conversations]
        with Waiters(app.port, visitors, team) as waiters:
            print(f"parking {args.waiters:,} visitor long-polls and {TEAM_STREAMS} team event "
                  "streams", flush=True)
            waiters.park()
            wait_until_quiet(app)
            report["held"] = waiters.open_count()
            print(f"widget route, {report['held']:,} waiting", flush=True)
            report["widget_waiting"] = widget_figures(wrk(app, widgets_file, 1,
                                                          args.connections, args.duration))
            print(f"replying to {SAMPLED_REPLIES} waiting visitors", flush=True)
            report["delivery"] = deliver_replies(app, waiters, client_id, cookie,
                                                 conversations)
            report["rss_mib_per_worker"] = sorted(round(rss, 1) for rss in worker_rss(app))
            report["errors"] = waiters.errors
        print(f"widget route during a burst of {SIGN_IN_BURST} sign-ins", flush=True)
        report["widget_sign_in_burst"] = widget_during_sign_ins(app, widgets_file, owner,
                                                                args.connections)
    return judge(report)


def start_conversations(database_url: str, client_id: str, count: int):
    """(conversation id, visitor token, first message id) of `count` new conversations."""
    tokens = [secrets.token_urlsafe(32) for _ in range(count)]
    with psycopg.connect(database_url) as conn:
        # One anonymous contact per visitor, holding the visitor's token.
        contact_ids = [row[0] for row in conn.execute(
            "INSERT INTO contacts (client_id) SELECT %s FROM generate_series(1, %s) "
            "RETURNING id", (client_id, count))]
        conn.execute(
            "INSERT INTO visitor_tokens (token_hash, client_id, contact_id) "
            "SELECT unnest(%s::text[]), %s, unnest(%s::uuid[])",
            ([hash_secret(token) for token in tokens], client_id, contact_ids))
        ids = conn.execute(
            "INSERT INTO conversations (client_id, contact_id) "
            "SELECT %s, unnest(%s::uuid[]) RETURNING id", (client_id, contact_ids)).fetchall()
        first_ids = conn.execute(
            "INSERT INTO messages (conversation_id, sender, body) "
            "SELECT unnest(%s::uuid[]), 'visitor', 'hello' RETURNING conversation_id, id",
            ([row[0] for row in ids],)).fetchall()
    first_by_conversation = {str(c): m for c, m in first_ids}
    return [(str(row[0]), token, first_by_conversation[str(row[0])])
            for row, token in zip(ids, tokens)]


class Waiters:
    """Long-polls held open on plain sockets, served by one thread with epoll: each is sent
    again as soon as it is answered, as the widget does. Records when replies arrive."""

    def __init__(self, port: int, visitors, team):
        self.port = port
        self.requests = {name: (path, headers) for name, path, headers in visitors + team}
        self.selector = selectors.DefaultSelector()
        self.buffers: dict[socket.socket, tuple[str, bytearray]] = {}  # socket: (name, read)
        self.arrivals: dict[str, float] = {}
        self.errors = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()
        for sock in list(self.buffers):
            sock.close()

    def park(self) -> None:
        names = list(self.requests)
        for start in range(0, len(names), OPEN_BATCH):
            for name in names[start:start + OPEN_BATCH]:
                self._send(name)
            time.sleep(0.05)

    def open_count(self) -> int:
        with self.lock:
            return len(self.buffers)

    def _send(self, name: str) -> None:
        path, headers = self.requests[name]
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), 10)
            lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{lines}"
                         "Connection: close\r\n\r\n".encode())
            sock.setblocking(False)
        except OSError:
            with self.lock:
                self.errors += 1
            return
        with self.lock:
            self.buffers[sock] = (name, bytearray())
            self.selector.register(sock, selectors.EVENT_READ)

    def _serve(self) -> None:
        while not self.stopping.is_set():
            with self.lock:
                empty = not self.buffers
            if empty:
                time.sleep(0.01)
                continue
            for key, _ in self.selector.select(timeout=0.1):
                self._read(key.fileobj)

    def _read(self, sock: socket.socket) -> None:
        name, buffer = self.buffers[sock]
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = None
        if chunk:
            buffer += chunk
            return
        with self.lock:
            self.selector.unregister(sock)
            del self.buffers[sock]
        sock.close()
        arrived = time.monotonic()
        head, _, body = bytes(buffer).partition(b"\r\n\r\n")
        if chunk is None or not head.startswith(b"HTTP/1.1 200"):
            with self.lock:
                self.errors += 1
        elif name.startswith("team:"):
            pass  # a stream the server ended after EVENT_STREAM_SECONDS: open it again
        elif json.loads(body)["items"]:
            self.arrivals[name] = arrived
            return  # answered: this visitor has its reply and polls no more
        if not self.stopping.is_set():
            self._send(name)


def deliver_replies(app, waiters: Waiters, client_id, cookie, conversations) -> dict:
    """Reply to a sample of waiting visitors, one after another; the latency of each is from
    just before its POST is sent to the moment its visitor's long-poll answer arrives."""
    sample = conversations[::max(1, len(conversations) // SAMPLED_REPLIES)][:SAMPLED_REPLIES]
    conn = app.connection()
    sent = {}
    for conversation_id, _, _ in sample:
        sent[f"visitor:{conversation_id}"] = time.monotonic()
        conn.request("POST", f"/api/clients/{client_id}/conversations/{conversation_id}/messages",
                     body=json.dumps({"body": "Your order ships tomorrow."}),
                     headers={"Content-Type": "application/json", "Cookie": cookie})
        response = conn.getresponse()
        response.read()
        if response.status != 201:
            raise BenchError(f"an agent reply answered {response.status}")
        time.sleep(0.02)
    deadline = time.monotonic() + 30
    while len(waiters.arrivals.keys() & sent.keys()) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.05)
    latencies = sorted((waiters.arrivals[c] - sent[c]) * 1000 for c in sent
                       if c in waiters.arrivals)
    return {"sent": len(sent), "delivered": len(latencies),
            "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99)}


def wait_until_quiet(app, busy_share=0.2, seconds=120) -> None:
    """Until every parked request has been accepted and has had its first look: a probe sent
    after them is answered (the listen queue is first in, first out), and the workers then use
    less than `busy_share` of a core."""
    deadline = time.monotonic() + seconds
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=seconds)
    conn.request("GET", "/healthz")
    conn.getresponse().read()
    conn.close()
    while time.monotonic() < deadline:
        before = cpu_seconds(app.process.pid)
        time.sleep(0.5)
        if cpu_seconds(app.process.pid) - before < busy_share * 0.5:
            return
    raise BenchError(f"the server was still busy {seconds} s after the long-polls were parked")


def widget_during_sign_ins(app, widgets_file: Path, owner: str, connections: int) -> dict:
    statuses = []

    def sign_ins():
        time.sleep(0.5)
        with ThreadPoolExecutor(SIGN_IN_BURST) as pool:
            statuses.extend(pool.map(lambda _: sign_in_status(app, owner), range(SIGN_IN_BURST)))

    burst = threading.Thread(target=sign_ins)
    burst.start()
    figures = widget_figures(wrk(app, widgets_file, 1, connections, 5))
    burst.join()
    figures["sign_ins"] = {str(status): statuses.count(status) for status in set(statuses)}
    return figures


def sign_in_status(app, username: str) -> int:
    """The sign-in's status, or 0 when it got no answer."""
    conn = app.connection()
    try:
        conn.request("POST", "/api/auth/login",
                     body=json.dumps({"username": username, "password": OWNER_PASSWORD}),
                     headers={"Content-Type": "application/json"})
        return conn.getresponse().status
    except OSError:
        return 0
    finally:
        conn.close()


def widget_figures(figures: dict) -> dict:
    bad = sum(n for code, n in figures["statuses"].items() if int(code) != 200)
    return {"requests_per_second": figures["requests"] / (figures["duration_us"] / 1e6),
            "p50_ms": figures["p50_us"] / 1000, "p99_ms": figures["p99_us"] / 1000,
            "bad_responses": bad + sum(figures["socket_errors"].values())}


def worker_rss(app) -> list[float]:
    sizes = []
    for pid in app.worker_pids():
        status = Path(f"/proc/{pid}/status").read_text()
        kib = next(int(line.split()[1]) for line in status.splitlines()
                   if line.startswith("VmRSS:"))
        sizes.append(kib / 1024)
    return sizes


def percentile(values: list[float], p: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def judge(report: dict) -> dict:
    delivery = report["delivery"]
    ratio = report["widget_waiting"]["p99_ms"] / report["widget_idle"]["p99_ms"]
    report["widget_p99_ratio"] = ratio
    report["targets_met"] = (
        report["errors"] == TARGETS["errors"]
        and report["held"] == report["waiters"] + report["team_waiters"]
        and delivery["delivered"] == delivery["sent"]
        and delivery["p99_ms"] is not None and delivery["p99_ms"] < TARGETS["delivery_p99_ms"]
        and ratio <= TARGETS["widget_p99_ratio"]
        and report["widget_idle"]["bad_responses"] == report["widget_waiting"]["bad_responses"] == 0)
    return report


def print_report(report: dict) -> None:
    idle, waiting, burst = (report["widget_idle"], report["widget_waiting"],
                            report["widget_sign_in_burst"])
    delivery = report["delivery"]
    print()
    print(f"{report['waiters']:,} visitor long-polls + {report['team_waiters']} team event streams "
          f"on deploy/gunicorn.conf.py; {report['held']:,} held, {report['errors']} errors")
    print()
    print("| widget route | req/s | p50 ms | p99 ms | bad responses |")
    print("|---|---:|---:|---:|---:|")
    for title, row in (("nobody waiting", idle), (f"{report['held']:,} waiting", waiting),
                       (f"burst of {SIGN_IN_BURST} sign-ins (statuses {burst['sign_ins']})", burst)):
        print(f"| {title} | {row['requests_per_second']:,.0f} | {row['p50_ms']:.2f} | "
              f"{row['p99_ms']:.2f} | {row['bad_responses']} |")
    print()
    print(f"agent replies delivered to their waiting visitors: {delivery['delivered']} of "
          f"{delivery['sent']}, p50 {fmt(delivery['p50_ms'])} ms, p99 {fmt(delivery['p99_ms'])} ms")
    print(f"resident memory per worker while they wait: "
          f"{', '.join(f'{m} MiB' for m in report['rss_mib_per_worker'])}")
    print(f"widget p99 waiting / idle: {report['widget_p99_ratio']:.2f} "
          f"(target ≤ {TARGETS['widget_p99_ratio']})")
    print("targets " + ("met" if report["targets_met"] else "MISSED") +
          f": zero errors, every reply delivered with p99 < {TARGETS['delivery_p99_ms']} ms, "
          f"widget p99 within {TARGETS['widget_p99_ratio']}× of idle")


def fmt(value) -> str:
    return "-" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
