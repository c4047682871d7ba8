"""The shipped deployment, for real: deploy/gunicorn.conf.py and deploy/chatconnect.service's
command behind deploy/nginx.conf, on loopback ports and a temp directory, over TLS.

Needs nginx and openssl on the machine (.ci/run installs them); installs nothing itself.
"""

import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.cookies import SimpleCookie
from pathlib import Path

import psycopg
import pytest

from chatconnect import migrate
from chatconnect.localdb import LocalCluster

from .conftest import PASSWORD, unique_username

pytestmark = pytest.mark.deploy

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
HOST = "chat.example.com"
WORKERS = 2
IP_LIMIT = 3  # conversations started and failed sign-ins per client IP
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin", "/opt/homebrew/bin")
INSTALL_HINT = {
    "nginx": "install it with `apt-get install nginx-light` (Debian/Ubuntu) or `brew install nginx`",
    "openssl": "install it with `apt-get install openssl` (Debian/Ubuntu) or `brew install openssl`",
}
# Settings a developer's environment may hold; the deployment under test gets only its own.
INHERITED_SETTINGS = re.compile(
    r"(DATABASE_URL|TEST_DATABASE_URL|CHATCONNECT_ENV|SECRET_KEY|DB_POOL_.*|SESSION_.*|"
    r"DASHBOARD_ORIGINS|TRUSTED_PROXY_HOPS|.*_LIMIT_PER_.*|LOG_LEVEL|GUNICORN_.*|FORWARDED_ALLOW_IPS|"
    r"METRICS_ENABLED|PROMETHEUS_MULTIPROC_DIR|.*_CACHE_SIZE)")


def program(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN_DIRS))
    if path is None:
        pytest.fail(f"The deployment test needs `{name}`, which is not on this machine: "
                    f"{INSTALL_HINT[name]}.", pytrace=False)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, what: str, seconds: float = 30, diagnostics=lambda: ""):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}\n{diagnostics()}", pytrace=False)
        time.sleep(0.1)


def replace_all(text: str, replacements: dict) -> str:
    """Replace each key (a regex); the shipped file must contain every one of them."""
    for pattern, value in replacements.items():
        text, count = re.subn(pattern, lambda _: value, text)
        assert count, f"deploy file no longer contains {pattern!r}"
    return text


class Response:
    def __init__(self, raw: http.client.HTTPResponse):
        self.status = raw.status
        self.headers = raw.headers
        self.body = raw.read()

    def json(self):
        assert self.headers.get_content_type() == "application/json", self.headers
        return json.loads(self.body)


class Client:
    """HTTPS to nginx on loopback under the API's host name, keeping cookies like a browser."""

    def __init__(self, stack):
        self.stack = stack
        self.cookies = {}

    def request(self, method, path, body=None, headers=None, server_name=HOST, host=None,
                timeout=30) -> Response:
        headers = {"Host": host or f"{HOST}:{self.stack.https_port}", **(headers or {})}
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        raw = socket.create_connection(("127.0.0.1", self.stack.https_port), timeout)
        conn = http.client.HTTPConnection("127.0.0.1", self.stack.https_port, timeout=timeout)
        try:
            conn.sock = self.stack.tls.wrap_socket(raw, server_hostname=server_name)
            conn.request(method, path, body=body, headers=headers)
            response = Response(conn.getresponse())
        finally:
            conn.close()
            raw.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                assert morsel["secure"] and morsel["httponly"], header
                if morsel["max-age"] == "0" or morsel["expires"].endswith("1970 00:00:00 GMT"):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, body=None, **kwargs):
        return self.request("POST", path, body, **kwargs)

    def register(self, username=None) -> dict:
        username = username or unique_username()
        response = self.post("/api/auth/register", {"username": username, "password": PASSWORD})
        assert response.status == 201, response.body
        return response.json()["user"]


class Stack:
    """PostgreSQL, gunicorn and nginx, started from the shipped files in one temp directory."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.cluster = LocalCluster(tmp / "pg", throwaway=True)
        self.https_port, self.http_port = free_port(), free_port()
        self.socket = tmp / "gunicorn.sock"
        self.gunicorn = self.nginx = None

    def start(self):
        nginx, openssl = program("nginx"), program("openssl")
        self.cluster.start()
        self.database_url = self.cluster.create_database("chatconnect")
        migrate.upgrade(self.database_url)
        self._make_certificate(openssl)
        self.start_gunicorn()
        self._start_nginx(nginx)
        wait_until(lambda: self._answers("/readyz"), "the API through nginx", 30, self.logs)

    # TLS: a throwaway certificate for HOST that the test client trusts.
    def _make_certificate(self, openssl):
        self.cert, self.key = self.tmp / "cert.pem", self.tmp / "key.pem"
        subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{HOST}",
                        "-keyout", self.key, "-out", self.cert],
                       check=True, capture_output=True)
        self.tls = ssl.create_default_context(cafile=self.cert)

    # gunicorn exactly as the systemd unit runs it, with the unit's environment.
    def start_gunicorn(self):
        unit = (DEPLOY / "chatconnect.service").read_text()
        exec_start = shlex.split(re.search(r"^ExecStart=(.+)$", unit, re.M)[1])
        assert Path(exec_start[0]).name == "gunicorn"
        assert re.search(r"^ExecReload=/bin/kill -HUP \$MAINPID$", unit, re.M)
        env = {k: v for k, v in os.environ.items() if not INHERITED_SETTINGS.fullmatch(k)}
        for line in re.findall(r"^Environment=(.+)$", unit, re.M):
            name, value = line.split("=", 1)
            env[name] = value.replace("/run/chatconnect/gunicorn.sock", str(self.socket))
        assert env["GUNICORN_BIND"] == f"unix:{self.socket}"
        env.update({  # what /etc/chatconnect/env holds in production
            "DATABASE_URL": self.database_url,
            "SECRET_KEY": "deployment-test-secret",
            "CHATCONNECT_ENV": "production",
            "TRUSTED_PROXY_HOPS": "1",
            "CONVERSATION_LIMIT_PER_IP": f"{IP_LIMIT}/3600",
            "LOGIN_LIMIT_PER_IP": f"{IP_LIMIT}/900",
            "REGISTER_LIMIT_PER_IP": "100000/3600",  # every test signs up from 127.0.0.1
            "DB_POOL_MIN_SIZE": "1",
            "DB_POOL_MAX_SIZE": "4",
            "DB_POOL_TIMEOUT": "1",
            "GUNICORN_WORKERS": str(WORKERS),
            "METRICS_ENABLED": "true",
        })
        self.socket.unlink(missing_ok=True)
        with open(self.tmp / "gunicorn.out", "ab") as out, open(self.tmp / "gunicorn.err", "ab") as err:
            self.gunicorn = subprocess.Popen([sys.executable, "-m", "gunicorn", *exec_start[1:]],
                                             cwd=REPO, env=env, stdout=out, stderr=err)
        wait_until(lambda: len(self.worker_pids()) == WORKERS and self.socket.exists(),
                   "gunicorn to start", 30, self.logs)

    def stop_gunicorn(self):
        if self.gunicorn and self.gunicorn.poll() is None:
            self.gunicorn.terminate()
            self.gunicorn.wait(timeout=40)

    def _start_nginx(self, nginx):
        site = replace_all((DEPLOY / "nginx.conf").read_text(), {
            r"\blisten 80\b": f"listen 127.0.0.1:{self.http_port}",
            r"\blisten 443\b": f"listen 127.0.0.1:{self.https_port}",
            re.escape("unix:/run/chatconnect/gunicorn.sock"): f"unix:{self.socket}",
            re.escape(f"/etc/letsencrypt/live/{HOST}/fullchain.pem"): str(self.cert),
            re.escape(f"/etc/letsencrypt/live/{HOST}/privkey.pem"): str(self.key),
            re.escape("/var/log/nginx/chatconnect.access.log"): str(self.tmp / "nginx.access.log"),
        })
        (self.tmp / "site.conf").write_text(site)
        temp = self.tmp / "nginx-temp"
        temp.mkdir()
        # What Debian's /etc/nginx/nginx.conf provides around the site, kept inside tmp.
        (self.tmp / "nginx.conf").write_text(f"""
            {"user root;" if os.geteuid() == 0 else ""}
            worker_processes 1;
            pid {self.tmp}/nginx.pid;
            error_log {self.tmp}/nginx.error.log;
            events {{ worker_connections 256; }}
            http {{
                client_body_temp_path {temp}/body;
                proxy_temp_path {temp}/proxy;
                fastcgi_temp_path {temp}/fastcgi;
                uwsgi_temp_path {temp}/uwsgi;
                scgi_temp_path {temp}/scgi;
                access_log off;
                include {self.tmp}/site.conf;
            }}
        """)
        self.nginx = subprocess.Popen(
            [nginx, "-p", str(self.tmp), "-c", str(self.tmp / "nginx.conf"),
             "-e", str(self.tmp / "nginx.error.log"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self._port_open(self.https_port) or self.nginx.poll() is not None,
                   "nginx to listen", 15, self.logs)
        assert self.nginx.poll() is None, f"nginx did not start\n{self.logs()}"

    def stop(self):
        if self.nginx and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)
            self.nginx.wait(timeout=15)
        self.stop_gunicorn()
        self.cluster.destroy()

    def worker_pids(self) -> set[int]:
        """The gunicorn master's children, from /proc."""
        pids = set()
        if self.gunicorn is None:
            return pids
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.gunicorn.pid:
                pids.add(int(stat.parent.name))
        return pids

    def log_lines(self, name: str) -> list[dict]:
        """Every line of a log file, each of which must be one JSON object."""
        lines = (self.tmp / name).read_text().splitlines()
        return [json.loads(line) for line in lines]

    def logs(self) -> str:
        tails = []
        for name in ("gunicorn.err", "gunicorn.out", "nginx.error.log"):
            path = self.tmp / name
            if path.exists():
                tails.append(f"--- {name}\n" + "\n".join(path.read_text().splitlines()[-30:]))
        return "\n".join(tails)

    def _answers(self, path) -> bool:
        try:
            return Client(self).get(path, timeout=5).status == 200
        except OSError:
            return False

    @staticmethod
    def _port_open(port) -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return True
        except OSError:
            return False


@pytest.fixture(scope="module")
def stack():
    tmp = Path(tempfile.mkdtemp(prefix="ccdeploy-", dir="/tmp"))  # short: unix socket paths
    stack = Stack(tmp)
    try:
        stack.start()
        yield stack
    finally:
        print(stack.logs())
        stack.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def client(stack):
    return Client(stack)


def create_client(client, name="Shop") -> dict:
    response = client.post("/api/clients", {"name": name, "allowed_domains": []})
    assert response.status == 201, response.body
    return response.json()


def start_conversation(client, public_api_key, headers=None):
    return client.post(f"/api/public/widgets/{public_api_key}/conversations",
                       {"message": "Hello?"}, headers=headers)


def forget_rate_limits(stack):
    with psycopg.connect(stack.database_url) as conn:
        conn.execute("DELETE FROM rate_limits")


def assert_error(response, status, code):
    assert response.status == status, response.body
    assert response.json()["error"]["code"] == code
    assert response.headers["X-Request-ID"]


def test_sign_up_sign_in_and_session_through_nginx(client, stack):
    username = client.register()["username"]
    assert set(client.cookies) == {"__Host-chatconnect_session"}  # Secure, HttpOnly: checked
    response = client.get("/api/auth/me")
    assert response.status == 200
    assert response.json()["user"]["username"] == username

    # A browser on the API's own origin (as nginx forwards scheme, host and port) may post.
    origin = f"https://{HOST}:{stack.https_port}"
    response = client.post("/api/auth/login", {"username": username, "password": PASSWORD},
                           headers={"Origin": origin})
    assert response.status == 200
    # A forged X-Forwarded-Host does not make a foreign origin look like the API's own.
    response = client.post("/api/auth/login", {"username": username, "password": PASSWORD},
                           headers={"Origin": "https://evil.example",
                                    "X-Forwarded-Host": "evil.example"})
    assert_error(response, 403, "forbidden")

    created = create_client(client, "Round trip")
    response = client.get(f"/api/clients/{created['id']}")
    assert response.status == 200
    assert response.json() == created


def failed_sign_in(client, headers):
    return client.post("/api/auth/login", {"username": unique_username(), "password": "wrong"},
                       headers=headers)


@pytest.mark.parametrize("limited", ["conversation", "sign-in"])
def test_a_forged_x_forwarded_for_does_not_dodge_a_per_ip_limit(client, stack, limited):
    if limited == "conversation":
        client.register()
        public_api_key = create_client(client)["public_api_key"]
        attempt, status = (lambda headers: start_conversation(client, public_api_key, headers)), 201
    else:
        attempt, status = (lambda headers: failed_sign_in(client, headers)), 401
    forget_rate_limits(stack)
    try:
        # Each request claims another address; the app counts them all against nginx's view.
        for n in range(IP_LIMIT):
            response = attempt({"X-Forwarded-For": f"203.0.113.{n}"})
            assert response.status == status, response.body
        request_id = uuid.uuid4().hex
        response = attempt({"X-Forwarded-For": "198.51.100.7", "X-Request-ID": request_id})
        assert_error(response, 429, "rate_limited")
        assert int(response.headers["Retry-After"]) > 0
    finally:
        forget_rate_limits(stack)

    wait_until(lambda: any(line["request_id"] == request_id
                           for line in stack.log_lines("gunicorn.out")), "the access log line")
    [line] = [line for line in stack.log_lines("gunicorn.out") if line["request_id"] == request_id]
    assert line["remote_addr"] == "127.0.0.1" and line["status"] == 429


@pytest.mark.parametrize("supplied, kept", [
    ("edge-" + "a" * 195, True),
    ("a" * 201, False),
    ("", False),
])
def test_request_id_is_taken_from_the_client_or_made_and_logged(client, stack, supplied, kept):
    response = client.get("/nope", headers={"X-Request-ID": supplied})
    assert_error(response, 404, "not_found")
    request_id = response.headers["X-Request-ID"]
    if kept:
        assert request_id == supplied
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    # Both servers write their access log line after sending the answer: the client may read
    # the answer before either line is there, so each is waited for.
    for log in ("gunicorn.out", "nginx.access.log"):
        wait_until(lambda: any(line["request_id"] == request_id
                               for line in stack.log_lines(log)), f"the line in {log}")
    nginx_lines = [line for line in stack.log_lines("nginx.access.log")
                   if line["request_id"] == request_id]
    assert [line["status"] for line in nginx_lines] == [404]


def test_body_over_the_limit_gets_the_json_413_from_nginx(client):
    response = client.post("/api/auth/login", b"x" * (2 * 1024 * 1024),
                           headers={"Content-Type": "application/json"})
    assert_error(response, 413, "payload_too_large")
    # 64 KiB exactly passes nginx and reaches the app, which reads it as JSON.
    response = client.post("/api/auth/login", b"[" + b" " * (64 * 1024 - 2) + b"]",
                           headers={"Content-Type": "application/json"})
    assert_error(response, 400, "bad_request")


def raw_request(stack, data: bytes) -> Response:
    """Bytes sent as they are over TLS to nginx, for requests http.client would not make."""
    raw = socket.create_connection(("127.0.0.1", stack.https_port), 30)
    with stack.tls.wrap_socket(raw, server_hostname=HOST) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return Response(response)


@pytest.mark.parametrize("case, status", [
    ("a 5 KiB URI, refused by gunicorn", 414),
    ("a 10 KiB URI, refused by nginx", 414),
    ("150 headers, refused by gunicorn", 431),
    ("a 10 KiB header, refused by nginx", 431),
    ("two Host headers, refused by nginx", 400),
])
def test_requests_refused_before_the_app_get_json_errors_too(client, stack, case, status):
    if "URI" in case:
        size = 5 * 1024 if "5 KiB" in case else 10 * 1024
        response = client.get("/healthz?pad=" + "x" * size)
    elif "150 headers" in case:
        response = client.get("/healthz", headers={f"X-Pad-{n}": "x" for n in range(150)})
    elif "10 KiB header" in case:
        response = client.get("/healthz", headers={"X-Pad": "x" * 10 * 1024})
    else:
        response = raw_request(stack, f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\n"
                                      f"Host: other.example\r\n\r\n".encode())
    assert_error(response, status, "bad_request")
    # The app's own errors pass through nginx unchanged.
    response = client.post("/api/auth/login", b"{", headers={"Content-Type": "application/json"})
    assert_error(response, 400, "bad_request")
    assert response.json()["error"]["message"] == "the body is not valid JSON"


def test_unknown_host_names_are_refused(client, stack):
    with pytest.raises(ssl.SSLError):
        client.get("/healthz", server_name="other.example")
    with pytest.raises(http.client.RemoteDisconnected):
        client.get("/healthz", host="other.example")

    def plain_http(host):
        conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=10)
        try:
            conn.request("GET", "/healthz?x=1", headers={"Host": host})
            return conn.getresponse()
        finally:
            conn.close()

    redirect = plain_http(HOST)
    assert redirect.status == 301
    assert redirect.headers["Location"] == f"https://{HOST}/healthz?x=1"
    with pytest.raises(http.client.RemoteDisconnected):
        plain_http("other.example")


def run_burst(calls, until):
    """Make `calls` (name -> function returning a status) round-robin from 12 threads until
    `until()` returns; returns the (name, status) pairs."""
    results = []
    lock = threading.Lock()
    stop = threading.Event()
    names = list(calls)

    def worker(n):
        while not stop.is_set():
            name = names[n % len(names)]
            status = calls[name]()
            with lock:
                results.append((name, status))
            n += 1

    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(worker, n) for n in range(12)]
        try:
            until()
        finally:
            stop.set()
        for future in futures:
            future.result()
    return results


def test_graceful_reload_during_a_burst_drops_no_request(client, stack):
    client.register()
    started = start_conversation(Client(stack), create_client(client)["public_api_key"]).json()
    conversation_id = started["conversation"]["id"]
    visitor = {"X-Visitor-Token": started["visitor_token"]}
    messages = f"/api/public/conversations/{conversation_id}/messages"
    old_workers = stack.worker_pids()
    calls = {  # POSTs too: nginx never retries those, so a dropped one would show
        "me": lambda: client.get("/api/auth/me").status,
        "readyz": lambda: client.get("/readyz").status,
        "new client": lambda: client.post("/api/clients", {"name": "Burst"}).status,
    }

    def reload_and_wait():
        with ThreadPoolExecutor(1) as pool:
            # A visitor's long-poll, waiting in an old worker when the reload comes.
            long_poll = pool.submit(client.get, f"{messages}?after={started['messages'][0]['id']}"
                                                f"&wait=25", headers=visitor)
            time.sleep(0.5)
            os.kill(stack.gunicorn.pid, signal.SIGHUP)  # what `systemctl reload` sends
            wait_until(lambda: len(stack.worker_pids() - old_workers) == WORKERS,
                       "new workers", 30, stack.logs)
            time.sleep(2)  # the old worker keeps the long-poll waiting while it stops
            # Posted through a new worker, the message wakes the long-poll in the old one.
            reply = client.post(messages, {"body": "Still there?"}, headers=visitor)
            assert reply.status == 201, reply.body
            response = long_poll.result(timeout=30)
        assert response.status == 200, response.body
        assert [m["body"] for m in response.json()["items"]] == ["Still there?"]
        wait_until(lambda: stack.worker_pids().isdisjoint(old_workers),
                   "the old workers to exit", 30, stack.logs)
        time.sleep(0.3)  # and requests served by the new workers only

    results = run_burst(calls, reload_and_wait)
    assert {name for name, _ in results} == set(calls)
    expected = {"me": 200, "readyz": 200, "new client": 201}
    assert [(name, status) for name, status in results if status != expected[name]] == []


def test_database_restart_gives_503_only_then_recovers(client, stack):
    client.register()
    stack.cluster.stop()
    try:
        requests = [("GET", "/api/auth/me", None), ("GET", "/readyz", None),
                    ("POST", "/api/auth/login", {"username": "someone", "password": PASSWORD})]
        with ThreadPoolExecutor(len(requests)) as pool:
            responses = list(pool.map(lambda r: client.request(*r), requests))
        for response in responses:
            assert_error(response, 503, "service_unavailable")
        assert client.get("/healthz").status == 200  # the process is up, only the database is not

        # The 503 is logged by the app as a JSON line carrying the request id.
        request_id = responses[0].headers["X-Request-ID"]
        app_lines = [line for line in stack.log_lines("gunicorn.err")
                     if line["request_id"] == request_id]
        assert app_lines and {line["level"] for line in app_lines} == {"WARNING"}
    finally:
        stack.cluster.start()

    # Each worker's pool reconnects on its own (with backoff): a few more 503s, then 200s.
    statuses = []

    def recovered():
        statuses.append(client.get("/api/auth/me").status)  # the session outlived the outage
        return statuses[-5:] == [200] * 5

    wait_until(recovered, "signed-in requests to answer 200 again", 40, stack.logs)
    assert set(statuses) <= {503, 200}


def test_nginx_answers_json_503_while_gunicorn_is_down(client, stack):
    stack.stop_gunicorn()
    try:
        response = client.get("/readyz")
        assert_error(response, 503, "service_unavailable")
        assert response.headers["Retry-After"]
    finally:
        stack.start_gunicorn()
    assert client.get("/readyz").status == 200


def test_every_log_line_is_json(stack):
    for name in ("gunicorn.out", "gunicorn.err", "nginx.access.log"):
        lines = stack.log_lines(name)
        assert lines
        for line in lines:
            assert {"time", "level", "logger", "request_id"} <= set(line)


SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


def test_security_headers_through_nginx(client, stack):
    client.register()
    answers = {
        "app": client.get("/healthz"),
        "signed in": client.get("/api/auth/me"),
        "app error": client.get("/nope"),
        "nginx 413": client.post("/api/auth/login", b"x" * (2 * 1024 * 1024),
                                 headers={"Content-Type": "application/json"}),
        "metrics, kept private": client.get("/metrics"),
    }
    for name, response in answers.items():
        for header, value in SECURITY_HEADERS.items():
            assert response.headers.get_all(header) == [value], (name, header)
    assert answers["signed in"].headers["Cache-Control"] == "no-store"
    assert_error(answers["metrics, kept private"], 404, "not_found")


def scrape(stack) -> dict:
    """The samples of GET /metrics, asked of gunicorn's socket (nginx does not serve it):
    {(name, (sorted label pairs)): value}."""
    from prometheus_client.parser import text_string_to_metric_families
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(stack.socket))
    conn = http.client.HTTPConnection("localhost", timeout=10)
    conn.sock = sock
    try:
        conn.request("GET", "/metrics", headers={"Host": "localhost"})
        response = conn.getresponse()
        assert response.status == 200
        assert response.headers.get_content_type() == "text/plain"
        text = response.read().decode()
    finally:
        conn.close()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def healthz_count(samples) -> float:
    return samples.get(("chatconnect_http_requests_total",
                        (("method", "GET"), ("route", "/healthz"), ("status", "200"))), 0)


def test_metrics_add_up_every_worker(stack):
    before = healthz_count(scrape(stack))
    requests = 40
    with ThreadPoolExecutor(8) as pool:  # new connections: nginx spreads them over the workers
        statuses = list(pool.map(lambda _: Client(stack).get("/healthz").status, range(requests)))
    assert statuses == [200] * requests
    # Whichever worker answers the scrape, it counts the requests every worker served.
    for _ in range(4):
        samples = scrape(stack)
        assert healthz_count(samples) - before == requests
        assert samples[("chatconnect_worker_processes", ())] == WORKERS
        latency = ("chatconnect_http_request_duration_seconds_count",
                   (("method", "GET"), ("route", "/healthz")))
        assert samples[latency] >= requests
        assert samples[("chatconnect_db_pool_connections", (("state", "max"),))] == WORKERS * 4
        assert ("chatconnect_listener_connected", ()) in samples
        assert ("chatconnect_realtime_open", (("kind", "long_poll"),)) in samples
