"""Who is calling: Flask-Login over the PostgreSQL session store or a personal access token,
and the CSRF rule for cookie requests."""

import re
from datetime import UTC, datetime

from flask import current_app, g, request
from flask_login import LoginManager

from .db import transaction
from .errors import ApiError
from .repositories.api_tokens import ApiTokenRepository
from .repositories.users import user_from_row
from .session_store import (PUBLIC_PREFIX, TOUCH_INTERVAL, PostgresSessionInterface,
                            is_bearer_request, raise_load_error)
from .tokens import hash_secret

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TOKEN_PATTERN = re.compile(r"cc_pat_[A-Za-z0-9_-]{43}")

login_manager = LoginManager()
login_manager.session_protection = None  # sessions are server-side and rotated at sign-in
# With session protection off, Flask-Login still hashes the caller's address and user agent
# (SHA-512) on every signed-in request before it looks at the mode; nothing reads the result.
login_manager._session_identifier_generator = lambda: None


@login_manager.user_loader
def load_user(user_id: str):
    """The user of the stored session, which open_session read together with its user row.

    Nothing else is trusted with a user id (Flask-Login's remember-me cookie is off)."""
    row = g.get("session_user_row")
    if row is None or row["user_id"] != user_id:
        return None
    return user_from_row({**row, "id": row["user_id"]})


@login_manager.request_loader
def load_user_from_token(request):
    """The owner of the request's `Authorization: Bearer cc_pat_…` token, or None (401).

    A request with a bearer header never falls back to the cookie: the session store does not
    read it for such requests."""
    if not is_bearer_request(request):
        return None
    token = request.headers["Authorization"].partition(" ")[2].strip()
    if not TOKEN_PATTERN.fullmatch(token):
        return None
    with transaction() as conn:
        tokens = ApiTokenRepository(conn)
        row = tokens.get_with_user(hash_secret(token))
        # Like the session touch: a token used all the time costs a write once a minute only.
        if row and (row["last_used_at"] is None
                    or datetime.now(UTC) - row["last_used_at"] >= TOUCH_INTERVAL):
            tokens.mark_used(row["id"])
    return user_from_row({**row, "id": row["user_id"]}) if row else None


@login_manager.unauthorized_handler
def unauthorized():
    raise ApiError(401, "unauthorized", "sign in or send a bearer token")


def check_origin_for_cookie_requests():
    """Refuse unsafe cookie-authenticated requests sent from another site (CSRF)."""
    if request.method not in UNSAFE_METHODS or request.path.startswith(PUBLIC_PREFIX):
        return
    if is_bearer_request(request):
        return
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise ApiError(403, "forbidden", "cross-site requests are not allowed")
    origin = request.headers.get("Origin")
    if origin is None:
        return
    own_origin = f"{request.scheme}://{request.host}"
    if origin != own_origin and origin not in current_app.config["DASHBOARD_ORIGINS"]:
        raise ApiError(403, "forbidden", "requests from this origin are not allowed")


def init_app(app) -> None:
    app.session_interface = PostgresSessionInterface()
    # No request can carry a cookie named with ';', so Flask-Login's remember-me cookie is never
    # read: a stray `remember_token` cookie would otherwise keep the token loader from running.
    app.config["REMEMBER_COOKIE_NAME"] = ";remember-me-is-off"
    login_manager.init_app(app)
    app.before_request(raise_load_error)
    app.before_request(check_origin_for_cookie_requests)
