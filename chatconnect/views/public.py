"""The widget's settings as customer sites fetch them: no cookie, no token, cacheable.

Every page view of every customer site calls this, so the answer comes ready-made from this
process's cache (chatconnect/widget_config.py) when it can, from one query when it cannot, and
no session work is done (see session_store)."""

from flask import Blueprint, Response, g, request
from werkzeug.http import parse_etags

from .. import widget_config
from ..db import single_statement
from ..errors import ApiError, not_found
from ..origins import add_cors_headers, check_public_origin
from ..realtime import presence
from ..repositories.agent_presence import AgentPresenceRepository
from ..serialize import iso_utc
from ..validation import is_public_api_key

bp = Blueprint("public", __name__, url_prefix="/api/public")
bp.after_request(add_cors_headers)

CACHE_CONTROL = "public, max-age=60"
STATUS_CACHE_CONTROL = "public, max-age=15"


def _allowed_widget(public_api_key: str) -> widget_config.WidgetConfig:
    """The active client's widget for this key, if the request's Origin may use it."""
    if not is_public_api_key(public_api_key):
        raise not_found("widget")
    config = widget_config.get(public_api_key)
    if config is None or not config.active:
        raise not_found("widget")
    check_public_origin(config.allowed_domains)
    return config


@bp.get("/widgets/<public_api_key>", provide_automatic_options=False)
def get_widget(public_api_key):
    try:
        config = _allowed_widget(public_api_key)
    except ApiError:
        # A browser hides an answer without Access-Control-Allow-Origin from the page, so the
        # widget could not tell a refusal from a network failure and would retry for ever.
        # This GET needs no preflight and its refusal reveals nothing, so the page may read it.
        g.cors_origin = request.headers.get("Origin")
        raise
    # If-None-Match uses the weak comparison (RFC 9110, 13.1.2), and `*` matches.
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match and parse_etags(if_none_match).contains_weak(config.etag[1:-1]):
        response = Response(status=304)
    else:
        response = Response(config.body, content_type="application/json")
    # Headers.add: a header dict given to Response costs twice as much, on the hottest route.
    response.headers.add("ETag", config.etag)
    response.headers.add("Cache-Control", CACHE_CONTROL)
    return response


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
