"""Security headers on every answer of the app (nginx adds HSTS and Referrer-Policy).

Added to the WSGI status line's header list, after Flask is done: a header set through
werkzeug's Headers costs more than the whole of this, on the hottest route."""

from .session_store import PUBLIC_PREFIX, SIGNED_IN_PREFIX

# Nothing the API answers is meant to be rendered, run or framed by a browser; the pages of the
# development demo set a policy of their own.
CONTENT_SECURITY_POLICY = ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
NOSNIFF = ("X-Content-Type-Options", "nosniff")
# Public and credential-free, like the widget route: shared caches may keep it.
PUBLIC_PATHS = frozenset({"/api/openapi.json"})


def is_signed_in_path(path: str) -> bool:
    """Routes that read a session cookie or a bearer token (sign-in and sign-up included)."""
    return (path.startswith(SIGNED_IN_PREFIX) and not path.startswith(PUBLIC_PREFIX)
            and path not in PUBLIC_PATHS)


def with_security_headers(wsgi_app):
    def app(environ, start_response):
        signed_in = is_signed_in_path(environ.get("PATH_INFO", ""))

        def start(status, headers, exc_info=None):
            if signed_in:
                # An answer for one signed-in user must never be stored by a browser or a
                # shared cache.
                headers = [h for h in headers if h[0].lower() != "cache-control"]
                headers.append(("Cache-Control", "no-store"))
            headers.append(NOSNIFF)
            if not any(name.lower() == "content-security-policy" for name, _ in headers):
                headers.append(CONTENT_SECURITY_POLICY)
            return start_response(status, headers, exc_info)

        return wsgi_app(environ, start)
    return app


def init_app(app) -> None:
    app.wsgi_app = with_security_headers(app.wsgi_app)
