"""What `make run` runs: the schema upgrade, then gunicorn on 127.0.0.1 and one webhook worker,
in development mode.

Without DATABASE_URL (from the environment or .env) it uses a PostgreSQL cluster of its
own in instance/postgres, which keeps its data from one run to the next.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack

import psycopg
from dotenv import find_dotenv, load_dotenv

from chatconnect import migrate
from chatconnect.config import ConfigError, load_settings
from chatconnect.db import error_line
from chatconnect.localdb import LocalClusterError, development_database


class Stop(Exception):
    """Ctrl-C (SIGINT), SIGTERM or SIGHUP arrived; `signum` says which."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def main() -> int:
    load_dotenv(find_dotenv(usecwd=True))
    # A development command, whatever database it uses, unless told otherwise.
    if not os.environ.get("CHATCONNECT_ENV", "").strip():
        os.environ["CHATCONNECT_ENV"] = "development"
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_stop)
    terminal = _take_terminal()
    resources = ExitStack()  # the local cluster, when this run started it
    gunicorn = None
    stop_with = signal.SIGTERM  # gunicorn's graceful stop
    webhook_worker = None
    try:
        if not os.environ.get("DATABASE_URL", "").strip():
            os.environ["DATABASE_URL"] = resources.enter_context(development_database(print))
        try:
            load_settings(os.environ)
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        try:
            applied = migrate.upgrade(os.environ["DATABASE_URL"])
        except psycopg.OperationalError as error:
            print(f"error: cannot reach the database: {error_line(error)}", file=sys.stderr)
            return 1
        except psycopg.Error as error:
            print(f"error: the schema upgrade stopped: {error_line(error)}", file=sys.stderr)
            return 1
        print("Schema: applied " + ", ".join(applied) if applied else "Schema: up to date")
        if os.environ["CHATCONNECT_ENV"] == "development":  # the demo at /demo/
            subprocess.run([sys.executable, "-m", "flask", "--app", "chatconnect", "demo", "seed"],
                           check=False)

        port = os.environ.get("PORT", "").strip() or "8000"
        if not port.isdigit() or not 0 < int(port) < 65536:
            print(f"error: PORT must be a port number, got {port!r}", file=sys.stderr)
            return 1
        if _port_in_use(int(port)):
            print(f"error: 127.0.0.1:{port} is already in use; set PORT to another port", file=sys.stderr)
            return 1
        # In a session of its own, so that Ctrl-C reaches gunicorn only through this process,
        # as one signal: the terminal's SIGINT to every worker on top of the master's SIGQUIT
        # ran the workers' quit handler twice, and a worker could hang until it was SIGKILLed.
        gunicorn = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
                                     "--bind", f"127.0.0.1:{port}", "wsgi:app"], start_new_session=True)
        webhook_worker = _start_webhook_worker()
        if _wait_until_serving(int(port), gunicorn):
            print(f"\nChatConnect is running at http://127.0.0.1:{port}\n"
                  f"Try: curl http://127.0.0.1:{port}/readyz\n"
                  + (f"Demo: http://127.0.0.1:{port}/demo/\n"
                     if os.environ.get("CHATCONNECT_ENV") == "development" else "") +
                  "Press Ctrl-C to stop.\n", flush=True)
        return gunicorn.wait()
    except LocalClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Stop as stop:
        if stop.signum == signal.SIGINT:
            stop_with = signal.SIGINT  # Ctrl-C: gunicorn's quick shutdown
        return 0
    finally:
        # A second Ctrl-C ends gunicorn at once, but must not leave the database running.
        signal.signal(signal.SIGINT, lambda signum, frame: _kill(gunicorn, webhook_worker))
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        # Both told at once, then waited for.
        if webhook_worker is not None and webhook_worker.poll() is None:
            webhook_worker.terminate()
        if gunicorn is not None:
            if gunicorn.poll() is None:
                gunicorn.send_signal(stop_with)
            gunicorn.wait()
        if webhook_worker is not None:
            webhook_worker.wait()
        try:
            resources.close()
        except LocalClusterError as error:
            print(f"error: {error}", file=sys.stderr)
        _give_back_terminal(terminal)


def _raise_stop(signum, frame):
    raise Stop(signum)


def _take_terminal():
    """Become the terminal's foreground process group, as a shell makes a job, so that Ctrl-C
    reaches this process and not `make` too (which would print `*** [run] Interrupt` while
    this one is still stopping the server). Returns what _give_back_terminal needs, or None
    when there is no terminal or this process runs in the background."""
    try:
        fd = sys.stdin.fileno()
        if not os.isatty(fd) or os.tcgetpgrp(fd) != os.getpgrp():
            return None
        previous = os.getpgrp()
        os.setpgid(0, 0)
        _set_foreground(fd, os.getpgrp())
        return fd, previous
    except (OSError, ValueError):
        return None


def _give_back_terminal(terminal) -> None:
    if terminal is not None:
        try:
            _set_foreground(*terminal)
        except OSError:
            pass  # the parent is gone; its shell takes the terminal back


def _set_foreground(fd: int, process_group: int) -> None:
    # A process that is not in the foreground group gets SIGTTOU (stop) for tcsetpgrp.
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(fd, process_group)
    finally:
        signal.signal(signal.SIGTTOU, previous)


def _start_webhook_worker() -> subprocess.Popen:
    """`chatconnect worker`, which delivers webhooks; in a session of its own like gunicorn, so
    that it gets one signal, from this process (it stops on SIGTERM)."""
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "chatconnect", "worker"],
                            start_new_session=True)


def _port_in_use(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _wait_until_serving(port: int, process: subprocess.Popen, timeout: float = 60) -> bool:
    """Until a worker answers /healthz (the port opens before the workers have loaded the app)."""
    deadline = time.monotonic() + timeout
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no http_proxy
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with direct.open(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def _kill(*processes: subprocess.Popen | None) -> None:
    running = [p for p in processes if p is not None and p.poll() is None]
    if running:
        print("Stopping at once (second Ctrl-C)", flush=True)
    for process in running:
        os.killpg(process.pid, signal.SIGKILL)  # its whole session: gunicorn's master and workers


if __name__ == "__main__":
    sys.exit(main())
