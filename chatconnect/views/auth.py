"""Accounts: sign-up, sign-in, the signed-in user, password change, sessions and tokens."""

import secrets

from flask import Blueprint, current_app, request, session
from flask_login import current_user, login_required, login_user, logout_user

from .. import passwords, ratelimit, session_store
from ..db import transaction
from ..errors import ApiError, not_found
from ..repositories.api_tokens import MAX_TOKENS_PER_USER, ApiTokenRepository
from ..repositories.rate_limits import RateLimitRepository
from ..repositories.sessions import SessionRepository
from ..repositories.users import UserRepository, username_key
from ..serialize import iso_utc
from ..tokens import hash_secret
from ..validation import parse_body, text

bp = Blueprint("auth", __name__, url_prefix="/api/auth")

USERNAME = text(3, 64, pattern=r"[A-Za-z0-9_.-]+",
                pattern_message="may contain only letters, digits, '_', '.' and '-'")
PASSWORD = text(8, 1024)
# Sign-in and the current password check only the shape: older accounts predate the rules.
ANY_USERNAME = text(1)
# No account has a longer username (sign-up allows 64; the original application's are kept).
LONGEST_STORED_USERNAME = 1024
ANY_PASSWORD = text(1, 1024)
TOKEN_NAME = text(1, 100)
TOKEN_PREFIX = "cc_pat_"


def user_json(user) -> dict:
    return {"id": user.id, "username": user.username, "created_at": iso_utc(user.created_at)}


def session_json(row, current_session_id) -> dict:
    return {"id": str(row["id"]), "created_at": iso_utc(row["created_at"]),
            "last_seen_at": iso_utc(row["last_seen_at"]), "user_agent": row["user_agent"],
            "current": str(row["id"]) == current_session_id}


def token_json(row) -> dict:
    return {"id": str(row["id"]), "name": row["name"], "created_at": iso_utc(row["created_at"]),
            "last_used_at": iso_utc(row["last_used_at"])}


def new_token_json(row, token: str) -> dict:
    return {"id": str(row["id"]), "name": row["name"], "created_at": iso_utc(row["created_at"]),
            "token": token}


def _sign_in(conn, user) -> None:
    login_user(user)
    if session_store.start(conn, session, user.id, user.credentials_version,
                           request.user_agent.string or None, current_app.config) is None:
        # The password changed after this one was checked: it is no longer the password.
        raise ApiError(401, "unauthorized", "wrong username or password")


def _username_limit(username: str):
    return (f"login:user:{username_key(username)}",
            current_app.config["LOGIN_LIMIT_PER_USERNAME"])


def _ip_limit():
    return f"login:ip:{request.remote_addr or 'unknown'}", current_app.config["LOGIN_LIMIT_PER_IP"]


def _username_taken():
    return ApiError(409, "conflict", "that username is taken")


@bp.post("/register")
def register():
    body = parse_body({"username": USERNAME, "password": PASSWORD},
                      required=("username", "password"))
    # Every attempt counts against the client's IP, a taken name too (committed before the
    # 409), and a taken name is refused before any hashing: 409 tells no more than it did.
    with transaction() as conn:
        ratelimit.enforce(conn, f"register:ip:{request.remote_addr or 'unknown'}",
                          current_app.config["REGISTER_LIMIT_PER_IP"])
        taken = UserRepository(conn).username_taken(body["username"])
    if taken:
        raise _username_taken()
    with passwords.hashing_slot(sign_up=True):
        password_hash = passwords.hash_password(body["password"])
    with transaction() as conn:
        user = UserRepository(conn).create(body["username"], password_hash)
        if user is None:  # taken meanwhile
            raise _username_taken()
        _sign_in(conn, user)
    return {"user": user_json(user)}, 201


@bp.post("/login")
def login():
    body = parse_body({"username": ANY_USERNAME, "password": ANY_PASSWORD},
                      required=("username", "password"))
    username = body["username"]
    # A longer name is a wrong username like any other, counted under a key of bounded size.
    username_key, username_limit = _username_limit(username[:LONGEST_STORED_USERNAME])
    ip_key, ip_limit = _ip_limit()
    # Each attempt is counted before the password is checked, so parallel guesses cannot slip
    # past the limit; a successful one is taken back below. A refused one (429, or 503 when no
    # hashing slot is free) counts nothing.
    with passwords.hashing_slot():
        with transaction() as conn:
            ratelimit.enforce(conn, username_key, username_limit)
            ratelimit.enforce(conn, ip_key, ip_limit)
            credentials = (UserRepository(conn).get_credentials(username)
                           if len(username) <= LONGEST_STORED_USERNAME else None)
        user, password_hash = credentials or (None, None)
        if not passwords.verify(password_hash, body["password"]):
            raise ApiError(401, "unauthorized", "wrong username or password")
        upgraded_hash = (passwords.hash_password(body["password"])
                         if passwords.needs_rehash(password_hash) else None)
    with transaction() as conn:
        limits = RateLimitRepository(conn)
        limits.reset(username_key)
        limits.release(ip_key)
        if upgraded_hash:
            UserRepository(conn).upgrade_password_hash(user.id, password_hash, upgraded_hash)
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


@bp.post("/password")
@login_required
def change_password():
    """New hash, every token and every other session revoked, and the current session (if the
    request used one) renewed, all in one transaction. A bearer-token request has no session to
    keep, so it revokes every session and every token, the one it used included."""
    body = parse_body({"current_password": ANY_PASSWORD, "new_password": PASSWORD},
                      required=("current_password", "new_password"))
    user_id = current_user.id
    # Guessing the current password counts against the same limit as guessing it at sign-in.
    username_key, username_limit = _username_limit(current_user.username)
    with passwords.hashing_slot():
        with transaction() as conn:
            ratelimit.enforce(conn, username_key, username_limit)
            old_hash = UserRepository(conn).get_password_hash(user_id)
        if not passwords.verify(old_hash, body["current_password"]):
            raise ApiError(403, "forbidden", "the current password is wrong")
        new_hash = passwords.hash_password(body["new_password"])
    with transaction() as conn:
        new_version = UserRepository(conn).change_password(user_id, old_hash, new_hash,
                                                           current_user.credentials_version)
        if new_version is None:
            raise ApiError(403, "forbidden", "the password was changed meanwhile")
        RateLimitRepository(conn).reset(username_key)
        # The new version already ends them; deleting them keeps the tables clean.
        ApiTokenRepository(conn).delete_all_for_user(user_id)
        SessionRepository(conn).delete_all_for_user(user_id)
        if session.sid:
            session_store.start(conn, session, user_id, new_version,
                                request.user_agent.string or None, current_app.config)
    session_store.forget_sessions(user_id)
    return "", 204


@bp.get("/sessions")
@login_required
def list_sessions():
    with transaction() as conn:
        rows = SessionRepository(conn).list_live_for_user(current_user.id)
    return {"items": [session_json(row, session.public_id) for row in rows], "next_cursor": None}


@bp.delete("/sessions/<id:session_id>")
@login_required
def delete_session(session_id):
    user_id = current_user.id
    with transaction() as conn:
        if not SessionRepository(conn).delete_for_user(session_id, user_id):
            raise not_found("session")
        if session_id == session.public_id:
            session_store.end(conn, session)
            logout_user()
    session_store.forget_sessions(user_id)
    return "", 204


@bp.get("/tokens")
@login_required
def list_tokens():
    with transaction() as conn:
        rows = ApiTokenRepository(conn).list_for_user(current_user.id)
    return {"items": [token_json(row) for row in rows], "next_cursor": None}


@bp.post("/tokens")
@login_required
def create_token():
    body = parse_body({"name": TOKEN_NAME}, required=("name",))
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction() as conn:
        row = ApiTokenRepository(conn).create(current_user.id, current_user.credentials_version,
                                              body["name"], hash_secret(token))
        if row is None and not UserRepository(conn).credentials_current(
                current_user.id, current_user.credentials_version):
            # The password changed while this request ran: its session or token is revoked.
            raise ApiError(401, "unauthorized", "sign in or send a bearer token")
    if row is None:
        raise ApiError(409, "conflict",
                       f"you have {MAX_TOKENS_PER_USER} tokens already; delete one first")
    return new_token_json(row, token), 201


@bp.delete("/tokens/<id:token_id>")
@login_required
def delete_token(token_id):
    with transaction() as conn:
        if not ApiTokenRepository(conn).delete_for_user(token_id, current_user.id):
            raise not_found("token")
    return "", 204
