"""Flask sessions kept server-side in the PostgreSQL `session` table.

The cookie carries a random 256-bit id; the table keeps only its SHA-256 digest. Only signed-in
sessions are stored. A cookie the server cannot find (made up, expired, signed out) is never
adopted: the browser is told to drop it, and signing in always issues a fresh id."""

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import psycopg
from flask import g, request
from flask.sessions import SessionInterface, SessionMixin
from psycopg_pool import PoolTimeout
from werkzeug.datastructures import CallbackDict

from .db import transaction
from .repositories.sessions import SessionRepository

COOKIE_NAME = "chatconnect_session"
TOUCH_INTERVAL = timedelta(minutes=1)


def hash_secret(value: str) -> str:
    """SHA-256 hex digest: enough for random 256-bit secrets, which cannot be guessed."""
    return hashlib.sha256(value.encode()).hexdigest()


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, data=None, sid=None, last_seen_at=None):
        def on_update(self):
            self.modified = True
        super().__init__(data or {}, on_update)
        self.sid = sid
        self.last_seen_at = last_seen_at
        self.modified = False
        self.new_sid = False
        self.ended = False
        self.drop_cookie = False


def start(conn, session: ServerSession, user_id: str, user_agent: str | None, config) -> str:
    """Store `session` under a new id, replacing its old row; returns the session's public id.

    Called inside the view's transaction at sign-in and password change (no fixation)."""
    repo = SessionRepository(conn)
    if session.sid:
        repo.delete(hash_secret(session.sid))
    session.sid = secrets.token_urlsafe(32)
    session.new_sid = True
    return repo.create(hash_secret(session.sid), dict(session), user_id, user_agent,
                       config["SESSION_IDLE_TIMEOUT"], config["SESSION_MAX_LIFETIME"])


def end(conn, session: ServerSession) -> None:
    """Delete the current session's row; the response drops the cookie."""
    if session.sid:
        SessionRepository(conn).delete(hash_secret(session.sid))
    session.clear()
    session.sid = None
    session.ended = True


def raise_if_unavailable() -> None:
    """before_request: the database error that kept the session from loading fails the request."""
    if "session_unavailable" in g:
        raise g.session_unavailable


def cookie_name(app) -> str:
    return COOKIE_NAME if app.config["ENV"] == "development" else "__Host-" + COOKIE_NAME


class PostgresSessionInterface(SessionInterface):
    def open_session(self, app, request):
        sid = request.cookies.get(cookie_name(app))
        if not sid:
            return ServerSession()
        try:
            with transaction() as conn:
                row = SessionRepository(conn).get_live(hash_secret(sid))
        except (PoolTimeout, psycopg.OperationalError) as error:
            # Raised here, Flask would answer a bare 500 without the after-request steps;
            # raise_if_unavailable raises it again where the handlers answer 503.
            g.session_unavailable = error
            return ServerSession()
        if row is None:
            session = ServerSession()
            session.drop_cookie = True
            return session
        # The user row comes with the session, so the user loader needs no second query.
        g.session_user_row = row
        return ServerSession(row["sess"], sid=sid, last_seen_at=row["last_seen_at"])

    def save_session(self, app, session: ServerSession, response):
        name = cookie_name(app)
        secure = app.config["ENV"] != "development" or request.is_secure
        if session.ended or session.drop_cookie and not session.new_sid:
            response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="Lax")
            return
        if session.new_sid:
            response.set_cookie(name, session.sid, path="/", secure=secure, httponly=True,
                                samesite="Lax")
            return
        if session.sid and (session.modified or self._touch_due(session)):
            with transaction() as conn:
                SessionRepository(conn).touch(hash_secret(session.sid), dict(session),
                                              app.config["SESSION_IDLE_TIMEOUT"],
                                              app.config["SESSION_MAX_LIFETIME"])

    @staticmethod
    def _touch_due(session) -> bool:
        return datetime.now(UTC) - session.last_seen_at >= TOUCH_INTERVAL
