"""Keyset pagination: `limit` and an opaque, signed `cursor` naming the last row seen."""

from flask import current_app, request
from itsdangerous import BadData, URLSafeSerializer

from .errors import validation_error
from .validation import query_integer

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


def _serializer():
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="chatconnect.cursor")


def page_params() -> tuple[int, list | None]:
    """(limit, the key of the last row of the previous page or None)."""
    limit = query_integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    cursor = request.args.get("cursor")
    if cursor is None:
        return limit, None
    try:
        after = _serializer().loads(cursor)
    except BadData:
        raise validation_error({"cursor": "is not a cursor this server issued"}) from None
    return limit, after


def page(rows: list, limit: int, to_json, key) -> dict:
    """The page envelope for rows fetched with LIMIT limit + 1; `key(row)` is the sort key."""
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _serializer().dumps(key(rows[-1])) if more else None
    return {"items": [to_json(row) for row in rows], "next_cursor": next_cursor}
