"""POST a webhook: to the checked address only, with hard time limits, reading little back."""

import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from .addresses import Refused, resolve, url_host_port

CONNECT_TIMEOUT = 3  # seconds
TOTAL_TIMEOUT = 10  # seconds, from the first connection attempt to the end of the response
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "ChatConnect-Webhooks/1.0"


@dataclass
class Outcome:
    status: int | None  # the HTTP status, None when no response came
    error: str | None  # why it did not succeed, None on a 2xx
    duration_ms: int
    body: bytes = b""

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to one given address, with SNI and certificate checks for the URL's host."""

    def __init__(self, address, port, hostname, **kwargs):
        super().__init__(address, port, **kwargs)
        self._hostname = hostname

    def connect(self):
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._hostname)


def _connect(scheme, addresses, port, host, deadline, context):
    """A connection to the first address that answers within the connect timeout."""
    error = None
    for address in addresses:
        timeout = min(CONNECT_TIMEOUT, deadline - time.monotonic())
        if timeout <= 0:
            break
        if scheme == "https":
            connection = _PinnedHTTPSConnection(address, port, host, timeout=timeout,
                                                context=context or ssl.create_default_context())
        else:
            connection = http.client.HTTPConnection(address, port, timeout=timeout)
        try:
            connection.connect()
            return connection
        except (OSError, ssl.SSLError) as exc:
            connection.close()
            error = exc
    raise error or TimeoutError("timed out")


def post(url: str, body: bytes, headers: dict, allow_private: bool,
         context: ssl.SSLContext | None = None) -> Outcome:
    """POST `body` to `url`; never raises for what the receiver or the network does.

    `context` replaces the system's certificate authorities (for tests).

    The host is resolved and checked on every call (see addresses.py). Redirects are not
    followed: a 3xx is an answer like any other that is not a 2xx."""
    started = time.monotonic()
    deadline = started + TOTAL_TIMEOUT

    def outcome(status=None, error=None, response_body=b""):
        return Outcome(status, error, round((time.monotonic() - started) * 1000), response_body)

    try:
        scheme, host, port = url_host_port(url)
        addresses = resolve(host, port, allow_private)
    except Refused as refused:
        return outcome(error=f"refused: {refused}")
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if scheme == "https" else 80
    host_header = (f"[{host}]" if ":" in host else host) + ("" if port == default_port else f":{port}")

    connection = None
    watchdog = None
    try:
        connection = _connect(scheme, addresses, port, host, deadline, context)
        # The socket timeout bounds each read; the watchdog bounds them all together, against
        # a receiver that trickles its answer a byte at a time.
        connection.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        watchdog = threading.Timer(max(deadline - time.monotonic(), 0), _shut, (connection.sock,))
        watchdog.daemon = True
        watchdog.start()
        connection.putrequest("POST", target, skip_host=True, skip_accept_encoding=True)
        for name, value in {"Host": host_header, "User-Agent": USER_AGENT,
                            "Content-Type": "application/json",
                            "Content-Length": str(len(body)), **headers}.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        response_body = response.read(MAX_RESPONSE_BYTES)
        if time.monotonic() >= deadline:
            return outcome(error=f"timed out after {TOTAL_TIMEOUT} s")
        if 200 <= response.status < 300:
            return outcome(response.status, None, response_body)
        return outcome(response.status, f"the receiver answered {response.status}", response_body)
    except (OSError, ssl.SSLError, http.client.HTTPException, ValueError) as exc:
        if time.monotonic() >= deadline:
            return outcome(error=f"timed out after {TOTAL_TIMEOUT} s")
        return outcome(error=_describe(exc))
    finally:
        if watchdog is not None:
            watchdog.cancel()
        if connection is not None:
            connection.close()


def _shut(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _describe(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted: {exc.verify_message}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return f"timed out connecting (after {CONNECT_TIMEOUT} s)"
    text = str(exc) or type(exc).__name__
    return text[:300]
