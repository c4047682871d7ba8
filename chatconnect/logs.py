"""JSON log lines and the request id that ties a request's log lines and response together."""

import itertools
import json
import logging
import os
import re
from datetime import UTC, datetime

from flask import has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
ENVIRON_KEY = "chatconnect.request_id"
# Whatever the client or proxy sends ends up in log lines: printable ASCII only, bounded.
VALID_REQUEST_ID = re.compile(r"[\x20-\x7e]{1,200}")


class _RequestIds:
    """New ids: 32 hex digits, a random half per process and a counter. A uuid4 per request
    cost a system call on the hottest route; uniqueness is all an id needs."""

    def __init__(self):
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self):
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def new(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


_new_ids = _RequestIds()


def _request_id_of(environ) -> str:
    supplied = environ.get("HTTP_X_REQUEST_ID", "")
    return supplied if VALID_REQUEST_ID.fullmatch(supplied) else _new_ids.new()


def request_id() -> str:
    """This request's id: the caller's valid `X-Request-ID`, or a new one."""
    environ = request.environ
    if ENVIRON_KEY not in environ:
        environ[ENVIRON_KEY] = _request_id_of(environ)
    return environ[ENVIRON_KEY]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id (null outside requests)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id() if has_request_context() else None,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def with_request_id(wsgi_app):
    """Every answer, errors included, carries its request's id."""
    def app(environ, start_response):
        request_id = environ[ENVIRON_KEY] = _request_id_of(environ)
        header = (REQUEST_ID_HEADER, request_id)

        def start(status, headers, exc_info=None):
            headers.append(header)
            return start_response(status, headers, exc_info)

        return wsgi_app(environ, start)
    return app


def init_app(app) -> None:
    root = logging.getLogger()
    # A host that configured logging already (a test runner, a logging config) keeps its own.
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        root.setLevel(app.config["LOG_LEVEL"])
    app.wsgi_app = with_request_id(app.wsgi_app)
