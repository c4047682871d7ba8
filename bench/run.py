"""`make bench`: load ChatConnect's hot paths with wrk and compare them with a ceiling.

A throwaway PostgreSQL (or a new database on BENCH_DATABASE_URL's server) is seeded; the app and
then a bare Flask app (bench/ceiling.py) are served by gunicorn with the shipped
deploy/gunicorn.conf.py on 127.0.0.1, and wrk loads each case with the same threads and
connections. The bare app also answers (e), the client page's statement with nothing of
ChatConnect around it. The table is printed and the figures are written to
bench/results/<time>.json.
"""

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

import seed
from chatconnect import migrate, passwords
from chatconnect.localdb import LocalCluster, LocalClusterError

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
GUNICORN_CONFIG = ROOT / "deploy" / "gunicorn.conf.py"
LUA_SCRIPT = BENCH_DIR / "rotate.lua"
OWNER_PASSWORD = "bench owner password"
SIGNED_IN_OWNERS = 8
ETAG_KEYS = 2000
MAX_KEYS = 100_000
BASELINE_CLIENTS = 10_000
READY_TIMEOUT = 60
TARGETS = {"a": 0.8, "c": 0.5}
# A busy PostgreSQL 15 backend reports its transaction counts at most once a second, and an idle
# one holds back what it counted since for up to 10 s (PGSTAT_IDLE_INTERVAL).
STATS_SETTLE_SECONDS = 11
# The widget cases are measured once the workers' caches are warm (see prime()).
PRIME_SECONDS = 300
PRIME_CHUNK_SECONDS = 8
PRIMED_QUERIES_PER_REQUEST = 0.01
P50_GROWTH_LIMIT = 1.2


class BenchError(Exception):
    pass


@dataclass
class Case:
    name: str
    title: str
    requests_file: str
    expected_statuses: tuple
    server: str  # "app" or "ceiling"


CASES = [
    Case("a", "widget, allowed Origin", "widgets.txt", (200,), "app"),
    Case("b", "widget, If-None-Match (304)", "widgets_etag.txt", (304,), "app"),
    Case("c", "GET /api/clients, signed in", "clients.txt", (200,), "app"),
    Case("d", "ceiling: bare Flask, same JSON", "widgets.txt", (200,), "ceiling"),
    Case("e", "bare Flask running (c)'s statement", "pages.txt", (200,), "ceiling"),
]
# The order of the cases in a round: each ratio compares cases measured next to each other, so
# that a change in the machine's speed between them moves the ratio as little as possible.
MEASURING_ORDER = "adbce"


def main() -> int:
    args = parse_args()
    if not shutil.which("wrk"):
        print("error: wrk is not installed. On Debian or Ubuntu: apt-get install wrk", file=sys.stderr)
        return 2
    if not args.gunicorn_config.is_file():
        print(f"error: {args.gunicorn_config} is missing", file=sys.stderr)
        return 2
    workers, threads = gunicorn_capacity(args.gunicorn_config)
    # Four requests in flight per worker keep every worker busy while one waits on PostgreSQL,
    # without the queueing that more connections would add to every latency.
    connections = args.connections or min(workers * threads, 4 * workers)
    if connections > workers * threads:
        print(f"error: --connections {connections} is more than gunicorn's "
              f"{workers} workers × {threads} requests at once", file=sys.stderr)
        return 2
    wrk_threads = min(args.threads, connections)
    work_dir = Path(tempfile.mkdtemp(prefix="chatconnect-bench-"))
    try:
        with bench_database(work_dir) as (database_url, database_pid):
            report = run(args, database_url, database_pid, work_dir, workers, threads,
                         wrk_threads, connections)
    except (BenchError, LocalClusterError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    print_report(report)
    save_report(report, report["timestamp"])
    return 1 if report["errors"] else 0


def save_report(report: dict, name: str) -> None:
    """Every figure of a run, in bench/results/<name>.json."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nfigures written to {path.relative_to(ROOT)}")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=BASELINE_CLIENTS,
                        help="clients to seed (default %(default)s; 1000000 for the large run)")
    parser.add_argument("--owners", type=int,
                        help="owners the clients are spread over (default: one per 100 clients)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per case (default 10)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="seconds of unmeasured load before each case (default 2)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every case this many times, interleaved, and report the "
                             "round with the median req/s (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--connections", type=int,
                        help="wrk connections, at most gunicorn workers × requests at once "
                             "(default: 4 per worker)")
    parser.add_argument("--gunicorn-config", type=Path, default=GUNICORN_CONFIG,
                        help="gunicorn settings of both servers (default: the shipped "
                             "deploy/gunicorn.conf.py)")
    parser.add_argument("--profile", nargs="?", const="wall", choices=("wall", "gil"),
                        help="record each measured case with py-spy into bench/results/: "
                             "'wall' (the default) samples busy threads, waits on PostgreSQL "
                             "included; 'gil' only threads running Python. It slows the "
                             "server: the figures of such a run are not comparable")
    args = parser.parse_args()
    if min(args.clients, args.duration, args.rounds, args.threads) < 1 or args.warmup < 0:
        parser.error("--clients, --duration, --rounds and --threads must be positive")
    args.owners = args.owners or max(1, args.clients // 100)
    if not 1 <= args.owners <= args.clients:
        parser.error("--owners must be between 1 and --clients")
    return args


def gunicorn_capacity(config: Path) -> tuple[int, int]:
    """Workers, and requests each serves at once, that the config asks for in this environment.

    Read in another process: the config monkey-patches the one that loads it."""
    script = ("import runpy, sys; c = runpy.run_path(sys.argv[1]); "
              "threads = c.get('worker_connections') if c.get('worker_class') == 'gevent' "
              "else c.get('threads', 1); print(c.get('workers', 1), threads)")
    output = subprocess.run([sys.executable, "-c", script, str(config)], check=True,
                            capture_output=True, text=True).stdout.split()
    return int(output[0]), int(output[1])


@contextmanager
def bench_database(work_dir: Path):
    """(URL, postmaster PID or None) of a new database: on BENCH_DATABASE_URL's server (dropped
    afterwards; its CPU time is not counted) or in a throwaway cluster under `work_dir`."""
    server_url = os.environ.get("BENCH_DATABASE_URL")
    dbname = f"chatconnect_bench_{uuid.uuid4().hex[:8]}"
    if server_url:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        try:
            yield urlunsplit(urlsplit(server_url)._replace(path="/" + dbname)), None
        finally:
            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        return
    cluster = LocalCluster(work_dir / "postgres", throwaway=True)
    try:
        print("starting a throwaway PostgreSQL", flush=True)
        cluster.start()
        url = cluster.create_database(dbname)
        postmaster_pid = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
        yield url, postmaster_pid
    finally:
        cluster.destroy()


def run(args, database_url, database_pid, work_dir, workers, threads, wrk_threads,
        connections) -> dict:
    timestamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    migrate.upgrade(database_url)
    seed_seconds = seed_database(database_url, args.clients, args.owners)
    with psycopg.connect(database_url) as conn:
        keys = seed.sample_keys(conn, args.clients, MAX_KEYS)
        owners = seed.owner_names(conn, SIGNED_IN_OWNERS)
        owner_ids = [row[0] for row in conn.execute(
            "SELECT id FROM users WHERE username = ANY(%s)", [owners])]
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CHATCONNECT_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(32),
        # Signing in the owners whose cookies case (c) uses must not meet the login throttle.
        "LOGIN_LIMIT_PER_USERNAME": "1000/60",
        "LOGIN_LIMIT_PER_IP": "1000/60",
    }
    print(f"wrk: {wrk_threads} thread(s), {connections} connections; gunicorn: {workers} "
          f"workers × {threads} requests at once; {args.duration} s per case after "
          f"{args.warmup} s of warm-up", flush=True)
    servers = {}
    config = args.gunicorn_config.absolute()
    with gunicorn(config, "wsgi:app", env, work_dir / "app.log", "/readyz") as servers["app"], \
            gunicorn(config, "ceiling:app", env, work_dir / "ceiling.log", "/",
                     ["--pythonpath", str(BENCH_DIR)]) as servers["ceiling"]:
        write_requests(servers["app"], work_dir, keys, owners, owner_ids)
        print("(a) widget: priming the workers' caches", flush=True)
        prime(servers["app"], work_dir / "widgets.txt", database_url, wrk_threads, connections)
        rounds = {case.name: [] for case in CASES}
        measuring_order = sorted(CASES, key=lambda case: MEASURING_ORDER.index(case.name))
        # Rounds interleave the cases, so that a change in the machine's other load while the
        # benchmark runs falls on every case alike.
        for number in range(1, args.rounds + 1):
            if args.rounds > 1:
                print(f"round {number} of {args.rounds}", flush=True)
            for case in measuring_order:
                rounds[case.name].append(measure(case, servers[case.server], database_url,
                                                 database_pid,
                                                 work_dir, args, wrk_threads, connections,
                                                 timestamp, number))
    results = {name: median_round(runs) for name, runs in rounds.items()}
    return build_report(args, timestamp, seed_seconds, workers, threads, wrk_threads,
                        connections, results)


def seed_database(database_url: str, clients: int, owners: int) -> float:
    started = time.monotonic()
    print(f"seeding {clients:,} clients over {owners:,} owners", flush=True)
    password_hash = passwords.hash_password(OWNER_PASSWORD)
    with psycopg.connect(database_url) as conn:
        seed.seed(conn, clients, owners, password_hash)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    seconds = time.monotonic() - started
    print(f"seeded in {seconds:.1f} s", flush=True)
    return seconds


# --- the servers -------------------------------------------------------------------------------

class Server:
    def __init__(self, process: subprocess.Popen, port: int, log_path: Path):
        self.process = process
        self.port = port
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{port}"

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def worker_pids(self) -> list[int]:
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return pids

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextmanager
def gunicorn(config: Path, app_spec: str, env: dict, log_path: Path, ready_path: str,
             extra_args=()):
    """gunicorn with `config` on a free loopback port, stopped on exit."""
    port = free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(config),
             "--bind", f"127.0.0.1:{port}", *extra_args, app_spec],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    server = Server(process, port, log_path)
    try:
        wait_ready(server, ready_path)
        yield server
    finally:
        stop(process)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(server: Server, path: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"gunicorn exited with {server.process.returncode}:\n"
                             + server.log_tail())
        try:
            conn = server.connection()
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"gunicorn did not answer {path} within {READY_TIMEOUT} s:\n"
                     + server.log_tail())


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- what wrk sends ----------------------------------------------------------------------------

def write_requests(app: Server, work_dir: Path, keys, owners, owner_ids) -> None:
    """The request files of the cases: keys with their Origin, current ETags, cookies, and
    the signed-in owners' ids for (e)."""
    if not keys:
        raise BenchError("no active client to load")
    lines = [f"/api/public/widgets/{key}\tOrigin: {origin}" for key, origin in keys]
    (work_dir / "widgets.txt").write_text("\n".join(lines) + "\n")
    print(f"fetching the ETags of {min(len(keys), ETAG_KEYS):,} widgets", flush=True)
    etags = fetch_etags(app, keys[:ETAG_KEYS])
    lines = [f"/api/public/widgets/{key}\tOrigin: {origin}\tIf-None-Match: {etag}"
             for (key, origin), etag in zip(keys, etags)]
    (work_dir / "widgets_etag.txt").write_text("\n".join(lines) + "\n")
    print(f"signing in {len(owners)} owners", flush=True)
    cookies = [sign_in(app, username) for username in owners]
    lines = [f"/api/clients\tCookie: {cookie}" for cookie in cookies]
    (work_dir / "clients.txt").write_text("\n".join(lines) + "\n")
    (work_dir / "pages.txt").write_text("".join(f"/page/{owner_id}\n" for owner_id in owner_ids))


def fetch_etags(app: Server, keys) -> list[str]:
    local = threading.local()

    def fetch(key_origin):
        key, origin = key_origin
        if not hasattr(local, "conn"):
            local.conn = app.connection()
        local.conn.request("GET", f"/api/public/widgets/{key}", headers={"Origin": origin})
        response = local.conn.getresponse()
        body = response.read()
        if response.status != 200 or not response.getheader("ETag"):
            raise BenchError(f"GET /api/public/widgets/{key} with Origin {origin} answered "
                             f"{response.status} (ETag {response.getheader('ETag')!r}): "
                             f"{body[:300]!r}")
        return response.getheader("ETag")

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(fetch, keys))


def sign_in(app: Server, username: str) -> str:
    """The Cookie header of a fresh session of `username`."""
    conn = app.connection()
    conn.request("POST", "/api/auth/login",
                 body=json.dumps({"username": username, "password": OWNER_PASSWORD}),
                 headers={"Content-Type": "application/json", "User-Agent": "chatconnect-bench"})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    cookies = [c.split(";", 1)[0] for c in response.msg.get_all("Set-Cookie") or []]
    if response.status != 200 or not cookies:
        raise BenchError(f"signing in {username} answered {response.status}: {body[:300]!r}")
    return "; ".join(cookies)


# --- measuring ---------------------------------------------------------------------------------

class PeakMemory:
    """Samples VmHWM (peak resident memory) of the server's workers while a case runs.

    The peak is reset first where Linux allows it, so that it is the peak of this case, not
    of the sign-ins before it (scrypt takes 32 MiB)."""

    def __init__(self, server: Server):
        self.server = server
        self.peaks_kib: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        for pid in self.server.worker_pids():
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                pass
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self):
        while not self._stop.wait(0.25):
            self._sample()

    def _sample(self):
        for pid in self.server.worker_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
            if match:
                self.peaks_kib[pid] = max(self.peaks_kib.get(pid, 0), int(match[1]))


def measure(case: Case, server: Server, database_url: str, database_pid: int | None,
            work_dir: Path, args,
            wrk_threads: int, connections: int, timestamp: str, round_number: int) -> dict:
    requests_file = work_dir / case.requests_file
    print(f"({case.name}) {case.title}: warming up", flush=True)
    if args.warmup:
        wrk(server, requests_file, wrk_threads, connections, args.warmup)
    profiler = start_profiler(server, args.duration, f"{timestamp}-{case.name}-{round_number}",
                              args.profile) if args.profile else None
    transactions_before = settled_transactions(database_url)
    cpu_before = cpu_seconds(server.process.pid), cpu_seconds(database_pid)
    with PeakMemory(server) as memory:
        figures = wrk(server, requests_file, wrk_threads, connections, args.duration)
    app_cpu = cpu_seconds(server.process.pid) - cpu_before[0]
    database_cpu = cpu_seconds(database_pid) - cpu_before[1] if database_pid else None
    if profiler:
        profiler.wait()
    transactions = settled_transactions(database_url) - transactions_before
    statuses = {int(code): n for code, n in figures["statuses"].items()}
    bad = sum(n for code, n in statuses.items() if code not in case.expected_statuses)
    socket_errors = sum(figures["socket_errors"].values())
    result = {
        "case": case.name,
        "round": round_number,
        "title": case.title,
        "expected_statuses": list(case.expected_statuses),
        "requests": figures["requests"],
        "requests_per_second": figures["requests"] / (figures["duration_us"] / 1e6),
        "p50_ms": figures["p50_us"] / 1000,
        "p90_ms": figures["p90_us"] / 1000,
        "p99_ms": figures["p99_us"] / 1000,
        "max_ms": figures["max_us"] / 1000,
        "statuses": statuses,
        "bad_responses": bad,
        "socket_errors": figures["socket_errors"],
        "cpu_us_per_request": {
            "gunicorn": app_cpu / figures["requests"] * 1e6,
            "postgresql": database_cpu / figures["requests"] * 1e6 if database_pid else None},
        # Every statement the app sends outside a transaction is one; a transaction is one too.
        "database_transactions_per_request": transactions / figures["requests"],
        "peak_rss_mib_per_worker": sorted(round(kib / 1024, 1)
                                          for kib in memory.peaks_kib.values()),
        "worker_pids_seen": len(memory.peaks_kib),
    }
    print(f"    {result['requests_per_second']:,.0f} req/s, p50 {result['p50_ms']:.2f} ms, "
          f"p99 {result['p99_ms']:.2f} ms, {bad} bad responses, {socket_errors} socket errors",
          flush=True)
    return result


def prime(server: Server, requests_file: Path, database_url: str, threads: int,
          connections: int) -> None:
    """Load the widget requests until the workers' caches hold every key, as they do after a
    few minutes of real traffic: until a run of a few seconds sends (almost) no query to
    PostgreSQL, for at most PRIME_SECONDS."""
    lines = sum(1 for _ in open(requests_file))
    deadline = time.monotonic() + PRIME_SECONDS
    start = 0
    before = settled_transactions(database_url)
    while time.monotonic() < deadline:
        figures = wrk(server, requests_file, threads, connections, PRIME_CHUNK_SECONDS, start)
        start = (start + figures["requests"]) % lines
        after = settled_transactions(database_url)
        per_request = (after - before) / max(figures["requests"], 1)
        before = after
        print(f"    priming the caches: {per_request:.3f} queries per request", flush=True)
        if per_request < PRIMED_QUERIES_PER_REQUEST:
            return


def transactions_so_far(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        [count] = conn.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database"
                               " WHERE datname = current_database()").fetchone()
    return count


def settled_transactions(database_url: str) -> int:
    """Transactions committed or rolled back in the benchmark's database so far, once the
    backends had time to report them (the servers' only; this connection's are left out)."""
    time.sleep(STATS_SETTLE_SECONDS)
    return transactions_so_far(database_url)


def cpu_seconds(root_pid: int | None) -> float:
    """CPU time of a process and its children so far, including children that have exited.

    Unlike req/s, CPU time per request hardly depends on what else the machine is doing."""
    if root_pid is None:
        return 0.0
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == root_pid:
            ticks += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        elif ppid == root_pid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def wrk(server: Server, requests_file: Path, threads: int, connections: int,
        seconds: int, once: bool = False, start: int = 0) -> dict:
    """wrk's figures for `requests_file` (see rotate.lua); with `once`, no line is sent twice
    while the file lasts; `start` moves where the threads begin."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", str(LUA_SCRIPT),
               server.url]
    env = {**os.environ, "BENCH_REQUESTS": str(requests_file), "BENCH_START": str(start)}
    if once:
        env["BENCH_STRIDE"] = str(threads)
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60,
                            env=env)
    output = result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("BENCH_JSON ")]
    if result.returncode != 0 or not lines:
        raise BenchError(f"wrk failed ({result.returncode}):\n{output}")
    figures = json.loads(lines[-1].removeprefix("BENCH_JSON "))
    # wrk prints this line only when something went wrong; count it even if the script did not.
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                      output)
    if match:
        for name, value in zip(("connect", "read", "write", "timeout"), match.groups()):
            figures["socket_errors"][name] = max(figures["socket_errors"][name], int(value))
    return figures


def start_profiler(server: Server, seconds: int, name: str, mode: str):
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if not py_spy:
        raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
    RESULTS_DIR.mkdir(exist_ok=True)
    output = RESULTS_DIR / f"{name}.txt"
    print(f"    profiling into {output.relative_to(ROOT)}", flush=True)
    return subprocess.Popen([py_spy, "record", "--pid", str(server.process.pid), "--subprocesses",
                             "--duration", str(seconds), "--format", "raw", "--nonblocking",
                             *(["--gil"] if mode == "gil" else []), "--output", str(output)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def median_round(runs: list[dict]) -> dict:
    """The round with the median req/s; every round's figures are kept under "rounds"."""
    ordered = sorted(runs, key=lambda r: r["requests_per_second"])
    median = dict(ordered[(len(ordered) - 1) // 2])
    median["rounds"] = [{k: r[k] for k in ("round", "requests_per_second", "p50_ms", "p99_ms",
                                            "bad_responses", "socket_errors",
                                            "cpu_us_per_request",
                                            "database_transactions_per_request")} for r in runs]
    # Errors anywhere count, not only in the round reported.
    median["bad_responses"] = sum(r["bad_responses"] for r in runs)
    median["socket_errors"] = {name: sum(r["socket_errors"][name] for r in runs)
                               for name in runs[0]["socket_errors"]}
    median["peak_rss_mib_per_worker"] = runs[-1]["peak_rss_mib_per_worker"]
    return median


# --- the report --------------------------------------------------------------------------------

def build_report(args, timestamp, seed_seconds, workers, threads, wrk_threads, connections,
                 results) -> dict:
    for result in results.values():
        # Each round against the ceiling measured in the same round: the spread.
        for own, ceiling_round in zip(result["rounds"], results["d"]["rounds"]):
            own["ratio_to_ceiling"] = (own["requests_per_second"]
                                       / ceiling_round["requests_per_second"])
            own["cpu_ratio_to_ceiling"] = (server_cpu(ceiling_round) / server_cpu(own)
                                           if server_cpu(own) else None)
        # The median of those, not a ratio of medians, which could divide a case's fast round
        # by the ceiling's slow one.
        result["ratio_to_ceiling"] = statistics.median(r["ratio_to_ceiling"]
                                                       for r in result["rounds"])
    errors = [f"({name}) {r['bad_responses']} responses other than "
              f"{'/'.join(map(str, r['expected_statuses']))}, "
              f"socket errors {r['socket_errors']}"
              for name, r in results.items()
              if r["bad_responses"] or any(r["socket_errors"].values())]
    targets = {f"({name}) >= {limit} x ceiling": {
        "value": round(results[name]["ratio_to_ceiling"], 3),
        "met": results[name]["ratio_to_ceiling"] >= limit} for name, limit in TARGETS.items()}
    targets["no bad responses or socket errors"] = {"value": len(errors), "met": not errors}
    # (c) against the same statement with nothing of ChatConnect around it.
    page_share_of_e = statistics.median(
        c["requests_per_second"] / e["requests_per_second"]
        for c, e in zip(results["c"]["rounds"], results["e"]["rounds"]))
    baseline = baseline_p50(args.clients, connections, workers, threads)
    if baseline:
        growth = results["a"]["p50_ms"] / baseline["p50_ms"]
        targets[f"(a) p50 <= {P50_GROWTH_LIMIT} x p50 at {BASELINE_CLIENTS:,} clients"] = {
            "value": round(growth, 3), "met": growth <= P50_GROWTH_LIMIT,
            "baseline": baseline}
    return {
        "timestamp": timestamp,
        "command": "bench/run.py " + " ".join(sys.argv[1:]),
        "clients": args.clients,
        "owners": args.owners,
        "seed_seconds": round(seed_seconds, 1),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "gunicorn": {"config": display_path(args.gunicorn_config), "workers": workers,
                     "threads": threads},
        "wrk": {"threads": wrk_threads, "connections": connections,
                "duration_s": args.duration, "warmup_s": args.warmup, "rounds": args.rounds},
        "profiled": args.profile or False,
        "cases": [results[case.name] for case in CASES],
        "targets": targets,
        "page_share_of_e": page_share_of_e,
        "errors": errors,
    }


def server_cpu(figures: dict) -> float:
    """Server CPU µs per request: gunicorn's, and PostgreSQL's when it is a cluster of ours."""
    cpu = figures["cpu_us_per_request"]
    return cpu["gunicorn"] + (cpu["postgresql"] or 0)


def display_path(path: Path) -> str:
    try:
        return str(path.absolute().relative_to(ROOT))
    except ValueError:
        return str(path)


def baseline_p50(clients: int, connections: int, workers: int, threads: int) -> dict | None:
    """Case (a)'s p50 in the latest saved run with the baseline number of clients and the same
    connections, workers and threads."""
    if clients == BASELINE_CLIENTS or not RESULTS_DIR.is_dir():
        return None
    for path in sorted(RESULTS_DIR.glob("*.json"), reverse=True):
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if (report.get("clients") == BASELINE_CLIENTS and not report.get("profiled")
                and report["wrk"]["connections"] == connections
                and (report["gunicorn"]["workers"], report["gunicorn"]["threads"])
                == (workers, threads)):
            case = next(c for c in report["cases"] if c["case"] == "a")
            return {"file": path.name, "p50_ms": case["p50_ms"]}
    return None


def print_report(report: dict) -> None:
    wrk_settings = report["wrk"]
    gunicorn_settings = report["gunicorn"]
    print(f"\n{report['clients']:,} clients over {report['owners']:,} owners "
          f"(seeded in {report['seed_seconds']} s); gunicorn {gunicorn_settings['config']} "
          f"({gunicorn_settings['workers']} workers × {gunicorn_settings['threads']} requests "
          "at once); "
          f"wrk {wrk_settings['threads']} thread(s), {wrk_settings['connections']} connections, "
          f"{wrk_settings['duration_s']} s per case, {wrk_settings['rounds']} round(s); "
          f"{report['machine']['cpus']} CPUs\n")
    print("| case | req/s | p50 ms | p99 ms | bad responses | socket errors | ratio to (d) "
          "| server CPU µs/req | DB transactions/req | peak RSS/worker MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in report["cases"]:
        rss = max(r["peak_rss_mib_per_worker"], default=0)
        print(f"| ({r['case']}) {r['title']} | {r['requests_per_second']:,.0f} | "
              f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['bad_responses']} | "
              f"{sum(r['socket_errors'].values())} | {r['ratio_to_ceiling']:.2f} | "
              f"{server_cpu(r):,.0f} | {r['database_transactions_per_request']:.4f} | "
              f"{rss:.0f} |")
    print()
    if report["wrk"]["rounds"] > 1:
        print("every round (req/s ratio to (d) in the same round; ceiling's CPU/req over the "
              "case's):")
        for r in report["cases"]:
            if r["case"] == "d":
                continue
            ratios = " / ".join(f"{x['ratio_to_ceiling']:.2f}" for x in r["rounds"])
            cpu_ratios = " / ".join(f"{x['cpu_ratio_to_ceiling']:.2f}" for x in r["rounds"])
            print(f"  ({r['case']}) req/s {ratios}; CPU {cpu_ratios}")
        print()
    for name, target in report["targets"].items():
        print(f"target {name}: {target['value']} {'met' if target['met'] else 'NOT MET'}")
    print(f"(c) as a share of (e), bare Flask running the same statement: "
          f"{report['page_share_of_e']:.2f}")
    if report["profiled"]:
        print("(profiled run: py-spy slowed the server; do not compare these figures)")
    for error in report["errors"]:
        print(f"error: {error}")


if __name__ == "__main__":
    sys.exit(main())
