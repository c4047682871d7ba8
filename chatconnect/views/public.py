"""The widget's settings as customer sites fetch them: no cookie, no token, cacheable.

Every page view of every customer site calls this, so a request costs one query and one
JSON encoding, and no session work (see session_store)."""

import hashlib
import json

from flask import Blueprint, Response, request
from werkzeug.http import parse_etags

from ..db import single_statement
from ..errors import not_found
from ..origins import add_cors_headers, check_public_origin
from ..realtime import presence
from ..repositories.agent_presence import AgentPresenceRepository
from ..repositories.clients import ClientRepository
from ..serialize import iso_utc
from ..validation import is_public_api_key

bp = Blueprint("public", __name__, url_prefix="/api/public")
bp.after_request(add_cors_headers)

CACHE_CONTROL = "public, max-age=60"
STATUS_CACHE_CONTROL = "public, max-age=15"


def _allowed_widget(public_api_key: str):
    """The active client's widget for this key, if the request's Origin may use it."""
    if not is_public_api_key(public_api_key):
        raise not_found("widget")
    with single_statement() as conn:
        widget = ClientRepository(conn).get_public_widget_by_key(public_api_key)
    if widget is None:
        raise not_found("widget")
    check_public_origin(widget["allowed_domains"])
    return widget


def _etag(public_api_key: str, body: str) -> str:
    # The key is part of the tag so that rotating it invalidates cached copies; a suspended
    # client has no tag at all (404).
    return '"' + hashlib.sha256(f"{public_api_key}\n{body}".encode()).hexdigest()[:32] + '"'


@bp.get("/widgets/<public_api_key>", provide_automatic_options=False)
def get_widget(public_api_key):
    widget = _allowed_widget(public_api_key)
    body = json.dumps({
        "widget_name": widget["widget_name"],
        "primary_color": widget["primary_color"],
        "position": widget["position"],
        "welcome_message": widget["welcome_message"],
    }, separators=(",", ":"))
    etag = _etag(public_api_key, body)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    # If-None-Match uses the weak comparison (RFC 9110, 13.1.2), and `*` matches.
    if parse_etags(request.headers.get("If-None-Match")).contains_weak(etag[1:-1]):
        return Response(status=304, headers=headers)
    return Response(body, headers=headers, mimetype="application/json")


@bp.route("/widgets/<public_api_key>", methods=["OPTIONS"])
def preflight_widget(public_api_key):
    _allowed_widget(public_api_key)
    return "", 204


def _widget_status(public_api_key: str, conn=None):
    """The active client's presence for this key, if the request's Origin may ask."""
    if not is_public_api_key(public_api_key):
        raise not_found("widget")
    if conn is None:
        with single_statement() as conn:
            return _widget_status(public_api_key, conn)
    status = AgentPresenceRepository(conn).widget_status(public_api_key, presence.online_since())
    if status is None:
        raise not_found("widget")
    check_public_origin(status["allowed_domains"])
    return status


@bp.get("/widgets/<public_api_key>/status", provide_automatic_options=False)
def get_widget_status(public_api_key):
    """Whether the team is there: asked by the widget of every open page, so one statement."""
    now = presence.now()
    with single_statement() as conn:
        status = _widget_status(public_api_key, conn)
        open_now, next_open_at = presence.opening_status(conn, status["id"], now)
    body = {"agents_online": status["agents_online"], "open_now": open_now,
            "next_open_at": iso_utc(next_open_at)}
    return body, {"Cache-Control": STATUS_CACHE_CONTROL}


@bp.route("/widgets/<public_api_key>/status", methods=["OPTIONS"])
def preflight_widget_status(public_api_key):
    _widget_status(public_api_key)
    return "", 204
