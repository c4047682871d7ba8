"""What `make run` runs: the schema upgrade, then gunicorn on 127.0.0.1 and one webhook worker.

Without DATABASE_URL (from the environment or .env) it uses a PostgreSQL cluster of its
own in instance/postgres, which keeps its data from one run to the next.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from dotenv import find_dotenv, load_dotenv

from chatconnect.localdb import LocalCluster, LocalClusterError

DATA_DIR = Path("instance/postgres")
DATABASE = "chatconnect"
GRACEFUL_STOP_SECONDS = 35  # a little over gunicorn's default graceful_timeout


def main() -> int:
    load_dotenv(find_dotenv(usecwd=True))
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    cluster = None
    gunicorn = None
    webhook_worker = None
    try:
        if not os.environ.get("DATABASE_URL"):
            local = LocalCluster(DATA_DIR)
            if local.is_running():
                print(f"Using the PostgreSQL server already running in {DATA_DIR} (left running on exit)")
            else:
                print(f"Starting PostgreSQL in {DATA_DIR} (unix socket only)")
                cluster = local  # started by this run, so stopped by it
                if not local.start():
                    cluster = None  # another process started it meanwhile
            os.environ["DATABASE_URL"] = local.create_database(DATABASE)
            os.environ.setdefault("CHATCONNECT_ENV", "development")

        flask = [sys.executable, "-m", "flask", "--app", "chatconnect", "db", "upgrade"]
        if subprocess.run(flask, check=False).returncode != 0:
            print("error: the schema upgrade failed", file=sys.stderr)
            return 1

        port = os.environ.get("PORT", "8000")
        if _port_in_use(int(port)):
            print(f"error: 127.0.0.1:{port} is already in use; set PORT to another port", file=sys.stderr)
            return 1
        gunicorn = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
                                     "--bind", f"127.0.0.1:{port}", "wsgi:app"])
        webhook_worker = _start_webhook_worker()
        if _wait_for_port(int(port), gunicorn):
            print(f"\nChatConnect is running at http://127.0.0.1:{port}\n"
                  f"Try: curl http://127.0.0.1:{port}/readyz\n"
                  "Press Ctrl-C to stop.\n", flush=True)
        return gunicorn.wait()
    except LocalClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C must not leave the database running without its app.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if webhook_worker is not None:
            _stop(webhook_worker)
        if gunicorn is not None:
            _stop(gunicorn)
        if cluster is not None:
            print(f"Stopping PostgreSQL in {DATA_DIR}")
            cluster.stop()


def _start_webhook_worker() -> subprocess.Popen:
    """`chatconnect worker`, which delivers webhooks (it stops on SIGTERM like gunicorn)."""
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "chatconnect", "worker"])


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _port_in_use(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if _port_in_use(port):
            return True
        time.sleep(0.1)
    return False


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()  # SIGTERM: gunicorn finishes the requests in flight
        try:
            process.wait(GRACEFUL_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    sys.exit(main())
