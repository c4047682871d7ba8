"""gunicorn settings for ChatConnect: `gunicorn -c deploy/gunicorn.conf.py`.

Sizes and the bind address come from the environment (GUNICORN_WORKERS,
GUNICORN_WORKER_CONNECTIONS, GUNICORN_BIND, LOG_LEVEL). The master process must not import the
`chatconnect` package: workers forked after a reload (SIGHUP) would inherit the old code
instead of loading the new.
"""

# gevent replaces the blocking parts of the standard library; that must happen before anything
# imports ssl, threading or socket, so first of all (the workers inherit it).
from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import queue  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

from gunicorn import glogging  # noqa: E402


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this process may use (containers)
    except AttributeError:
        return os.cpu_count() or 1


def _positive(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"gunicorn.conf.py: {name} must be a whole number >= 1, got {raw!r}")
    return int(raw)


wsgi_app = "wsgi:app"
bind = [os.environ.get("GUNICORN_BIND", "").strip() or "127.0.0.1:8000"]
umask = 0o007  # a unix socket only for its owner and group (nginx's group)
# Not used; its default path in $HOME would be shared by every gunicorn of the same user.
control_socket_disable = True

# Requests mostly wait: on PostgreSQL, or on a long-poll or event stream (up to minutes). On
# gevent each request is a greenlet, so a waiting one costs a few KiB and neither a thread nor a
# database connection: one worker per core serves thousands of waiting visitors. Each worker
# has its own pool of DB_POOL_MAX_SIZE connections plus one for its LISTEN connection, so
# workers x (DB_POOL_MAX_SIZE + 1) must stay below PostgreSQL's max_connections.
worker_class = "gevent"
workers = _positive("GUNICORN_WORKERS", _cores())
worker_connections = _positive("GUNICORN_WORKER_CONNECTIONS", 5000)

# The app opens its connection pool in create_app(): that must happen in each worker, after the
# fork, never in the master.
preload_app = False

timeout = 60           # above the 25 s long-poll and DB_POOL_TIMEOUT
graceful_timeout = 30  # a worker told to stop finishes its requests, long-polls included
keepalive = 5
# Workers are never recycled (gunicorn's max_requests stays 0): a recycled worker drops every
# long-poll and event stream it holds and empties its caches, and memory stays flat under load
# (make bench-realtime reports it per worker).

# Only the local proxy may say the request came over https (unix socket peers are local).
# Client addresses come from X-Forwarded-For through the app's ProxyFix (TRUSTED_PROXY_HOPS).
forwarded_allow_ips = "127.0.0.1,::1"
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

loglevel = os.environ.get("LOG_LEVEL", "info").strip().lower() or "info"
accesslog = "-"
errorlog = "-"
# One JSON object per line; every value is JSON-encoded by JsonLogger below.
access_log_format = (
    '{"time": %(t)s, "level": "INFO", "logger": "gunicorn.access", '
    '"request_id": %({x-request-id}o)s, "remote_addr": %(h)s, "method": %(m)s, '
    '"path": %(U)s, "query": %(q)s, "status": %(s)s, "bytes": %(B)s, '
    '"duration_ms": %(M)s, "user_agent": %(a)s, "pid": %(p)s}'
)


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


class JsonAtoms(glogging.SafeAtoms):
    def __init__(self, atoms):
        dict.__init__(self, atoms)  # not SafeAtoms' quote escaping: json.dumps does it all

    def __getitem__(self, key):
        value = super().__getitem__(key)
        return json.dumps(None if value == "-" else value, ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    """gunicorn's own messages (boot, signals, worker exits) as JSON lines like the app's."""

    def format(self, record):
        line = {"time": _utc(record.created), "level": record.levelname, "logger": record.name,
                "message": record.getMessage(), "request_id": None}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class JsonLogger(glogging.Logger):
    atoms_wrapper_class = JsonAtoms

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())

    def now(self):
        return _utc(time.time())

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["s"] = int(atoms["s"])
        atoms["p"] = os.getpid()
        atoms["h"] = atoms["h"] or None  # unix socket peers have no address
        return atoms


logger_class = JsonLogger

# Metrics (METRICS_ENABLED): prometheus_client's multiprocess mode. Each worker writes its values
# to files in PROMETHEUS_MULTIPROC_DIR and a scrape adds them up; the variable must be set before
# a worker imports prometheus_client, so the master sets it before forking any. Unless it names
# a directory already, the server makes one of its own and removes it when it stops.
def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        directory = tempfile.mkdtemp(prefix="chatconnect-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        server.own_metrics_dir = directory  # the arbiter outlives reloads of this file
    # Values of an earlier run of the server are not this run's.
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.remove(os.path.join(directory, name))


def child_exit(server, worker):
    # A worker's gauges (pool, listener, open long-polls) leave with it; its counts stay.
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if getattr(server, "own_metrics_dir", None):
        shutil.rmtree(server.own_metrics_dir, ignore_errors=True)


# A worker is forked with the master's signal handlers, which only queue a signal for the
# master's loop. A stop signal that reached a worker before it installed its own handlers was
# lost: the worker served on and the master SIGKILLed it after graceful_timeout ("Perhaps out of
# memory?"), e.g. on a Ctrl-C or a stop right after a worker (re)started. Until then, a worker
# has served nothing and holds nothing: a stop signal ends it at once.
STOP_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)


def _exit_before_serving(signum, frame):
    os._exit(0)


def post_fork(server, worker):
    for signum in STOP_SIGNALS:
        signal.signal(signum, _exit_before_serving)
    # Signals caught since the fork, by the master's handlers, in this process's copy of its queue.
    queued, caught = server.SIG_QUEUE, []
    if isinstance(queued, list):  # gunicorn < 24
        caught = list(queued)
    else:
        while True:
            try:
                caught.append(queued.get_nowait())
            except queue.Empty:
                break
    if set(STOP_SIGNALS).intersection(caught):
        os._exit(0)


def worker_int(worker):
    """A quick stop (SIGINT, SIGQUIT): exit now. gunicorn sleeps 0.1 s after this hook before it
    exits; on gevent that sleep can let the worker's main loop finish first, and the exit then
    lands in the interpreter's shutdown, which prints a traceback."""
    sys.exit(0)
