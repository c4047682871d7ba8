"""Keyset pagination: `limit` and an opaque, signed `cursor` naming the last row seen.

A cursor holds the (timestamp, id) sort key of that row as base64url JSON, with an HMAC-SHA256
under a key of its list's own (derived from SECRET_KEY), so a cursor from another list, or one
the server did not issue, is a validation_error. (itsdangerous took ten times as long, on every
page of every list.)"""

import base64
import binascii
import hashlib
import hmac
import json
from datetime import UTC, datetime
from functools import lru_cache

from flask import current_app, request

from .errors import validation_error
from .serialize import iso_utc
from .validation import query_integer

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


@lru_cache(maxsize=64)
def _list_key(secret_key: str, list_name: str) -> bytes:
    return hmac.new(secret_key.encode(), f"cursor:{list_name}".encode(), hashlib.sha256).digest()


def _signature(list_name: str, body: bytes) -> bytes:
    key = _list_key(current_app.config["SECRET_KEY"], list_name)
    return _b64(hmac.new(key, body, hashlib.sha256).digest()[:16])


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


def page_params(list_name: str) -> tuple[int, tuple[datetime, str] | None]:
    """(limit, the (timestamp, id) key of the last row of the previous page, or None)."""
    limit = query_integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    return limit, read_cursor(list_name, _timestamp_key)


def _timestamp_key(payload) -> tuple[datetime, str]:
    timestamp, row_id = payload
    return datetime.fromisoformat(timestamp).astimezone(UTC), str(row_id)


def read_cursor(list_name: str, parse):
    """The request's `cursor`, unsigned and passed through `parse` (which raises TypeError or
    ValueError on a payload it does not expect), or None without one."""
    cursor = request.args.get("cursor")
    if cursor is None:
        return None
    try:
        body, _, signature = cursor.encode("ascii").partition(b".")
        if not hmac.compare_digest(signature, _signature(list_name, body)):
            raise ValueError("not signed by this server")
        return parse(json.loads(_unb64(body)))
    except (TypeError, ValueError, binascii.Error):
        raise validation_error({"cursor": "is not a cursor this server issued for this list"}) \
            from None


def issue_cursor(list_name: str, payload) -> str:
    """A cursor that read_cursor(list_name, …) accepts, holding the JSON value `payload`."""
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return (body + b"." + _signature(list_name, body)).decode()


def cursor_after(list_name: str, sort_value: datetime, row_id) -> str:
    """The cursor of the page that follows the row with this (timestamp, id) sort key."""
    return issue_cursor(list_name, [iso_utc(sort_value), str(row_id)])


def page(rows: list, limit: int, to_json, list_name: str, sort_column: str) -> dict:
    """The page envelope for rows fetched with LIMIT limit + 1, sorted by (sort_column, id)."""
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = cursor_after(list_name, last[sort_column], last["id"])
    return {"items": [to_json(row) for row in rows], "next_cursor": next_cursor}


def page_json(items_json: str, next_cursor: str | None) -> str:
    """The page envelope around items that PostgreSQL wrote as a JSON array already."""
    return f'{{"items":{items_json},"next_cursor":{json.dumps(next_cursor)}}}'

