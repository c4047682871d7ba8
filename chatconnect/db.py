"""The PostgreSQL connection pool of this process and the transaction helper views use."""

import atexit
import json
import logging
import select
from contextlib import contextmanager

import psycopg
from flask import current_app
from gevent.monkey import get_original
from psycopg.adapt import Loader
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

log = logging.getLogger(__name__)

READY_TIMEOUT = 2  # seconds; a readiness probe should answer before the prober gives up


_scan_json = json.JSONDecoder().scan_once


class JsonbLoader(Loader):
    """jsonb as the server sends it, always one JSON value with no space around it, read by
    json's C scanner directly: json.loads's Python layers doubled the time to load a page of
    clients (one jsonb list of allowed domains a row)."""

    def load(self, data):
        return _scan_json(str(data, "utf-8"), 0)[0]


def _configure(conn: psycopg.Connection) -> None:
    conn.adapters.register_loader("jsonb", JsonbLoader)
    # Columns of the original schema are `timestamp without time zone` holding UTC.
    conn.execute("SET TIME ZONE 'UTC'")
    conn.commit()


# The plain poll, not gevent's (when gevent patched select): with a zero timeout it never waits,
# and gevent's switches to its hub and back, on every checkout.
_blocking_poll = get_original("select", "poll")


def _check(conn: psycopg.Connection) -> None:
    """Make sure a connection the pool hands out still works, without a round trip per request.

    The server sends nothing on an idle connection unless it is going away (a restart or an
    ended backend writes an error and closes the socket), so only a connection with something
    to read is pinged; a dead one then fails the ping and the pool replaces it."""
    poller = _blocking_poll()
    poller.register(conn.fileno(), select.POLLIN)
    if poller.poll(0):
        ConnectionPool.check_connection(conn)


def init_app(app) -> None:
    """Open this process's pool. Called by the factory, so each gunicorn worker has its own."""
    pool = ConnectionPool(
        app.config["DATABASE_URL"],
        open=False,
        min_size=app.config["DB_POOL_MIN_SIZE"],
        max_size=app.config["DB_POOL_MAX_SIZE"],
        timeout=app.config["DB_POOL_TIMEOUT"],
        check=_check,
        configure=_configure,
        kwargs={"row_factory": dict_row},
        name="chatconnect",
    )
    # Not open(wait=True): on a timeout it closes the pool for good, and a worker started while
    # the database is away must recover when it comes back.
    pool.open()
    try:
        with pool.connection(timeout=app.config["DB_POOL_TIMEOUT"]) as conn:
            conn.execute("SELECT 1")
    except (PoolTimeout, psycopg.OperationalError):
        log.error("database not reachable yet; answering 503 until it is")
    app.extensions["db_pool"] = pool
    atexit.register(pool.close)


@contextmanager
def transaction():
    """A pooled connection inside one transaction: committed on success, rolled back on error."""
    with current_app.extensions["db_pool"].connection() as conn:
        yield conn


@contextmanager
def single_statement():
    """A pooled connection in autocommit mode, for a lone read that needs no transaction.

    It saves the BEGIN and COMMIT round trips; the hottest public route uses it."""
    with current_app.extensions["db_pool"].connection() as conn:
        conn.autocommit = True
        try:
            yield conn
        finally:
            if not conn.broken:
                conn.autocommit = False


def is_ready() -> bool:
    try:
        with current_app.extensions["db_pool"].connection(timeout=READY_TIMEOUT) as conn:
            conn.execute("SELECT 1")
        return True
    except (PoolTimeout, psycopg.OperationalError):
        return False


def error_line(error: Exception) -> str:
    """A database error's message on one line (libpq's span several, with hints)."""
    return " ".join(str(error).split())
