"""JSON log lines and the request id that ties a request's log lines and response together."""

import json
import logging
import re
import uuid
from datetime import UTC, datetime

from flask import g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
# Whatever the client or proxy sends ends up in log lines: printable ASCII only, bounded.
VALID_REQUEST_ID = re.compile(r"[\x20-\x7e]{1,200}")


def request_id() -> str:
    """This request's id: the caller's valid `X-Request-ID`, or a new uuid4 hex."""
    if "request_id" not in g:
        supplied = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = supplied if VALID_REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex
    return g.request_id


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


def _echo_request_id(response):
    response.headers[REQUEST_ID_HEADER] = request_id()
    return response


def init_app(app) -> None:
    root = logging.getLogger()
    # A host that configured logging already (a test runner, a logging config) keeps its own.
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        root.setLevel(app.config["LOG_LEVEL"])
    app.after_request(_echo_request_id)
