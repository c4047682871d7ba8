"""Helpers shared by the account tests."""

import psycopg

from chatconnect.session_store import COOKIE_NAME

from .conftest import PASSWORD, AuthActions, unique_username


def sql(database_url, query, params=None):
    """Run one statement on its own connection (committed); returns the rows, if any."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else None


def session_cookie(client):
    cookie = client.get_cookie(COOKIE_NAME)
    return cookie.value if cookie else None


def signed_in_client(app, username=None, user_agent="test-agent", register=False):
    """A new test client signed in as `username` (registered first when asked)."""
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = user_agent
    auth = AuthActions(client)
    if register:
        auth.register(username)
    else:
        assert auth.login(username).status_code == 200
    return client


def register(app, user_agent="test-agent"):
    """(username, client signed in as that new user)."""
    username = unique_username()
    return username, signed_in_client(app, username, user_agent, register=True)


def create_token(client, name="script"):
    response = client.post("/api/auth/tokens", json={"name": name})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


__all__ = ["PASSWORD", "bearer", "create_token", "register", "session_cookie", "signed_in_client",
           "sql", "unique_username"]
