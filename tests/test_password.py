"""Password change (revokes everything else) and the upgrade of weak stored hashes."""

import pytest
from werkzeug.security import generate_password_hash

from chatconnect.db import transaction
from chatconnect.repositories.api_tokens import ApiTokenRepository
from chatconnect.repositories.sessions import SessionRepository
from chatconnect.repositories.users import UserRepository

from .accounts import (PASSWORD, bearer, create_token, register, session_cookie, signed_in_client,
                       sql, unique_username)
from .caching import eventually
from .conftest import AuthActions

NEW_PASSWORD = "a brand new passphrase"


def change(client, current=PASSWORD, new=NEW_PASSWORD, **kwargs):
    return client.post("/api/auth/password",
                       json={"current_password": current, "new_password": new}, **kwargs)


def password_hash(database_url, username):
    return sql(database_url, "SELECT password FROM users WHERE username = %s", (username,))[0][0]


def test_a_change_revokes_everything_else_and_renews_the_current_session(app):
    username, client = register(app)
    other = signed_in_client(app, username, user_agent="Other/1.0")
    token = create_token(client)["token"]
    old_cookie = session_cookie(client)

    response = change(client)
    assert response.status_code == 204 and response.data == b""
    new_cookie = session_cookie(client)
    assert new_cookie not in (None, old_cookie)
    assert client.get("/api/auth/me").get_json()["user"]["username"] == username

    assert other.get("/api/auth/me").status_code == 401
    assert app.test_client().get("/api/auth/me", headers=bearer(token)).status_code == 401
    stale = app.test_client()
    stale.set_cookie("chatconnect_session", old_cookie)
    assert stale.get("/api/auth/me").status_code == 401
    assert [s["current"] for s in client.get("/api/auth/sessions").get_json()["items"]] == [True]
    assert client.get("/api/auth/tokens").get_json()["items"] == []

    auth = AuthActions(app.test_client())
    assert auth.login(username, PASSWORD).status_code == 401
    assert auth.login(username, NEW_PASSWORD).status_code == 200


def test_with_a_token_every_session_and_token_is_revoked(app):
    """A token request has no session to keep: all sessions and tokens go, the one used too."""
    username, client = register(app)
    token = create_token(client)["token"]
    response = change(app.test_client(), headers=bearer(token))
    assert response.status_code == 204
    assert "Set-Cookie" not in response.headers
    assert client.get("/api/auth/me").status_code == 401
    assert app.test_client().get("/api/auth/me", headers=bearer(token)).status_code == 401
    assert AuthActions(app.test_client()).login(username, NEW_PASSWORD).status_code == 200


def test_a_wrong_current_password_is_403_and_changes_nothing(app, database_url):
    username, client = register(app)
    other = signed_in_client(app, username)
    token = create_token(client)["token"]
    stored = password_hash(database_url, username)
    cookie = session_cookie(client)

    response = change(client, current="not my password")
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    assert password_hash(database_url, username) == stored
    assert session_cookie(client) == cookie
    for signed_in in (client, other):
        assert signed_in.get("/api/auth/me").status_code == 200
    assert app.test_client().get("/api/auth/me", headers=bearer(token)).status_code == 200


def test_guessing_the_current_password_is_throttled_like_sign_in(make_app, app):
    limited = make_app(LOGIN_LIMIT_PER_USERNAME="2/900")
    _, client = register(limited)
    assert [change(client, current="guess").status_code for _ in range(2)] == [403, 403]
    response = change(client)  # even the right one, until the window ends
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize("body, field", [
    ({"current_password": PASSWORD, "new_password": "short"}, "new_password"),
    ({"current_password": PASSWORD, "new_password": "x" * 1025}, "new_password"),
    ({"current_password": PASSWORD, "new_password": 12345678}, "new_password"),
    ({"current_password": PASSWORD, "new_password": "nul\x00in the middle"}, "new_password"),
    ({"current_password": PASSWORD}, "new_password"),
    ({"new_password": NEW_PASSWORD}, "current_password"),
    ({"current_password": None, "new_password": NEW_PASSWORD}, "current_password"),
    ({"current_password": PASSWORD, "new_password": NEW_PASSWORD, "otp": "1"}, "otp"),
])
def test_password_change_validation(app, database_url, body, field):
    username, client = register(app)
    stored = password_hash(database_url, username)
    response = client.post("/api/auth/password", json=body)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]
    assert password_hash(database_url, username) == stored


def test_a_change_that_fails_late_leaves_no_partial_write(make_app, app, database_url):
    """The new session row cannot be written (a trigger refuses it): the new hash, the revoked
    sessions and tokens written before it in the same transaction are all rolled back."""
    failing = make_app()
    failing.config["PROPAGATE_EXCEPTIONS"] = False
    username, client = register(failing)
    other = signed_in_client(failing, username)
    token = create_token(client)["token"]
    stored = password_hash(database_url, username)
    sql(database_url, """
        CREATE FUNCTION refuse_session() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'session table is read-only'; END $$;
        CREATE TRIGGER refuse_session BEFORE INSERT ON session
            FOR EACH ROW WHEN (NEW.user_agent = 'Refused/1.0') EXECUTE FUNCTION refuse_session();
    """)
    try:
        client.environ_base["HTTP_USER_AGENT"] = "Refused/1.0"
        response = change(client)
    finally:
        sql(database_url, "DROP FUNCTION refuse_session() CASCADE")
    assert response.status_code == 500
    assert response.get_json()["error"] == {"code": "internal_error",
                                            "message": "something went wrong on our side"}
    assert password_hash(database_url, username) == stored
    for signed_in in (client, other):
        assert signed_in.get("/api/auth/me").status_code == 200
    assert failing.test_client().get("/api/auth/me", headers=bearer(token)).status_code == 200
    assert len(client.get("/api/auth/sessions").get_json()["items"]) == 2


def test_a_stale_hash_is_never_written_over_a_newer_one(app):
    username, client = register(app)
    user_id = client.get("/api/auth/me").get_json()["user"]["id"]
    with app.app_context(), transaction() as conn:
        users = UserRepository(conn)
        current = users.get_password_hash(user_id)
        assert users.upgrade_password_hash(user_id, "an older hash", "x") is False
        assert users.change_password(user_id, "an older hash", "x", 1) is None
        assert users.change_password(user_id, current, "x", 2) is None  # not the version
        assert users.get_password_hash(user_id) == current


@pytest.mark.parametrize("method", ["pbkdf2:sha256", "pbkdf2:sha256:1000", "scrypt:32768:8:1",
                                    "scrypt:16384:8:1"])
def test_a_weak_hash_is_upgraded_at_the_next_sign_in(app, database_url, method):
    username = unique_username()
    sql(database_url, "INSERT INTO users (username, password) VALUES (%s, %s)",
        (username, generate_password_hash(PASSWORD, method=method)))
    auth = AuthActions(app.test_client())
    assert auth.login(username).status_code == 200
    upgraded = password_hash(database_url, username)
    assert upgraded.startswith("scrypt:32768:8:3$")
    assert auth.login(username).status_code == 200
    assert password_hash(database_url, username) == upgraded  # a good hash is left alone


def test_a_wrong_password_does_not_upgrade_a_weak_hash(app, database_url):
    username = unique_username()
    weak = generate_password_hash(PASSWORD, method="pbkdf2:sha256")
    sql(database_url, "INSERT INTO users (username, password) VALUES (%s, %s)", (username, weak))
    assert AuthActions(app.test_client()).login(username, "wrong password").status_code == 401
    assert password_hash(database_url, username) == weak


def test_sessions_and_tokens_of_older_credentials_are_refused_and_never_created(app, database_url):
    """What closes the races of test_credential_races.py, step by step: a session or token is
    valid only at its user's current credentials version, and none is created at an old one."""
    username, client = register(app)
    token = create_token(client)["token"]
    user_id = client.get("/api/auth/me").get_json()["user"]["id"]
    sql(database_url, "UPDATE users SET credentials_version = credentials_version + 1 "
                      "WHERE id = %s", (user_id,))
    # The session is cached since the last request: a change made with plain SQL reaches the
    # cache with its notification, a moment later.
    assert eventually(lambda: client.get("/api/auth/me").status_code == 401)
    assert app.test_client().get("/api/auth/me", headers=bearer(token)).status_code == 401

    with app.app_context(), transaction() as conn:
        assert SessionRepository(conn).create("a" * 64, {}, user_id, 1, None, 60, 60) is None
        assert ApiTokenRepository(conn).create(user_id, 1, "late", "b" * 64) is None
        assert SessionRepository(conn).create("c" * 64, {}, user_id, 2, None, 60, 60)
    # Rows left by sign-ins that raced a change are purged with the expired ones.
    sql(database_url, "UPDATE users SET credentials_version = 3 WHERE id = %s", (user_id,))
    result = app.test_cli_runner().invoke(args=["sessions", "purge"])
    assert "deleted 2 expired sessions" in result.output
