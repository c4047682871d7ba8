"""Personal access tokens: created once, stored hashed, used as `Authorization: Bearer`."""

import hashlib
import re

import pytest

from chatconnect.repositories.api_tokens import MAX_TOKENS_PER_USER
from chatconnect.session_store import COOKIE_NAME

from .accounts import bearer, create_token, register, session_cookie, sql


def test_a_new_token_is_shown_once_and_stored_hashed(app, database_url):
    _, client = register(app)
    created = create_token(client, "deploy script")
    assert set(created) == {"id", "name", "created_at", "token"}
    assert created["name"] == "deploy script" and created["created_at"].endswith("Z")
    assert re.fullmatch(r"cc_pat_[A-Za-z0-9_-]{43}", created["token"])
    stored = sql(database_url, "SELECT token_hash FROM api_tokens")
    assert stored == [(hashlib.sha256(created["token"].encode()).hexdigest(),)]

    listed = client.get("/api/auth/tokens").get_json()
    assert listed == {"items": [{"id": created["id"], "name": "deploy script",
                                 "created_at": created["created_at"], "last_used_at": None}],
                      "next_cursor": None}


def test_tokens_are_listed_newest_first_and_only_the_owners(app):
    _, client = register(app)
    _, other = register(app)
    first, second = create_token(client, "first"), create_token(client, "second")
    create_token(other, "someone else's")
    items = client.get("/api/auth/tokens").get_json()["items"]
    assert [item["id"] for item in items] == [second["id"], first["id"]]
    assert all("token" not in item for item in items)


def test_a_token_signs_in_without_a_cookie(app):
    username, client = register(app)
    token = create_token(client)["token"]
    response = app.test_client().get("/api/auth/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json()["user"]["username"] == username
    assert "Set-Cookie" not in response.headers
    last_used = client.get("/api/auth/tokens").get_json()["items"][0]["last_used_at"]
    assert last_used is not None and last_used.endswith("Z")


def test_last_used_at_is_written_at_most_once_a_minute(app, database_url):
    _, client = register(app)
    created = create_token(client)
    anonymous = app.test_client()

    def token_row():
        return sql(database_url, "SELECT xmin::text, last_used_at FROM api_tokens WHERE id = %s",
                   (created["id"],))[0]

    anonymous.get("/api/auth/me", headers=bearer(created["token"]))
    first_use = token_row()
    anonymous.get("/api/auth/me", headers=bearer(created["token"]))
    assert token_row() == first_use  # not even rewritten with the same value

    sql(database_url, "UPDATE api_tokens SET last_used_at = now() - interval '2 minutes'")
    moved_back = token_row()
    anonymous.get("/api/auth/me", headers=bearer(created["token"]))
    assert token_row()[1] > moved_back[1]


@pytest.mark.parametrize("authorization", [
    "Bearer",
    "Bearer ",
    "Bearer not-a-token",
    "Bearer cc_pat_short",
    "Bearer cc_pat_" + "A" * 43,  # well-formed, never issued
    "Bearer cc_pat_" + "A" * 43 + "\u00e9",
    "bearer cc_pat_" + "A" * 43,
])
def test_a_bad_bearer_token_is_401_even_with_a_valid_cookie(app, authorization):
    _, client = register(app)
    assert client.get("/api/auth/me").status_code == 200
    response = client.get("/api/auth/me", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert client.get("/api/auth/me").status_code == 200  # the cookie session is untouched


def test_a_stray_remember_me_cookie_does_not_disturb_a_token(app):
    _, client = register(app)
    token = create_token(client)["token"]
    anonymous = app.test_client()
    anonymous.set_cookie("remember_token", "1|" + "0" * 128)
    assert anonymous.get("/api/auth/me", headers=bearer(token)).status_code == 200
    assert anonymous.get("/api/auth/me").status_code == 401


def test_deleting_a_token_revokes_it(app):
    _, client = register(app)
    created = create_token(client)
    assert client.delete(f"/api/auth/tokens/{created['id']}").status_code == 204
    assert app.test_client().get("/api/auth/me", headers=bearer(created["token"])).status_code == 401
    assert client.get("/api/auth/tokens").get_json()["items"] == []
    assert client.delete(f"/api/auth/tokens/{created['id']}").status_code == 404


@pytest.mark.parametrize("token_id",
                         ["0b7c1f9e-4a57-4c3c-9a51-1d2f7d5e8a01", "not-a-uuid", "1", "%00"])
def test_deleting_an_unknown_token_is_404(app, token_id):
    _, client = register(app)
    response = client.delete(f"/api/auth/tokens/{token_id}")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_another_users_token_is_404_and_keeps_working(app):
    _, owner = register(app)
    _, intruder = register(app)
    created = create_token(owner)
    assert intruder.delete(f"/api/auth/tokens/{created['id']}").status_code == 404
    assert intruder.delete(f"/api/auth/tokens/{created['id'].upper()}").status_code == 404
    assert app.test_client().get("/api/auth/me", headers=bearer(created["token"])).status_code == 200


@pytest.mark.parametrize("body, problem", [
    ({"name": ""}, "must not be empty"),
    ({"name": "x" * 101}, "at most 100"),
    ({"name": 7}, "must be a string"),
    ({"name": None}, "must be a string"),
    ({"name": "a\x00b"}, "NUL"),
    ({"name": "\ud800"}, "Unicode"),
    ({}, "is required"),
])
def test_token_name_validation(app, database_url, body, problem):
    _, client = register(app)
    response = client.post("/api/auth/tokens", json=body)
    assert response.status_code == 422
    assert problem in response.get_json()["error"]["fields"]["name"]
    assert sql(database_url, "SELECT count(*) FROM api_tokens") == [(0,)]


def test_unknown_fields_are_refused(app):
    _, client = register(app)
    response = client.post("/api/auth/tokens", json={"name": "ok", "scope": "all"})
    assert response.status_code == 422
    assert "scope" in response.get_json()["error"]["fields"]


def test_a_100_character_name_is_accepted(app):
    _, client = register(app)
    assert create_token(client, "é" * 100)["name"] == "é" * 100


def test_the_number_of_tokens_is_capped(app, database_url):
    _, client = register(app)
    user_id = client.get("/api/auth/me").get_json()["user"]["id"]
    sql(database_url, """
        INSERT INTO api_tokens (user_id, name, token_hash)
        SELECT %s, 'bulk', md5(random()::text) || n FROM generate_series(2, %s) AS n""",
        (user_id, MAX_TOKENS_PER_USER))
    create_token(client, "the last one")
    response = client.post("/api/auth/tokens", json={"name": "one too many"})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "conflict"


def test_bearer_requests_are_not_subject_to_the_origin_check(app):
    _, client = register(app)
    token = create_token(client)["token"]
    anonymous = app.test_client()
    response = anonymous.post("/api/auth/tokens", json={"name": "from a script"},
                              headers={**bearer(token), "Origin": "https://elsewhere.example"})
    assert response.status_code == 201


def test_cookie_requests_to_token_routes_are_subject_to_the_origin_check(app):
    _, client = register(app)
    created = create_token(client)
    response = client.delete(f"/api/auth/tokens/{created['id']}",
                             headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert len(client.get("/api/auth/tokens").get_json()["items"]) == 1


def test_a_token_request_never_sets_or_touches_the_cookie(app):
    _, client = register(app)
    token = create_token(client)["token"]
    cookie = session_cookie(client)
    response = client.post("/api/auth/logout", headers=bearer(token))
    assert response.status_code == 204
    assert "Set-Cookie" not in response.headers
    assert session_cookie(client) == cookie
    assert client.get("/api/auth/me").status_code == 200
    assert client.get_cookie(COOKIE_NAME) is not None
