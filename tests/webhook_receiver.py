"""A real HTTP server on loopback that records the webhooks it receives."""

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WAIT_LIMIT = 30  # seconds: a bound for a wait that should end far sooner, not a measurement


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes


class Receiver:
    """Answers POSTs to each path with the statuses queued for it (200 when none is left).

    `hold(path)` makes requests to that path wait until `release(path)`, like a receiver that
    takes its time answering."""

    def __init__(self):
        self.requests: list[Received] = []
        self.statuses: dict[str, list[int]] = {}
        self.holds: dict[str, threading.Event] = {}
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.changed:
                    receiver.requests.append(Received(self.path, dict(self.headers), body))
                    receiver.changed.notify_all()
                    hold = receiver.holds.get(self.path)
                    queued = receiver.statuses.get(self.path)
                    status = queued.pop(0) if queued else 200
                if hold is not None:
                    hold.wait(WAIT_LIMIT)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"server trouble")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hold(self, path):
        self.holds[path] = threading.Event()

    def release(self, path):
        self.holds[path].set()

    def received(self, path=None) -> list[Received]:
        with self.changed:
            return [r for r in self.requests if path is None or r.path == path]

    def wait_for(self, count, path=None) -> list[Received]:
        """The requests to `path` once there are at least `count` of them."""
        deadline = time.monotonic() + WAIT_LIMIT
        with self.changed:
            while len(got := [r for r in self.requests if path is None or r.path == path]) < count:
                if not self.changed.wait(deadline - time.monotonic()):
                    raise AssertionError(f"{len(got)} requests to {path}, expected {count}")
            return got

    def close(self):
        for hold in self.holds.values():
            hold.set()
        self.server.shutdown()
        self.server.server_close()


def wait_until(predicate, what="the condition"):
    """Poll `predicate` until it is true; fail after WAIT_LIMIT seconds."""
    deadline = time.monotonic() + WAIT_LIMIT
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value
