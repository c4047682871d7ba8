"""The shipped gunicorn config's gevent worker: waiting visitors and password hashing cost the
other requests of the worker nothing."""

import http.client
import json
import os
import secrets
import selectors
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from werkzeug.security import generate_password_hash

from chatconnect.tokens import hash_secret

from .conftest import PASSWORD, unique_username
from .test_deploy import INHERITED_SETTINGS, free_port, wait_until

REPO = Path(__file__).resolve().parent.parent
WAITERS = 200
HANG_BOUND = 60  # seconds: only a hang takes this long
# A stored hash whose check takes far longer than a request (scrypt N=2^18, 256 MiB).
SLOW_HASH_METHOD = "scrypt:262144:8:1"


class Server:
    def __init__(self, port: int, log_path: Path):
        self.port = port
        self.log_path = log_path

    def request(self, method, path, body=None, headers=None):
        """(status, parsed JSON body or None, headers)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HANG_BOUND)
        headers = dict(headers or {})
        if body is not None:
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, response.headers
        finally:
            conn.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def one_worker(database_url, tmp_path):
    """gunicorn with deploy/gunicorn.conf.py, one gevent worker, on a free loopback port."""
    port = free_port()
    env = {name: value for name, value in os.environ.items()
           if not INHERITED_SETTINGS.fullmatch(name)}
    env.update({"DATABASE_URL": database_url, "CHATCONNECT_ENV": "development",
                "SECRET_KEY": "gevent-worker-test", "GUNICORN_WORKERS": "1",
                "LOGIN_LIMIT_PER_USERNAME": "1000/60", "LOGIN_LIMIT_PER_IP": "1000/60"})
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
             "--bind", f"127.0.0.1:{port}"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    server = Server(port, log_path)

    def answers():
        try:
            return server.request("GET", "/healthz")[0] == 200
        except OSError:
            return False

    try:
        wait_until(answers, "gunicorn to start", HANG_BOUND, server.log)
        yield server
    finally:
        process.terminate()
        process.wait(HANG_BOUND)
    assert "MonkeyPatchWarning" not in server.log()


def sql(database_url, query, params=None):
    with psycopg.connect(database_url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else None


def new_owner_and_client(server, database_url):
    """(Cookie header of a signed-in owner, their client's id, its public key)."""
    username = unique_username()
    status, _, headers = server.request("POST", "/api/auth/register",
                                        {"username": username, "password": PASSWORD})
    assert status == 201
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    status, client, _ = server.request("POST", "/api/clients", {"name": "Shop"},
                                       {"Cookie": cookie})
    assert status == 201
    return cookie, client["id"], client["public_api_key"]


def conversations(database_url, client_id, count):
    """(conversation id, visitor token, first message id) of `count` new conversations."""
    tokens = [secrets.token_urlsafe(32) for _ in range(count)]
    with psycopg.connect(database_url) as conn:
        started = []
        for token in tokens:
            conversation_id, = conn.execute(
                "INSERT INTO conversations (client_id, visitor_token_hash) VALUES (%s, %s) "
                "RETURNING id", (client_id, hash_secret(token))).fetchone()
            message_id, = conn.execute(
                "INSERT INTO messages (conversation_id, sender, body) "
                "VALUES (%s, 'visitor', 'hello') RETURNING id", (conversation_id,)).fetchone()
            started.append((str(conversation_id), token, message_id))
    return started


def open_long_poll(port, conversation_id, token, after) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), HANG_BOUND)
    sock.sendall(
        f"GET /api/public/conversations/{conversation_id}/messages?after={after}&wait=25 "
        f"HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Visitor-Token: {token}\r\nConnection: close\r\n\r\n"
        .encode())
    return sock


def read_response(sock) -> tuple[int, dict]:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    return status, json.loads(body)


def dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        size = int(size, 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out


def nothing_answered(socks) -> bool:
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        return not selector.select(timeout=0)


def test_one_worker_serves_the_widget_while_200_visitors_wait_in_it(one_worker, database_url):
    cookie, client_id, public_api_key = new_owner_and_client(one_worker, database_url)
    started = conversations(database_url, client_id, WAITERS)
    waiting = [open_long_poll(one_worker.port, cid, token, first)
               for cid, token, first in started]
    try:
        wait_until(lambda: sql(database_url, "SELECT count(*) FROM pg_stat_activity "
                                             "WHERE query LIKE 'LISTEN%%' AND datname = current_database()")[0][0] >= 1,
                   "the worker's listener", HANG_BOUND)
        for _ in range(3):
            status, widget, _ = one_worker.request("GET", f"/api/public/widgets/{public_api_key}")
            assert status == 200 and widget["widget_name"] == "Support"
            status, _, _ = one_worker.request("GET", "/healthz")
            assert status == 200
        assert nothing_answered(waiting)

        for (conversation_id, _, _), sock in zip(started, waiting):
            status, reply, _ = one_worker.request(
                "POST", f"/api/clients/{client_id}/conversations/{conversation_id}/messages",
                {"body": f"reply to {conversation_id}"}, {"Cookie": cookie})
            assert status == 201
            status, answer = read_response(sock)
            assert status == 200
            assert [m["id"] for m in answer["items"]] == [reply["id"]]
    finally:
        for sock in waiting:
            sock.close()


def test_password_hashing_leaves_the_worker_free_for_other_requests(one_worker, database_url):
    _, _, public_api_key = new_owner_and_client(one_worker, database_url)
    username = unique_username("slow")
    sql(database_url, "INSERT INTO users (username, password) VALUES (%s, %s)",
        (username, generate_password_hash(PASSWORD, method=SLOW_HASH_METHOD)))
    order = []

    def sign_in():
        status, _, _ = one_worker.request("POST", "/api/auth/login",
                                          {"username": username, "password": "wrong password"})
        order.append("sign-in")
        return status

    def widget():
        status, _, _ = one_worker.request("GET", f"/api/public/widgets/{public_api_key}")
        order.append("widget")
        return status

    with ThreadPoolExecutor(2) as pool:
        signing_in = pool.submit(sign_in)
        # The slow hash takes far longer than this: the widget request meets it in progress.
        time.sleep(0.2)
        assert widget() == 200
        assert signing_in.result(HANG_BOUND) == 401
    assert order == ["widget", "sign-in"]
