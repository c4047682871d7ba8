"""Registration, sign-in and sign-out through the PostgreSQL session store."""

import hashlib

import psycopg
import pytest

from chatconnect.session_store import COOKIE_NAME

from .conftest import PASSWORD, unique_username


def session_cookie(client):
    cookie = client.get_cookie(COOKIE_NAME)
    return cookie.value if cookie else None


def test_register_signs_in_and_me_answers_the_user(client, auth):
    user = auth.register("Alice_1")
    assert set(user) == {"id", "username", "created_at"}
    assert user["username"] == "Alice_1" and user["created_at"].endswith("Z")
    assert client.get("/api/auth/me").get_json() == {"user": user}


def test_username_is_unique_case_insensitively(client, auth):
    auth.register("alice")
    response = client.post("/api/auth/register", json={"username": "ALICE", "password": PASSWORD})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "conflict"


@pytest.mark.parametrize("body, field", [
    ({"username": "ab", "password": PASSWORD}, "username"),
    ({"username": "a" * 65, "password": PASSWORD}, "username"),
    ({"username": "bad name", "password": PASSWORD}, "username"),
    ({"username": "ok-name", "password": "short"}, "password"),
    ({"username": "ok-name", "password": "x" * 1025}, "password"),
    ({"username": "ok-name", "password": "long enough\x00"}, "password"),
    ({"username": 123, "password": PASSWORD}, "username"),
    ({"password": PASSWORD}, "username"),
    ({"username": "ok-name"}, "password"),
])
def test_register_validation(client, body, field):
    response = client.post("/api/auth/register", json=body)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]


def test_login_with_any_case_and_the_same_401_for_unknown_user_and_wrong_password(client, auth):
    user = auth.register("Bob.Smith")
    auth.logout()
    wrong_password = auth.login("bob.smith", "not the password")
    unknown_user = auth.login(unique_username(), "not the password")
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.get_json() == unknown_user.get_json()
    assert auth.login("BOB.SMITH").get_json() == {"user": user}


def test_cookie_is_httponly_lax_and_the_table_keeps_only_its_hash(client, auth, database_url):
    response = client.post("/api/auth/register",
                           json={"username": unique_username(), "password": PASSWORD})
    set_cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Path=/" in set_cookie
    sid = session_cookie(client)
    assert len(sid) >= 43  # 256 bits, URL-safe base64
    with psycopg.connect(database_url) as conn:
        sids = [row[0] for row in conn.execute("SELECT sid FROM session")]
    assert sids == [hashlib.sha256(sid.encode()).hexdigest()]


def test_secure_host_prefixed_cookie_outside_development(make_app):
    client = make_app(CHATCONNECT_ENV="production").test_client()
    response = client.post("/api/auth/register",
                           json={"username": unique_username(), "password": PASSWORD})
    assert response.headers["Set-Cookie"].startswith(f"__Host-{COOKIE_NAME}=")
    assert "Secure" in response.headers["Set-Cookie"]


def test_logout_deletes_the_session_and_the_old_cookie_is_refused(client, auth):
    auth.register()
    old_sid = session_cookie(client)
    assert auth.logout().status_code == 204
    client.set_cookie(COOKIE_NAME, old_sid)
    assert client.get("/api/auth/me").status_code == 401


def test_made_up_cookie_is_never_adopted(client, auth, database_url):
    made_up = "x" * 43
    client.set_cookie(COOKIE_NAME, made_up)
    assert client.get("/api/auth/me").status_code == 401
    username = unique_username()
    auth.register(username)
    assert session_cookie(client) != made_up
    with psycopg.connect(database_url) as conn:
        hashed = hashlib.sha256(made_up.encode()).hexdigest()
        assert conn.execute("SELECT count(*) FROM session WHERE sid IN (%s, %s)",
                            (made_up, hashed)).fetchone() == (0,)


def test_login_issues_a_new_session_id(client, auth):
    username = auth.register()["username"]
    first = session_cookie(client)
    auth.login(username)
    assert session_cookie(client) not in (None, first)
    assert client.get("/api/auth/me").status_code == 200


def test_not_signed_in_is_401_json(client):
    response = client.get("/api/auth/me")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
])
def test_cross_site_cookie_requests_are_refused(client, auth, headers):
    auth.register()
    response = client.post("/api/auth/logout", headers=headers)
    assert response.status_code == 403
    assert client.get("/api/auth/me").status_code == 200


def test_same_origin_and_dashboard_origin_are_allowed(make_app):
    client = make_app(DASHBOARD_ORIGINS="https://dash.example").test_client()
    for origin in ("http://localhost", "https://dash.example"):
        response = client.post("/api/auth/register", headers={"Origin": origin},
                               json={"username": unique_username(), "password": PASSWORD})
        assert response.status_code == 201, origin


@pytest.mark.parametrize("length", [65, 1024, 1025, 20_000])
def test_sign_in_with_a_username_no_account_can_have_is_a_wrong_username(client, auth, length):
    """Sign-up allows 64 characters: a longer name at sign-in gets the answer of any wrong
    name, not a limit that contradicts the sign-up rules."""
    auth.register("alice")
    response = client.post("/api/auth/login", json={"username": "a" * length, "password": PASSWORD})
    assert response.status_code == 401
    assert response.get_json()["error"] == {"code": "unauthorized",
                                            "message": "wrong username or password"}
