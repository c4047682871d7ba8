"""Signed-in sessions: listing and revoking them, idle timeout and absolute lifetime, touches."""

import hashlib

import pytest

from chatconnect.session_store import COOKIE_NAME

from .accounts import bearer, create_token, register, session_cookie, signed_in_client, sql


def sessions_of(client):
    response = client.get("/api/auth/sessions")
    assert response.status_code == 200
    return response.get_json()


def test_the_list_shows_every_live_session_and_marks_the_current_one(app, database_url):
    username, laptop = register(app, user_agent="Laptop/1.0")
    phone = signed_in_client(app, username, user_agent="Phone/2.0")
    listed = sessions_of(laptop)
    assert listed["next_cursor"] is None
    items = listed["items"]
    assert [item["user_agent"] for item in items] == ["Phone/2.0", "Laptop/1.0"]  # latest first
    assert [item["current"] for item in items] == [False, True]
    for item in items:
        assert set(item) == {"id", "created_at", "last_seen_at", "user_agent", "current"}
        assert item["created_at"].endswith("Z") and item["last_seen_at"].endswith("Z")
    assert [i["current"] for i in sessions_of(phone)["items"]] == [True, False]

    ids = {item["id"] for item in items}
    rows = sql(database_url, "SELECT id::text, sid FROM session")
    assert ids == {row[0] for row in rows}
    secrets = {session_cookie(laptop), session_cookie(phone)}
    secrets |= {hashlib.sha256(s.encode()).hexdigest() for s in list(secrets)}
    assert not ids & secrets


def test_the_list_leaves_out_expired_sessions_and_other_users(app, database_url):
    username, client = register(app)
    signed_in_client(app, username, user_agent="Old/1.0")
    register(app)
    sql(database_url, "UPDATE session SET expire = now() AT TIME ZONE 'UTC' - interval '1 second'"
                      " WHERE user_agent = 'Old/1.0'")
    items = sessions_of(client)["items"]
    assert len(items) == 1 and items[0]["current"]


def test_with_a_token_no_session_is_current(app):
    _, client = register(app)
    token = create_token(client)["token"]
    listed = app.test_client().get("/api/auth/sessions", headers=bearer(token)).get_json()
    assert [item["current"] for item in listed["items"]] == [False]


def test_deleting_another_session_signs_it_out(app):
    username, laptop = register(app, user_agent="Laptop/1.0")
    phone = signed_in_client(app, username, user_agent="Phone/2.0")
    phone_id = next(i["id"] for i in sessions_of(laptop)["items"] if not i["current"])
    assert laptop.delete(f"/api/auth/sessions/{phone_id}").status_code == 204
    assert phone.get("/api/auth/me").status_code == 401
    assert laptop.get("/api/auth/me").status_code == 200
    assert [i["user_agent"] for i in sessions_of(laptop)["items"]] == ["Laptop/1.0"]
    assert laptop.delete(f"/api/auth/sessions/{phone_id}").status_code == 404


def test_deleting_the_current_session_signs_this_client_out(app):
    _, client = register(app)
    old_cookie = session_cookie(client)
    current_id = sessions_of(client)["items"][0]["id"]
    response = client.delete(f"/api/auth/sessions/{current_id.upper()}")
    assert response.status_code == 204
    assert f"{COOKIE_NAME}=;" in response.headers["Set-Cookie"]
    assert client.get("/api/auth/me").status_code == 401
    client.set_cookie(COOKIE_NAME, old_cookie)
    assert client.get("/api/auth/me").status_code == 401


@pytest.mark.parametrize("session_id",
                         ["0b7c1f9e-4a57-4c3c-9a51-1d2f7d5e8a01", "not-a-uuid", "12345"])
def test_deleting_an_unknown_session_is_404(app, session_id):
    _, client = register(app)
    response = client.delete(f"/api/auth/sessions/{session_id}")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_another_users_session_is_404_and_stays_signed_in(app):
    _, owner = register(app)
    _, intruder = register(app)
    owner_session = sessions_of(owner)["items"][0]["id"]
    assert intruder.delete(f"/api/auth/sessions/{owner_session}").status_code == 404
    assert owner.get("/api/auth/me").status_code == 200


@pytest.mark.parametrize("method, path", [
    ("get", "/api/auth/sessions"),
    ("delete", "/api/auth/sessions/0b7c1f9e-4a57-4c3c-9a51-1d2f7d5e8a01"),
    ("get", "/api/auth/tokens"),
    ("post", "/api/auth/tokens"),
    ("delete", "/api/auth/tokens/0b7c1f9e-4a57-4c3c-9a51-1d2f7d5e8a01"),
    ("post", "/api/auth/password"),
    ("post", "/api/auth/logout"),
])
def test_account_routes_need_a_signed_in_caller(client, method, path):
    response = getattr(client, method)(path, json={})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


# --- expiry and touches --------------------------------------------------------------------

IDLE, LIFETIME = 600, 3600


@pytest.fixture
def short_app(app, make_app):  # `app` empties the tables
    return make_app(SESSION_IDLE_TIMEOUT=str(IDLE), SESSION_MAX_LIFETIME=str(LIFETIME))


def session_row(database_url):
    """(row version, last_seen_at, expire, seconds from now to expire, lifetime deadline)."""
    [row] = sql(database_url, """
        SELECT xmin::text, last_seen_at, expire,
               extract(epoch FROM expire - (now() AT TIME ZONE 'UTC')),
               (created_at AT TIME ZONE 'UTC') + make_interval(secs => %s)
        FROM session""", (LIFETIME,))
    return row


def test_a_new_session_expires_after_the_idle_timeout(short_app, database_url):
    register(short_app)
    assert IDLE - 60 < session_row(database_url)[3] <= IDLE


def test_an_expired_session_is_refused_before_it_is_purged(short_app, database_url):
    _, client = register(short_app)
    sql(database_url, "UPDATE session SET expire = now() AT TIME ZONE 'UTC' - interval '1 second'")
    response = client.get("/api/auth/me")
    assert response.status_code == 401
    assert f"{COOKIE_NAME}=;" in response.headers["Set-Cookie"]  # the browser drops it
    assert sql(database_url, "SELECT count(*) FROM session") == [(1,)]  # still there


def test_a_signed_in_read_does_not_write_the_session_row(short_app, database_url):
    _, client = register(short_app)
    version, last_seen_at, expire, *_ = session_row(database_url)
    for _ in range(3):
        assert client.get("/api/auth/me").status_code == 200
        assert client.get("/api/auth/sessions").status_code == 200
    assert session_row(database_url)[:3] == (version, last_seen_at, expire)


def test_a_touch_extends_the_idle_deadline(short_app, database_url):
    _, client = register(short_app)
    # Seen two minutes ago, with one minute left before the idle timeout.
    sql(database_url, """UPDATE session SET last_seen_at = now() - interval '2 minutes',
                         expire = now() AT TIME ZONE 'UTC' + interval '1 minute'""")
    before = session_row(database_url)
    assert client.get("/api/auth/me").status_code == 200
    after = session_row(database_url)
    assert after[1] > before[1]
    assert IDLE - 60 < after[3] <= IDLE


def test_a_touch_never_extends_past_the_absolute_lifetime(short_app, database_url):
    _, client = register(short_app)
    # Signed in almost LIFETIME ago; the idle deadline would reach past the lifetime.
    sql(database_url, """UPDATE session SET created_at = now() - make_interval(secs => %s),
                         last_seen_at = now() - interval '2 minutes'""", (LIFETIME - 30,))
    assert client.get("/api/auth/me").status_code == 200
    _, _, expire, seconds_left, lifetime_deadline = session_row(database_url)
    assert expire == lifetime_deadline and seconds_left <= 30


def test_probes_and_public_routes_never_read_the_session(make_app):
    """With the database unreachable, a cookie neither breaks /healthz nor turns a
    signed-in route's 503 into a 500."""
    app = make_app(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none", DB_POOL_TIMEOUT="1")
    client = app.test_client()
    client.set_cookie(COOKIE_NAME, "x" * 43)
    assert client.get("/healthz").status_code == 200
    response = client.get("/api/auth/me")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "service_unavailable"
