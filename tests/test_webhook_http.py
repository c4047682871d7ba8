"""The webhook HTTP client and its address guard, against real servers on loopback."""

import ipaddress
import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chatconnect.webhooks import http as webhook_http
from chatconnect.webhooks.addresses import Refused, is_public, resolve


@pytest.mark.parametrize("address, public", [
    ("93.184.215.14", True), ("8.8.8.8", True), ("2606:4700:4700::1111", True),
    ("127.0.0.1", False), ("127.8.9.10", False), ("10.0.0.1", False), ("172.16.5.4", False),
    ("192.168.0.1", False), ("169.254.169.254", False), ("100.64.0.1", False),
    ("100.127.255.254", False), ("0.0.0.0", False), ("255.255.255.255", False),
    ("224.0.0.1", False), ("198.18.0.1", False), ("::1", False), ("::", False),
    ("fd12:3456::1", False), ("fc00::1", False), ("fe80::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:8.8.8.8", False), ("64:ff9b::a00:1", False),
    ("2002:a00:1::1", False), ("ff02::1", False),
])
def test_which_addresses_are_public(address, public):
    assert is_public(ipaddress.ip_address(address)) is public


def test_resolve_refuses_names_of_private_addresses_and_unknown_names():
    with pytest.raises(Refused, match="non-public"):
        resolve("localhost", 443, allow_private=False)
    assert "127.0.0.1" in resolve("localhost", 443, allow_private=True)
    with pytest.raises(Refused, match="does not resolve"):
        resolve("no-such-host.invalid", 443, allow_private=True)
    assert resolve("93.184.215.14", 443, allow_private=False) == ["93.184.215.14"]


class Server:
    """A loopback HTTP(S) server whose handler the test chooses."""

    def __init__(self, handle, tls_context=None):
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests.append((self.path, dict(self.headers), body))
                handle(self)

            def log_message(self, *args):
                pass

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # the client hangs up mid-answer on purpose in some tests

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        if tls_context is not None:
            self.httpd.socket = tls_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def answer(status, body=b"", headers=()):
    def handle(handler):
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return handle


@pytest.fixture
def serve():
    servers = []

    def start(handle, tls_context=None):
        servers.append(Server(handle, tls_context))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_a_post_with_its_headers(serve):
    server = serve(answer(204))
    outcome = webhook_http.post(f"http://127.0.0.1:{server.port}/in?x=1", b'{"a":1}',
                                {"ChatConnect-Event-Id": "7"}, allow_private=True)
    assert (outcome.succeeded, outcome.status, outcome.error) == (True, 204, None)
    [(path, headers, body)] = server.requests
    assert (path, body) == ("/in?x=1", b'{"a":1}')
    assert headers["Host"] == f"127.0.0.1:{server.port}"
    assert headers["ChatConnect-Event-Id"] == "7"
    assert headers["Content-Type"] == "application/json"


def test_a_redirect_is_not_followed(serve):
    target = serve(answer(200))
    server = serve(answer(307, headers=[("Location", f"http://127.0.0.1:{target.port}/")]))
    outcome = webhook_http.post(f"http://127.0.0.1:{server.port}/", b"{}", {}, True)
    assert (outcome.succeeded, outcome.status) == (False, 307)
    assert target.requests == []


def test_at_most_64_kib_of_the_answer_is_read(serve):
    server = serve(answer(500, b"x" * (1024 * 1024)))
    outcome = webhook_http.post(f"http://127.0.0.1:{server.port}/", b"{}", {}, True)
    assert outcome.status == 500 and len(outcome.body) == webhook_http.MAX_RESPONSE_BYTES


def test_a_receiver_that_trickles_is_cut_off_at_the_total_timeout(serve, monkeypatch):
    monkeypatch.setattr(webhook_http, "TOTAL_TIMEOUT", 1)
    stop = threading.Event()

    def trickle(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        while not stop.is_set():  # a byte every 0.2 s: each read is quick, the whole is not
            handler.wfile.write(b"x")
            handler.wfile.flush()
            stop.wait(0.2)

    server = serve(trickle)
    try:
        outcome = webhook_http.post(f"http://127.0.0.1:{server.port}/", b"{}", {}, True)
    finally:
        stop.set()
    assert not outcome.succeeded and outcome.error == "timed out after 1 s"


def test_connection_refused_is_an_outcome_not_an_exception():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    outcome = webhook_http.post(f"http://127.0.0.1:{port}/", b"{}", {}, True)
    assert (outcome.status, outcome.error) == (None, "connection refused")


def test_a_non_public_address_is_refused_before_connecting(serve):
    server = serve(answer(200))
    for host in ("127.0.0.1", "localhost"):
        outcome = webhook_http.post(f"http://{host}:{server.port}/", b"{}", {}, False)
        assert outcome.error.startswith("refused: ") and outcome.status is None
    assert server.requests == []


def test_the_checked_address_is_the_one_connected_to(serve, monkeypatch):
    """A name is resolved once: a second answer (DNS rebinding) is never used."""
    server = serve(answer(200))
    real_getaddrinfo = socket.getaddrinfo
    calls = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host[0].isdigit():  # an address literal: no DNS involved
            return real_getaddrinfo(host, port, *args, **kwargs)
        calls.append(host)
        # The first answer points at the receiver; a rebinding DNS server would answer the
        # second question with an internal address.
        address = "127.0.0.1" if len(calls) == 1 else "10.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    outcome = webhook_http.post(f"http://hooks.rebind.test:{server.port}/", b"{}", {}, True)
    assert outcome.succeeded and calls == ["hooks.rebind.test"]
    assert server.requests[0][1]["Host"] == f"hooks.rebind.test:{server.port}"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for `hooks.example.test` (and nothing else)."""
    directory = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=hooks.example.test",
                    "-addext", "subjectAltName=DNS:hooks.example.test",
                    "-keyout", directory / "key.pem", "-out", directory / "cert.pem"],
                   check=True, capture_output=True)
    return directory / "cert.pem", directory / "key.pem"


def test_https_keeps_sni_and_host_and_checks_the_certificate(serve, certificate, monkeypatch):
    cert, key = certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    names = []
    server_context.sni_callback = lambda sock, name, context: names.append(name)
    server = serve(answer(200), server_context)
    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: real_getaddrinfo(
        "127.0.0.1" if host.endswith(".test") else host, port, *a, **k))
    trusting = ssl.create_default_context(cafile=str(cert))

    outcome = webhook_http.post(f"https://hooks.example.test:{server.port}/", b"{}", {},
                                True, context=trusting)
    assert outcome.succeeded, outcome.error
    assert names == ["hooks.example.test"]
    assert server.requests[0][1]["Host"] == f"hooks.example.test:{server.port}"

    # The same server under another name: the certificate does not match, nothing is sent.
    outcome = webhook_http.post(f"https://other.example.test:{server.port}/", b"{}", {},
                                True, context=trusting)
    assert not outcome.succeeded and outcome.error.startswith("TLS certificate not accepted")
    # And a certificate nobody vouches for is refused with the system's authorities.
    outcome = webhook_http.post(f"https://hooks.example.test:{server.port}/", b"{}", {}, True)
    assert not outcome.succeeded and outcome.error.startswith("TLS certificate not accepted")
    assert len(server.requests) == 1
