"""Who is calling: Flask-Login over the PostgreSQL session store, and the CSRF rule."""

from flask import current_app, g, request
from flask_login import LoginManager

from .db import transaction
from .errors import ApiError
from .repositories.users import UserRepository, user_from_row
from .session_store import PostgresSessionInterface, raise_if_unavailable

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PUBLIC_PREFIX = "/api/public/"

login_manager = LoginManager()
login_manager.session_protection = None  # sessions are server-side and rotated at sign-in


@login_manager.user_loader
def load_user(user_id: str):
    row = g.get("session_user_row")
    if row is not None and row["user_id"] == user_id:
        return user_from_row({**row, "id": row["user_id"]})
    with transaction() as conn:
        return UserRepository(conn).get(user_id)


@login_manager.unauthorized_handler
def unauthorized():
    raise ApiError(401, "unauthorized", "sign in or send a bearer token")


def _is_bearer_request() -> bool:
    return request.headers.get("Authorization", "").startswith("Bearer ")


def check_origin_for_cookie_requests():
    """Refuse unsafe cookie-authenticated requests sent from another site (CSRF)."""
    if request.method not in UNSAFE_METHODS or request.path.startswith(PUBLIC_PREFIX):
        return
    if _is_bearer_request():
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
    login_manager.init_app(app)
    app.before_request(raise_if_unavailable)
    app.before_request(check_origin_for_cookie_requests)
