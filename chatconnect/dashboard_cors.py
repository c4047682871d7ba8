"""CORS of the signed-in API for the dashboard frontend served from its own origin.

Each origin of DASHBOARD_ORIGINS (exactly as configured, scheme and port included) may call
every route outside /api/public/ with credentials; any other origin gets no CORS header, so
browsers do not let its pages read the answers. Whether the session cookie travels is the
browser's call (it is SameSite=Lax: only same-site pages send it; see the README)."""

from flask import current_app, request

from .session_store import PUBLIC_PREFIX, SIGNED_IN_PREFIX

ALLOWED_HEADERS = "Content-Type, Authorization, If-None-Match, Last-Event-ID, X-Request-ID"
EXPOSED_HEADERS = "Retry-After, ETag, X-Request-ID"
PREFLIGHT_MAX_AGE = "600"


def _is_signed_in_api(path: str) -> bool:
    return (path.startswith(SIGNED_IN_PREFIX) and not path.startswith(PUBLIC_PREFIX)
            and path != "/api/openapi.json")  # public, with `*`


def _dashboard_origin():
    origin = request.headers.get("Origin")
    return origin if origin in current_app.config["DASHBOARD_ORIGINS"] else None


def answer_preflight():
    """before_request: a dashboard's preflight of a route that exists gets its methods."""
    if (request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers
            or not _is_signed_in_api(request.path) or request.url_rule is None
            or _dashboard_origin() is None):
        return None
    response = current_app.make_default_options_response()
    response.status_code = 204
    methods = sorted(set(response.allow) - {"HEAD", "OPTIONS"})
    response.headers["Access-Control-Allow-Methods"] = ", ".join(methods)
    response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    return response


def add_cors_headers(response):
    """after_request: every signed-in answer varies with Origin; a dashboard's may be read."""
    if not _is_signed_in_api(request.path):
        return response
    response.headers.add("Vary", "Origin")  # no view sets Vary; two lines would still be valid
    origin = _dashboard_origin()
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    return response


def init_app(app) -> None:
    app.before_request(answer_preflight)
    app.after_request(add_cors_headers)
