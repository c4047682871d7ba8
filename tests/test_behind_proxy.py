"""Request ids, JSON log lines, forwarded headers and the database going away: the app's side
of running behind nginx (tests/test_deploy.py runs the real thing)."""

import json
import logging
import os
import re
import sys

import pytest

from chatconnect.logs import JsonFormatter, request_id

from .conftest import PASSWORD, unique_username

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize("supplied, kept", [
    ("9f1c2a7e-client-chosen", True),
    ("a" * 200, True),
    ("with spaces and ~!@#$%^&*() punctuation", True),
    ("a" * 201, False),
    ("a\tb", False),
    ("caf\u00e9", False),
])
def test_request_id_is_the_clients_when_valid_else_generated(client, supplied, kept):
    response = client.get("/healthz", headers={"X-Request-ID": supplied})
    request_id = response.headers["X-Request-ID"]
    assert request_id == supplied if kept else GENERATED_ID.fullmatch(request_id)


def test_each_request_without_an_id_gets_a_new_one(client):
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3 and all(GENERATED_ID.fullmatch(i) for i in ids)


def test_forked_processes_never_make_the_same_ids(app):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one id, then out without running any cleanup of the parent's
        with app.test_request_context():
            os.write(write_end, request_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child_id = os.read(read_end, 100).decode()
    with app.test_request_context():
        own_id = request_id()
    assert GENERATED_ID.fullmatch(child_id) and GENERATED_ID.fullmatch(own_id)
    assert child_id[:16] != own_id[:16]


@pytest.mark.parametrize("method, path, body, status", [
    ("GET", "/nope", None, 404),
    ("GET", "/api/auth/me", None, 401),
    ("POST", "/api/auth/register", {"username": "x"}, 422),
    ("DELETE", "/healthz", None, 405),
])
def test_error_responses_carry_the_request_id_too(client, method, path, body, status):
    response = client.open(path, method=method, json=body, headers={"X-Request-ID": "req-1"})
    assert response.status_code == status
    assert response.headers["X-Request-ID"] == "req-1"


def test_log_lines_are_json_with_the_request_id(app):
    formatter = JsonFormatter()
    with app.test_request_context(headers={"X-Request-ID": "req-7"}):
        try:
            raise ValueError("boom")
        except ValueError:
            record = logging.LogRecord("chatconnect.errors", logging.ERROR, __file__, 1,
                                       "failed %s", ("here",), sys.exc_info())
        line = json.loads(formatter.format(record))
    assert line["level"] == "ERROR" and line["logger"] == "chatconnect.errors"
    assert line["message"] == "failed here" and line["request_id"] == "req-7"
    assert line["time"].endswith("Z") and "ValueError: boom" in line["exception"]

    outside = logging.LogRecord("chatconnect.db", logging.INFO, __file__, 1, "started", (), None)
    assert json.loads(formatter.format(outside))["request_id"] is None


@pytest.mark.parametrize("hops, forwarded_proto, secure", [
    (1, "https", True),
    (1, "http", False),
    (0, "https", False),  # no trusted proxy: the header is the client's say-so
])
def test_forwarded_https_from_a_trusted_proxy_makes_the_cookie_secure(make_app, hops,
                                                                       forwarded_proto, secure):
    client = make_app(TRUSTED_PROXY_HOPS=str(hops)).test_client()  # development: Secure on https only
    response = client.post("/api/auth/register",
                           json={"username": unique_username(), "password": PASSWORD},
                           headers={"X-Forwarded-Proto": forwarded_proto})
    assert response.status_code == 201
    assert ("; Secure" in response.headers["Set-Cookie"]) is secure


def test_forwarded_host_from_a_trusted_proxy_is_the_apis_own_origin(make_app):
    client = make_app(TRUSTED_PROXY_HOPS="1").test_client()
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "chat.example.com",
               "Origin": "https://chat.example.com"}
    response = client.post("/api/auth/register",
                           json={"username": unique_username(), "password": PASSWORD},
                           headers=headers)
    assert response.status_code == 201
