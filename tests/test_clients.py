"""Clients and their widgets, as their owner sees them; other owners see nothing."""

import json
import re
import uuid
from datetime import datetime

import psycopg
import pytest

from chatconnect import pagination
from chatconnect.repositories import clients as clients_repository

from .conftest import AuthActions

KEY_PATTERN = r"pk_[A-Za-z0-9_-]{32,}"
DEFAULT_WIDGET = {"primary_color": "#3b82f6", "position": "bottom-right",
                  "welcome_message": "Hi! How can I help?", "widget_name": "Support"}


def create_client(client, **body):
    response = client.post("/api/clients", json={"name": "Shop", **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def error_code(response):
    return response.get_json()["error"]["code"]


def count(database_url, sql, *params):
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, params).fetchone()[0]


@pytest.fixture
def owner(client, auth):
    auth.register()
    return client


@pytest.fixture
def stranger(app):
    """Another signed-in owner, with a browser of their own."""
    other = app.test_client()
    AuthActions(other).register()
    return other


# --- creating and reading ---------------------------------------------------------------

def test_create_client_with_its_widget(owner):
    created = create_client(owner, name="Acme Shop", allowed_domains=["acme.test"])
    assert set(created) == {"id", "name", "public_api_key", "allowed_domains", "status",
                            "created_at", "identity_required", "retention_days"}
    assert (created["identity_required"], created["retention_days"]) == (False, None)
    assert created["name"] == "Acme Shop" and created["status"] == "active"
    assert created["allowed_domains"] == ["acme.test"]
    assert re.fullmatch(KEY_PATTERN, created["public_api_key"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", created["created_at"])
    assert owner.get(f"/api/clients/{created['id']}").get_json() == created
    widget = owner.get(f"/api/clients/{created['id']}/widget").get_json()
    assert widget == {"client_id": created["id"], **DEFAULT_WIDGET,
                      "updated_at": widget["updated_at"]}
    assert widget["updated_at"].endswith("Z")


def test_allowed_domains_default_to_empty_and_keys_are_distinct(owner):
    first, second = create_client(owner), create_client(owner)
    assert first["allowed_domains"] == []
    assert first["public_api_key"] != second["public_api_key"]


def test_allowed_domains_are_lower_cased_and_deduplicated(owner):
    created = create_client(owner, allowed_domains=[
        "Example.COM", "example.com", "*.Shop.Example.com", "localhost:3000", "XN--BCHER-KVA.DE"])
    assert created["allowed_domains"] == [
        "example.com", "*.shop.example.com", "localhost:3000", "xn--bcher-kva.de"]


@pytest.mark.parametrize("body, field", [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": 42}, "name"),
    ({"name": None}, "name"),
    ({"name": "a\x00b"}, "name"),
    ({"name": "\ud800"}, "name"),
    ({"name": "Shop", "allowed_domains": "example.com"}, "allowed_domains"),
    ({"name": "Shop", "allowed_domains": None}, "allowed_domains"),
    ({"name": "Shop", "allowed_domains": ["example.com"] * 101}, "allowed_domains"),
    ({"name": "Shop", "status": "active"}, "status"),
    ({"name": "Shop", "public_api_key": "pk_mine"}, "public_api_key"),
])
def test_create_client_validation(owner, database_url, body, field):
    response = owner.post("/api/clients", json=body)
    assert response.status_code == 422
    assert error_code(response) == "validation_error"
    assert field in response.get_json()["error"]["fields"]
    assert count(database_url, "SELECT count(*) FROM clients") == 0


@pytest.mark.parametrize("entry", [
    "https://example.com", "example.com/path", "example.com/", " example.com", "exa mple.com",
    "", "*.", "*example.com", "a.*.com", "example..com", "-example.com", "example.com:0",
    "example.com:99999", "example.com:", "example.com:080", "bücher.de", "user@example.com", 42, None,
    ["example.com"],
])
def test_a_bad_allowed_domain_is_named(owner, entry):
    response = owner.post("/api/clients",
                          json={"name": "Shop", "allowed_domains": ["good.example", entry]})
    assert response.status_code == 422
    message = response.get_json()["error"]["fields"]["allowed_domains"]
    assert message.startswith(json.dumps(entry) + ": ")


@pytest.mark.parametrize("kwargs, status, code", [
    ({"data": "name=Shop", "content_type": "application/x-www-form-urlencoded"}, 415,
     "unsupported_media_type"),
    ({"data": "{not json", "content_type": "application/json"}, 400, "bad_request"),
    ({"json": ["Shop"]}, 400, "bad_request"),
    ({"data": "null", "content_type": "application/json"}, 400, "bad_request"),
])
def test_create_client_with_a_body_that_is_not_an_object(owner, kwargs, status, code):
    response = owner.post("/api/clients", **kwargs)
    assert response.status_code == status
    assert error_code(response) == code


# --- changing ---------------------------------------------------------------------------

def test_update_client_fields(owner):
    created = create_client(owner)
    response = owner.patch(f"/api/clients/{created['id']}", json={
        "name": "Renamed", "allowed_domains": ["New.Example"], "status": "suspended"})
    assert response.status_code == 200
    assert response.get_json() == {**created, "name": "Renamed",
                                   "allowed_domains": ["new.example"], "status": "suspended"}
    assert owner.get(f"/api/clients/{created['id']}").get_json() == response.get_json()
    cleared = owner.patch(f"/api/clients/{created['id']}", json={"allowed_domains": []})
    assert cleared.get_json()["allowed_domains"] == []


def test_empty_patches_change_nothing(owner):
    created = create_client(owner)
    widget = owner.get(f"/api/clients/{created['id']}/widget").get_json()
    assert owner.patch(f"/api/clients/{created['id']}", json={}).get_json() == created
    assert owner.patch(f"/api/clients/{created['id']}/widget", json={}).get_json() == widget


@pytest.mark.parametrize("body, field", [
    ({"name": ""}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": None}, "name"),
    ({"name": ["Shop"]}, "name"),
    ({"status": "deleted"}, "status"),
    ({"status": "ACTIVE"}, "status"),
    ({"status": None}, "status"),
    ({"status": 1}, "status"),
    ({"allowed_domains": ["https://example.com"]}, "allowed_domains"),
    ({"allowed_domains": {"example.com": True}}, "allowed_domains"),
    ({"public_api_key": "pk_chosen"}, "public_api_key"),
    ({"id": str(uuid.uuid4())}, "id"),
    ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
])
def test_update_client_validation(owner, body, field):
    created = create_client(owner)
    response = owner.patch(f"/api/clients/{created['id']}", json=body)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]
    assert owner.get(f"/api/clients/{created['id']}").get_json() == created


def test_a_request_with_one_bad_field_changes_nothing(owner):
    created = create_client(owner)
    response = owner.patch(f"/api/clients/{created['id']}",
                           json={"name": "Renamed", "status": "paused"})
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"status"}
    assert owner.get(f"/api/clients/{created['id']}").get_json() == created


def test_update_widget_and_updated_at(owner):
    created = create_client(owner)
    path = f"/api/clients/{created['id']}/widget"
    before = owner.get(path).get_json()
    changes = {"primary_color": "#ABC", "position": "bottom-left",
               "welcome_message": "Bonjour ! 👋", "widget_name": "Équipe"}
    after = owner.patch(path, json=changes).get_json()
    assert after == {**before, **changes, "updated_at": after["updated_at"]}
    assert after["updated_at"] > before["updated_at"]
    assert owner.get(path).get_json() == after
    # Setting the values it already has is not a change.
    assert owner.patch(path, json={"position": "bottom-left"}).get_json() == after


@pytest.mark.parametrize("changes", [
    {"primary_color": "#3B82F6"},
    {"primary_color": "#fff"},
    {"welcome_message": "x"},
    {"welcome_message": "é" * 500},
    {"widget_name": "n" * 50},
    {"position": "bottom-right", "widget_name": "Help"},
])
def test_widget_values_at_the_limits_are_stored_as_given(owner, changes):
    path = f"/api/clients/{create_client(owner)['id']}/widget"
    response = owner.patch(path, json=changes)
    assert response.status_code == 200
    assert {name: response.get_json()[name] for name in changes} == changes


@pytest.mark.parametrize("body, field", [
    ({"primary_color": "blue"}, "primary_color"),
    ({"primary_color": "3b82f6"}, "primary_color"),
    ({"primary_color": "#12345"}, "primary_color"),
    ({"primary_color": "#1234"}, "primary_color"),
    ({"primary_color": "#gggggg"}, "primary_color"),
    ({"primary_color": "#3b82f6 "}, "primary_color"),
    ({"primary_color": "#3b82f6\n"}, "primary_color"),
    ({"primary_color": 0x3B82F6}, "primary_color"),
    ({"primary_color": None}, "primary_color"),
    ({"position": "top-left"}, "position"),
    ({"position": "Bottom-Right"}, "position"),
    ({"position": None}, "position"),
    ({"welcome_message": ""}, "welcome_message"),
    ({"welcome_message": "x" * 501}, "welcome_message"),
    ({"welcome_message": "hi\x00"}, "welcome_message"),
    ({"welcome_message": 5}, "welcome_message"),
    ({"widget_name": ""}, "widget_name"),
    ({"widget_name": "n" * 51}, "widget_name"),
    ({"widget_name": "\udfff"}, "widget_name"),
    ({"client_id": str(uuid.uuid4())}, "client_id"),
    ({"updated_at": "2020-01-01T00:00:00Z"}, "updated_at"),
])
def test_update_widget_validation(owner, body, field):
    path = f"/api/clients/{create_client(owner)['id']}/widget"
    before = owner.get(path).get_json()
    response = owner.patch(path, json={"widget_name": "Help", **body})
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]
    assert owner.get(path).get_json() == before


# --- the public API key -----------------------------------------------------------------

def test_rotate_key_replaces_it_and_the_old_one_stops_at_once(owner, app):
    created = create_client(owner)
    browser = app.test_client()
    old_key = created["public_api_key"]
    assert browser.get(f"/api/public/widgets/{old_key}").status_code == 200
    rotated = owner.post(f"/api/clients/{created['id']}/rotate-key")
    assert rotated.status_code == 200
    new_key = rotated.get_json()["public_api_key"]
    assert re.fullmatch(KEY_PATTERN, new_key) and new_key != old_key
    assert rotated.get_json() == {**created, "public_api_key": new_key}
    assert browser.get(f"/api/public/widgets/{old_key}").status_code == 404
    assert browser.get(f"/api/public/widgets/{new_key}").status_code == 200


def keys_from(monkeypatch, *keys):
    """Make the next public API keys these ones, then random ones again."""
    pending = list(keys)
    original = clients_repository.new_public_api_key
    monkeypatch.setattr(clients_repository, "new_public_api_key",
                        lambda: pending.pop(0) if pending else original())


def test_a_key_collision_on_create_is_retried(owner, monkeypatch):
    taken = create_client(owner)["public_api_key"]
    keys_from(monkeypatch, taken, taken)
    created = create_client(owner)
    assert created["public_api_key"] not in (taken, None)
    widget = owner.get(f"/api/clients/{created['id']}/widget")
    assert widget.status_code == 200


def test_a_key_collision_on_rotate_is_retried(owner, monkeypatch):
    taken = create_client(owner)["public_api_key"]
    target = create_client(owner)
    keys_from(monkeypatch, taken)
    rotated = owner.post(f"/api/clients/{target['id']}/rotate-key")
    assert rotated.status_code == 200
    assert rotated.get_json()["public_api_key"] not in (taken, target["public_api_key"])


def test_client_and_widget_are_created_together_or_not_at_all(owner, database_url, monkeypatch):
    taken = create_client(owner)["public_api_key"]
    keys_from(monkeypatch, taken)  # the retry's savepoint must not commit the client early
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("""
            CREATE FUNCTION refuse_widget() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'widget refused'; END $$;
            CREATE TRIGGER refuse_widget BEFORE INSERT ON client_widgets
                FOR EACH ROW EXECUTE FUNCTION refuse_widget()""")
    try:
        response = owner.post("/api/clients", json={"name": "Half made"})
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER refuse_widget ON client_widgets; "
                         "DROP FUNCTION refuse_widget()")
    assert response.status_code == 500
    assert error_code(response) == "internal_error"
    assert count(database_url, "SELECT count(*) FROM clients WHERE name = 'Half made'") == 0


# --- deleting ---------------------------------------------------------------------------

def add_conversation(database_url, client_id):
    with psycopg.connect(database_url) as conn:
        contact_id = conn.execute("INSERT INTO contacts (client_id) VALUES (%s) RETURNING id",
                                  (client_id,)).fetchone()[0]
        conversation_id = conn.execute(
            "INSERT INTO conversations (client_id, contact_id) VALUES (%s, %s) "
            "RETURNING id", (client_id, contact_id)).fetchone()[0]
        conn.execute("INSERT INTO messages (conversation_id, sender, body) "
                     "VALUES (%s, 'visitor', 'hello'), (%s, 'agent', 'hi')",
                     (conversation_id, conversation_id))
    return conversation_id


def test_delete_takes_widget_conversations_and_messages_with_it(owner, database_url):
    doomed, kept = create_client(owner), create_client(owner)
    doomed_conversation = add_conversation(database_url, doomed["id"])
    add_conversation(database_url, kept["id"])
    assert owner.delete(f"/api/clients/{doomed['id']}").status_code == 204
    assert owner.get(f"/api/clients/{doomed['id']}").status_code == 404
    assert owner.get(f"/api/clients/{doomed['id']}/widget").status_code == 404
    assert owner.delete(f"/api/clients/{doomed['id']}").status_code == 404
    for sql, param in [
        ("SELECT count(*) FROM client_widgets WHERE client_id = %s", doomed["id"]),
        ("SELECT count(*) FROM conversations WHERE client_id = %s", doomed["id"]),
        ("SELECT count(*) FROM messages WHERE conversation_id = %s", doomed_conversation),
    ]:
        assert count(database_url, sql, param) == 0
    assert count(database_url, "SELECT count(*) FROM client_widgets WHERE client_id = %s",
                 kept["id"]) == 1
    assert count(database_url, "SELECT count(*) FROM messages") == 2


# --- tenant isolation -------------------------------------------------------------------

CLIENT_ROUTES = [
    ("get", "/api/clients/{id}", None),
    ("patch", "/api/clients/{id}", {"name": "Taken over", "status": "suspended",
                                    "allowed_domains": ["evil.example"]}),
    ("delete", "/api/clients/{id}", None),
    ("post", "/api/clients/{id}/rotate-key", None),
    ("get", "/api/clients/{id}/widget", None),
    ("patch", "/api/clients/{id}/widget", {"widget_name": "Hijacked", "primary_color": "#000",
                                           "position": "bottom-left",
                                           "welcome_message": "Send your password"}),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _ in CLIENT_ROUTES]


def call(browser, method, path, body, client_id):
    return getattr(browser, method)(path.format(id=client_id), json=body)


@pytest.mark.parametrize("method, path, body", CLIENT_ROUTES, ids=ROUTE_IDS)
def test_another_owners_client_is_not_found_and_unchanged(owner, stranger, app, database_url,
                                                          method, path, body):
    target = create_client(owner, allowed_domains=["shop.example"])
    add_conversation(database_url, target["id"])
    widget = owner.get(f"/api/clients/{target['id']}/widget").get_json()
    response = call(stranger, method, path, body, target["id"])
    assert response.status_code == 404
    assert error_code(response) == "not_found"
    assert owner.get(f"/api/clients/{target['id']}").get_json() == target
    assert owner.get(f"/api/clients/{target['id']}/widget").get_json() == widget
    assert count(database_url, "SELECT count(*) FROM conversations WHERE client_id = %s",
                 target["id"]) == 1
    public = app.test_client().get(f"/api/public/widgets/{target['public_api_key']}")
    assert public.status_code == 200


NOT_CLIENT_IDS = ["0b7c1f9e-4a57-4c3c-9a51-1d2f7d5e8a01", "not-a-uuid", "1", "%00", "x" * 2000,
                  "%ED%A0%80", "0b7c1f9e4a574c3c9a511d2f7d5e8a01"]


@pytest.mark.parametrize("method, path, body", CLIENT_ROUTES, ids=ROUTE_IDS)
def test_unknown_or_malformed_client_ids_are_not_found(owner, method, path, body):
    create_client(owner)
    for client_id in NOT_CLIENT_IDS:
        response = call(owner, method, path, body, client_id)
        assert response.status_code == 404, client_id
        assert error_code(response) == "not_found"


@pytest.mark.parametrize("method, path, body",
                         [("get", "/api/clients", None), ("post", "/api/clients", {"name": "x"})]
                         + CLIENT_ROUTES, ids=["list", "create"] + ROUTE_IDS)
def test_every_client_route_needs_sign_in(app, method, path, body):
    response = call(app.test_client(), method, path, body, uuid.uuid4())
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"


def test_a_list_holds_only_the_owners_clients(owner, stranger):
    mine = create_client(owner)
    theirs = create_client(stranger)
    assert [c["id"] for c in owner.get("/api/clients").get_json()["items"]] == [mine["id"]]
    assert [c["id"] for c in stranger.get("/api/clients").get_json()["items"]] == [theirs["id"]]


# --- pagination -------------------------------------------------------------------------

def owner_id(browser):
    return browser.get("/api/auth/me").get_json()["user"]["id"]


def insert_clients(database_url, user_id, names, created_at="now() AT TIME ZONE 'UTC'"):
    """Clients inserted in one statement, so they share created_at unless one is given."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO clients (user_id, name, public_api_key, created_at) "
            f"SELECT %s, name, 'pk_' || gen_random_uuid(), {created_at} "
            "FROM unnest(%s::text[]) AS name", (user_id, names))


def test_pages_are_oldest_first_and_new_clients_cause_no_duplicates_or_gaps(
        owner, stranger, database_url):
    user_id = owner_id(owner)
    for index in range(3):
        create_client(owner, name=f"early {index}")
        create_client(stranger, name=f"theirs {index}")
    # Four clients with the same created_at: the id breaks the tie across page boundaries.
    insert_clients(database_url, user_id, [f"tied {index}" for index in range(4)])
    create_client(owner, name="late")
    existing = [c["id"] for c in owner.get("/api/clients?limit=100").get_json()["items"]]
    assert len(existing) == 8

    seen, cursor, pages = [], None, 0
    while True:
        query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = owner.get(f"/api/clients?{query}").get_json()
        assert len(body["items"]) <= 3
        seen += [c["id"] for c in body["items"]]
        pages += 1
        create_client(owner, name=f"added during page {pages}")
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages < 20
    assert len(seen) == len(set(seen))
    assert seen[:len(existing)] == existing
    everything = owner.get("/api/clients?limit=100").get_json()["items"]
    assert set(seen) <= {c["id"] for c in everything}
    created_at = [datetime.fromisoformat(c["created_at"]) for c in everything]
    assert created_at == sorted(created_at)


def test_default_page_size_and_the_last_page(owner, database_url):
    insert_clients(database_url, owner_id(owner), [f"c{index}" for index in range(51)],
                   created_at="(now() AT TIME ZONE 'UTC') - random() * interval '1 day'")
    first = owner.get("/api/clients").get_json()
    assert len(first["items"]) == 50 and first["next_cursor"]
    last = owner.get(f"/api/clients?cursor={first['next_cursor']}").get_json()
    assert len(last["items"]) == 1 and last["next_cursor"] is None
    exact = owner.get("/api/clients?limit=51").get_json()
    assert len(exact["items"]) == 51 and exact["next_cursor"] is None


@pytest.mark.parametrize("query, field", [
    ("limit=0", "limit"),
    ("limit=101", "limit"),
    ("limit=-1", "limit"),
    ("limit=99999999999999999999999999", "limit"),
    ("limit=abc", "limit"),
    ("limit=1.5", "limit"),
    ("limit=", "limit"),
    ("limit=%EF%BC%95", "limit"),  # a full-width digit five
    ("cursor=garbage", "cursor"),
    ("cursor=", "cursor"),
    ("cursor=%C3%A9.%C3%A9", "cursor"),
])
def test_bad_limits_and_cursors_are_refused(owner, query, field):
    response = owner.get(f"/api/clients?{query}")
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]


@pytest.mark.parametrize("secret, list_name, payload", [
    ("another-secret", "clients", ["2026-01-01T00:00:00Z", str(uuid.uuid4())]),
    (None, "conversations", ["2026-01-01T00:00:00Z", str(uuid.uuid4())]),
    (None, "clients", ["yesterday", "x"]),
    (None, "clients", [5, 6]),
    (None, "clients", 7),
])
def test_cursors_of_another_secret_list_or_shape_are_refused(app, owner, secret, list_name,
                                                             payload):
    with app.test_request_context():
        own_secret = app.config["SECRET_KEY"]
        app.config["SECRET_KEY"] = secret or own_secret
        try:
            cursor = pagination.issue_cursor(list_name, payload)
        finally:
            app.config["SECRET_KEY"] = own_secret
    response = owner.get(f"/api/clients?cursor={cursor}")
    assert response.status_code == 422
    assert "cursor" in response.get_json()["error"]["fields"]


def test_a_cursor_issued_for_the_list_is_read_back(app, owner):
    created = [create_client(owner, name=f"Shop {n}") for n in range(3)]
    first = owner.get("/api/clients?limit=1").get_json()
    with app.test_request_context():
        forged = pagination.issue_cursor("clients", ["1970-01-01T00:00:00Z", str(uuid.UUID(int=0))])
    rest = owner.get(f"/api/clients?cursor={forged}").get_json()
    assert [c["id"] for c in first["items"]] == [created[0]["id"]]
    assert [c["id"] for c in rest["items"]] == [c["id"] for c in created]


def test_an_id_in_upper_case_names_the_same_client(owner):
    created = create_client(owner, name="Shop")
    response = owner.get(f"/api/clients/{created['id'].upper()}")
    assert response.status_code == 200
    assert response.get_json()["id"] == created["id"]
