"""Headless Chromium (Debian's, driven by Playwright) against a real gunicorn.

The API runs under gunicorn with the shipped deploy/gunicorn.conf.py on a socket the test bound
to a random port (passed as fd://, so no other process can take the port meanwhile). Customer
and dashboard pages come from a small HTTP server of their own, on another port. Chromium maps
every *.example.test name to 127.0.0.1, so that a dashboard at app.example.test can call an API
at api.example.test: two origins of one site, as app.example.com and api.example.com are."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--host-resolver-rules=MAP *.example.test 127.0.0.1"]
START_TIMEOUT = 30
FAILED = pytest.StashKey[bool]()


def _bound_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.set_inheritable(True)
    return sock


class Pages:
    """An HTTP server of HTML pages registered by the tests, on a port of its own."""

    def __init__(self):
        self.pages = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = pages.get(self.path.split("?")[0])
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write((body or "not found").encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, html: str, host: str = "localhost") -> str:
        """Serve `html`; its URL on `host`."""
        path = f"/{uuid.uuid4().hex}.html"
        self.pages[path] = html
        return f"http://{host}:{self.port}{path}"


@pytest.fixture(scope="session")
def pages():
    server = Pages()
    yield server
    server.server.shutdown()


class Api:
    """gunicorn serving ChatConnect; `url(host)` is its address under a name Chromium resolves."""

    def __init__(self, database_url, tmp: Path, dashboard_origin: str, **settings):
        self.sock = _bound_socket()
        self.port = self.sock.getsockname()[1]
        self.log = tmp / "gunicorn.log"
        env = {**os.environ, "DATABASE_URL": database_url, "CHATCONNECT_ENV": "development",
               "SECRET_KEY": "browser-tests", "GUNICORN_WORKERS": "1",
               "GUNICORN_BIND": f"fd://{self.sock.fileno()}", "DASHBOARD_ORIGINS": dashboard_origin,
               "DB_POOL_MAX_SIZE": "4", "DB_POOL_MIN_SIZE": "1", **settings}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"], cwd=REPO,
                env=env, stdout=log, stderr=subprocess.STDOUT, pass_fds=(self.sock.fileno(),))
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{self.url()}/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("gunicorn did not start:\n" + self.log.read_text()[-3000:])
            time.sleep(0.2)

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}"

    def stop(self):
        if self.process.poll() is None:
            # Quick shutdown: a graceful one would wait for the browsers' long-polls to end.
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.sock.close()


@pytest.fixture(scope="session")
def api(database_url, pages, tmp_path_factory):
    server = Api(database_url, tmp_path_factory.mktemp("gunicorn"),
                 dashboard_origin=f"http://app.example.test:{pages.port}")
    yield server
    server.stop()


@pytest.fixture
def make_api(database_url, pages, tmp_path):
    """Another gunicorn, with settings of the test's own (e.g. rate limits)."""
    servers = []

    def make(**settings):
        servers.append(Api(database_url, tmp_path, f"http://app.example.test:{pages.port}",
                           **settings))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


@pytest.fixture
def context(chromium, request, tmp_path):
    """A fresh browser profile (its own localStorage and cookies); on failure every page of it
    is saved as a screenshot under the test's temporary folder."""
    context = chromium.new_context(viewport={"width": 1000, "height": 720})
    context.set_default_timeout(15_000)
    yield context
    if request.node.stash.get(FAILED, False):
        for number, page in enumerate(context.pages):
            path = tmp_path / f"failure-{number}.png"
            try:
                page.screenshot(path=path, full_page=True)
                print(f"\nscreenshot of the failed test's page {page.url}: {path}")
            except Exception as error:  # a crashed page cannot be shot
                print(f"\nno screenshot of {page.url}: {error}")
    context.close()
