"""Flask sessions kept server-side in the PostgreSQL `session` table.

The cookie carries a random 256-bit id; the table keeps only its SHA-256 digest. Only signed-in
sessions are stored. A cookie the server cannot find (made up, expired, signed out) is never
adopted: the browser is told to drop it, and signing in always issues a fresh id.

Requests that carry a bearer token, and routes that never need a user (the public widget API,
health probes), do not read the cookie at all."""

import secrets
from datetime import UTC, datetime, timedelta

import psycopg
from flask import current_app, g, request, session
from flask.sessions import SessionInterface, SessionMixin
from psycopg_pool import PoolTimeout
from werkzeug.datastructures import CallbackDict

from .caches import NotifiedCache, process_cache
from .db import single_statement, transaction
from .repositories.sessions import SessionRepository
from .tokens import hash_secret

COOKIE_NAME = "chatconnect_session"
TOUCH_INTERVAL = timedelta(minutes=1)
# Only signed-in API routes read the cookie: probes and the routes called from customer sites
# (which take no cookie) never look a session up.
SIGNED_IN_PREFIX = "/api/"
PUBLIC_PREFIX = "/api/public/"
CACHE_CHANNEL = "chatconnect_sessions"
CACHE_EXTENSION = "session_cache"


def is_bearer_request(request) -> bool:
    """Whether the request authenticates with `Authorization: Bearer …` (and not the cookie)."""
    scheme = request.headers.get("Authorization", "").split(" ", 1)[0]
    return scheme.lower() == "bearer"


def _uses_cookie(request) -> bool:
    path = request.path
    return (path.startswith(SIGNED_IN_PREFIX) and not path.startswith(PUBLIC_PREFIX)
            and not is_bearer_request(request))


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, data=None, sid=None, last_seen_at=None, public_id=None):
        def on_update(self):
            self.modified = True
        super().__init__(data or {}, on_update)
        self.sid = sid
        self.public_id = public_id  # the row's id column, shown in the session list
        self.last_seen_at = last_seen_at
        self.modified = False
        self.new_sid = False
        self.ended = False
        self.drop_cookie = False
        self.load_error = None


def start(conn, session: ServerSession, user_id: str, credentials_version: int,
          user_agent: str | None, config) -> str | None:
    """Store `session` under a new id, replacing its old row; returns the session's public id,
    or None when the user's credentials are no longer at `credentials_version` (the caller
    must then fail the request, which rolls the transaction back).

    Called inside the view's transaction at sign-in and password change (no fixation)."""
    repo = SessionRepository(conn)
    if session.sid:
        repo.delete(hash_secret(session.sid))
        forget_sessions(hash_secret(session.sid))
    session.sid = secrets.token_urlsafe(32)
    session.new_sid = True
    public_id = repo.create(hash_secret(session.sid), dict(session), user_id, credentials_version,
                            user_agent, config["SESSION_IDLE_TIMEOUT"],
                            config["SESSION_MAX_LIFETIME"])
    session.public_id = str(public_id) if public_id else None
    return session.public_id


def end(conn, session: ServerSession) -> None:
    """Delete the current session's row; the response drops the cookie.

    Without a stored session (a bearer-token request) there is nothing to end."""
    if not session.sid:
        return
    SessionRepository(conn).delete(hash_secret(session.sid))
    forget_sessions(hash_secret(session.sid))
    session.clear()
    session.sid = None
    session.public_id = None
    session.ended = True


def _load_session(sid_hash: str):
    with single_statement() as conn:
        return SessionRepository(conn).get_live(sid_hash)


def _user_of(row):
    return row["user_id"] if row is not None else None


def session_cache(app) -> NotifiedCache:
    """This process's cache of live sessions (with their user rows) by cookie hash.

    The triggers on `session` and `users` notify CACHE_CHANNEL with the session's hash and its
    user's id whenever a session is touched, revoked, signed out or deleted, or its user
    changes (a password change deletes the user's sessions in the same transaction)."""
    return process_cache(app, CACHE_EXTENSION, "sessions", app.config["SESSION_CACHE_SIZE"],
                         _user_of, CACHE_CHANNEL)


def _live_session(app, sid_hash: str):
    row = session_cache(app).get(sid_hash, _load_session)
    # A cached session still ends on time, without a notification.
    if row is not None and row["expire"] <= datetime.now(UTC).replace(tzinfo=None):
        return None
    return row


def forget_sessions(*words: str) -> None:
    """Drop cached sessions (by cookie hash or user id) here and now, after this process
    revoked them; the other processes hear of it from the triggers a moment later."""
    cache = current_app.extensions.get(CACHE_EXTENSION)
    if cache is not None:
        cache.forget(*words)


def raise_load_error() -> None:
    """Before each request: if the database could not be asked for the session, fail the
    request here, where the error handlers answer 503."""
    if session.load_error is not None:
        raise session.load_error


def cookie_name(app) -> str:
    return COOKIE_NAME if app.config["ENV"] == "development" else "__Host-" + COOKIE_NAME


class PostgresSessionInterface(SessionInterface):
    def open_session(self, app, request):
        if not _uses_cookie(request):  # before parsing cookies: the widget route is hot
            return ServerSession()
        sid = request.cookies.get(cookie_name(app))
        if not sid:
            return ServerSession()
        try:
            row = _live_session(app, hash_secret(sid))
        except (PoolTimeout, psycopg.OperationalError) as error:
            # Raised outside a view this would be a bare 500; see raise_load_error.
            session = ServerSession()
            session.load_error = error
            return session
        if row is None:
            session = ServerSession()
            session.drop_cookie = True
            return session
        # The user row comes with the session, so the user loader needs no second query.
        g.session_user_row = row
        return ServerSession(row["sess"], sid=sid, last_seen_at=row["last_seen_at"],
                             public_id=str(row["id"]))

    def save_session(self, app, session: ServerSession, response):
        name = cookie_name(app)
        secure = app.config["ENV"] != "development" or request.is_secure
        if (session.new_sid or session.ended) and response.status_code >= 400:
            # The request failed, so its transaction was rolled back: the session it started
            # or ended never was, and the browser keeps the one it has.
            return
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
