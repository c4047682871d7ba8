"""Security headers on every answer of the app (nginx adds HSTS and Referrer-Policy)."""

from flask import request

from .session_store import PUBLIC_PREFIX, SIGNED_IN_PREFIX

# Nothing the API answers is meant to be rendered, run or framed by a browser.
CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
# Public and credential-free, like the widget route: shared caches may keep it.
PUBLIC_PATHS = frozenset({"/api/openapi.json"})


def is_signed_in_path(path: str) -> bool:
    """Routes that read a session cookie or a bearer token (sign-in and sign-up included)."""
    return (path.startswith(SIGNED_IN_PREFIX) and not path.startswith(PUBLIC_PREFIX)
            and path not in PUBLIC_PATHS)


def add_security_headers(response):
    headers = response.headers
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    # An answer for one signed-in user must never be stored by a browser or a shared cache.
    if is_signed_in_path(request.path):
        headers["Cache-Control"] = "no-store"
    return response


def init_app(app) -> None:
    app.after_request(add_security_headers)
