"""Sign-up, sign-in and the signed-in user."""

from flask import Blueprint, current_app, request, session
from flask_login import current_user, login_required, login_user, logout_user

from .. import passwords, session_store
from ..db import transaction
from ..errors import ApiError
from ..repositories.users import UserRepository
from ..serialize import iso_utc
from ..validation import parse_body, text

bp = Blueprint("auth", __name__, url_prefix="/api/auth")

USERNAME = text(3, 64, pattern=r"[A-Za-z0-9_.-]+",
                pattern_message="may contain only letters, digits, '_', '.' and '-'")
PASSWORD = text(8, 1024)


def user_json(user) -> dict:
    return {"id": user.id, "username": user.username, "created_at": iso_utc(user.created_at)}


def _sign_in(conn, user) -> None:
    login_user(user)
    session_store.start(conn, session, user.id, request.user_agent.string or None,
                        current_app.config)


@bp.post("/register")
def register():
    body = parse_body({"username": USERNAME, "password": PASSWORD},
                      required=("username", "password"))
    password_hash = passwords.hash_password(body["password"])
    with transaction() as conn:
        users = UserRepository(conn)
        if users.username_taken(body["username"]):
            raise ApiError(409, "conflict", "that username is taken")
        user = users.create(body["username"], password_hash)
        _sign_in(conn, user)
    return {"user": user_json(user)}, 201


@bp.post("/login")
def login():
    body = parse_body({"username": text(1, 1024), "password": text(1, 1024)},
                      required=("username", "password"))
    with transaction() as conn:
        credentials = UserRepository(conn).get_credentials(body["username"])
    user, password_hash = credentials or (None, None)
    if not passwords.verify(password_hash, body["password"]):
        raise ApiError(401, "unauthorized", "wrong username or password")
    with transaction() as conn:
        if passwords.needs_rehash(password_hash):
            UserRepository(conn).set_password_hash(user.id, passwords.hash_password(body["password"]))
        _sign_in(conn, user)
    return {"user": user_json(user)}


@bp.post("/logout")
@login_required
def logout():
    with transaction() as conn:
        session_store.end(conn, session)
    logout_user()
    return "", 204


@bp.get("/me")
@login_required
def me():
    return {"user": user_json(current_user)}
