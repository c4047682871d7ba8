"""What only a real server shows: bodies sent in chunks, without a Content-Length."""

import http.client
import json

import pytest

from .conftest import unique_username
from .live_server import LiveServer


@pytest.fixture(scope="module")
def server(database_url, tmp_path_factory):
    live = LiveServer(database_url, tmp_path_factory.mktemp("http-edges"))
    try:
        yield live
    finally:
        live.stop()


def post_chunked(server, path, body: bytes):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        chunks = (body[i:i + 4096] for i in range(0, len(body), 4096))
        conn.request("POST", path, body=chunks, encode_chunked=True,
                     headers={"Content-Type": "application/json",
                              "Transfer-Encoding": "chunked"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def sign_in_body(padding: int) -> bytes:
    """A complete sign-in, then spaces: cut anywhere after the JSON, it still parses."""
    body = json.dumps({"username": unique_username(), "password": "wrong password"}).encode()
    return body + b" " * (padding - len(body))


def test_a_chunked_body_over_64_kib_is_413_not_cut_short(server):
    status, body = post_chunked(server, "/api/auth/login", sign_in_body(64 * 1024 + 1))
    assert status == 413
    assert body["error"]["code"] == "payload_too_large"


def test_a_chunked_body_of_64_kib_is_read_whole(server):
    status, body = post_chunked(server, "/api/auth/login", sign_in_body(64 * 1024))
    assert status == 401
    assert body["error"]["code"] == "unauthorized"
