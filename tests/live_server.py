"""The app served by gunicorn with the shipped deploy/gunicorn.conf.py on a free loopback port,
for tests that need real concurrency, and a small HTTP client that keeps a cookie."""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .conftest import PASSWORD

REPO = Path(__file__).resolve().parent.parent
COOKIE = "chatconnect_session"
# Settings a developer's environment may hold; the server under test gets only its own.
INHERITED_SETTINGS = re.compile(
    r"(DATABASE_URL|TEST_DATABASE_URL|CHATCONNECT_ENV|SECRET_KEY|DB_POOL_.*|SESSION_.*|"
    r"DASHBOARD_ORIGINS|TRUSTED_PROXY_HOPS|.*_LIMIT_PER_.*|PASSWORD_HASH_.*|LOG_LEVEL|"
    r"GUNICORN_.*)")


class LiveServer:
    def __init__(self, database_url: str, log_dir: Path, **settings):
        self.port = _free_port()
        self.log_path = log_dir / "gunicorn.log"
        env = {k: v for k, v in os.environ.items() if not INHERITED_SETTINGS.fullmatch(k)}
        env.update({
            "DATABASE_URL": database_url,
            "CHATCONNECT_ENV": "development",
            "SECRET_KEY": "live-server-secret",
            "DB_POOL_MIN_SIZE": "1",
            "DB_POOL_MAX_SIZE": "4",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_WORKER_CONNECTIONS": "200",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "LOG_LEVEL": "WARNING",
            **settings,
        })
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", str(REPO / "deploy" / "gunicorn.conf.py")],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn did not start:\n{self.log_tail()}")
            time.sleep(0.1)

    def _ready(self) -> bool:
        try:
            return self.request("GET", "/readyz", timeout=2)[0] == 200
        except OSError:
            return False

    def request(self, method, path, body=None, headers=None, timeout=30):
        """(status, headers, parsed JSON body or None) over a new connection."""
        headers = dict(headers or {})
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        parsed = json.loads(data) if response.headers.get_content_type() == "application/json" \
            else None
        return response.status, response.headers, parsed

    def log_tail(self, lines=30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # quick shutdown: nothing is in flight
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Browser:
    """One cookie, like a browser tab; requests that the hashing bound refuses (503) are retried."""

    def __init__(self, server: LiveServer, cookie: str | None = None):
        self.server = server
        self.cookie = cookie

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if self.cookie:
            headers["Cookie"] = f"{COOKIE}={self.cookie}"
        for _ in range(600):
            status, response_headers, data = self.server.request(method, path, body, headers)
            if status != 503:
                break
            time.sleep(0.05)
        for header in response_headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            if name == COOKIE:
                value = rest.split(";", 1)[0]
                self.cookie = value if value and "Max-Age=0" not in header \
                    and "1970" not in header else None
        return status, data

    def register(self, username, password=PASSWORD):
        status, data = self.request("POST", "/api/auth/register",
                                    {"username": username, "password": password})
        assert status == 201, data
        return data["user"]

    def login(self, username, password=PASSWORD):
        return self.request("POST", "/api/auth/login",
                            {"username": username, "password": password})[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
