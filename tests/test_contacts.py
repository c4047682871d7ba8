"""Visitors as contacts: verified identity, history across devices, export and erasure."""

import hashlib
import json

import psycopg
import pytest

from chatconnect import identity

from .conftest import AuthActions
from .test_conversations import error_code, start_conversation, visitor

NOW = 1_800_000_000  # the server's clock in these tests (identity.now is pinned to it)
ORIGIN = "https://shop.example"


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setattr(identity, "now", lambda: NOW + 0.5)


@pytest.fixture
def shop(client, auth, clock):
    auth.register()
    created = client.post("/api/clients", json={"name": "Shop"}).get_json()
    secret = client.post(f"/api/clients/{created['id']}/identity-secret").get_json()
    return {**created, "secret": secret["identity_secret"]}


@pytest.fixture
def browser(app):
    """A visitor's browser: a client without the team's session cookie."""
    return app.test_client()


def signed(secret, user_id, timestamp=NOW, **fields):
    return {"user_id": user_id, "timestamp": timestamp,
            "signature": identity.sign(secret, user_id, timestamp), **fields}


def identify(http, shop, body, token=None):
    headers = visitor(token) if token else {}
    return http.post(f"/api/public/widgets/{shop['public_api_key']}/identify", json=body,
                     headers=headers)


def identified(http, shop, user_id, token=None, **fields):
    response = identify(http, shop, signed(shop["secret"], user_id, **fields), token)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def contact_conversations(http, shop, token):
    response = http.get(f"/api/public/widgets/{shop['public_api_key']}/conversations",
                        headers=visitor(token))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def contacts_url(shop, suffix=""):
    return f"/api/clients/{shop['id']}/contacts{suffix}"


# --- the identity secret ----------------------------------------------------------------------

def test_identity_secret_is_shown_once_and_stored_encrypted(client, shop, database_url):
    assert shop["secret"].startswith("cc_ids_") and len(shop["secret"]) >= 50
    assert "identity_secret" not in client.get(f"/api/clients/{shop['id']}").get_json()
    with psycopg.connect(database_url) as conn:
        (stored,), = conn.execute("SELECT identity_secret_encrypted FROM clients").fetchall()
        row_text = conn.execute("SELECT clients::text FROM clients").fetchone()[0]
    assert shop["secret"].encode() not in bytes(stored)
    assert shop["secret"] not in row_text
    box = identity.SecretBox(["test-secret"])  # the app's SECRET_KEY: no IDENTITY_ENCRYPTION_KEYS
    assert box.open(shop["id"], stored) == shop["secret"]
    with pytest.raises(identity.UndecryptableSecret):
        box.open("another-client-id", stored)  # bound to its client's row
    with pytest.raises(identity.UndecryptableSecret):
        identity.SecretBox(["some-other-key-material"]).open(shop["id"], stored)


def test_identity_secret_of_someone_elses_client_is_404(app, shop):
    stranger = app.test_client()
    AuthActions(stranger).register()
    response = stranger.post(f"/api/clients/{shop['id']}/identity-secret")
    assert response.status_code == 404


# --- signatures -------------------------------------------------------------------------------

def test_a_valid_signature_gives_a_verified_contact_and_a_token(browser, shop):
    answer = identified(browser, shop, "user-42", name="Ann", email="ann@example.org")
    contact = answer["contact"]
    assert set(contact) == {"id", "client_id", "external_id", "name", "email", "verified",
                            "created_at", "last_seen_at"}
    assert (contact["external_id"], contact["name"], contact["email"], contact["verified"]) == \
        ("user-42", "Ann", "ann@example.org", True)
    token = answer["visitor_token"]
    assert contact_conversations(browser, shop, token) == []
    started = start_conversation(browser, shop, headers=visitor(token))
    assert started["visitor_token"] == token
    assert started["conversation"]["contact_id"] == contact["id"]


def refused(response):
    assert response.status_code == 401, response.get_json()
    return response.get_json()["error"]["message"]


def test_the_same_signature_twice_is_refused(browser, shop):
    body = signed(shop["secret"], "user-42")
    assert identify(browser, shop, body).status_code == 200
    assert refused(identify(browser, shop, body)) == "the identity could not be verified"


@pytest.mark.parametrize("offset, accepted", [(-301, False), (301, False), (-300, True),
                                              (300, True)])
def test_signatures_are_accepted_within_300_seconds_either_side(browser, shop, offset, accepted):
    response = identify(browser, shop, signed(shop["secret"], "user-42", NOW + offset))
    if accepted:
        assert response.status_code == 200
    else:
        assert refused(response) == "the identity could not be verified"


def test_wrong_and_rotated_away_secrets_are_refused(client, browser, shop):
    messages = {refused(identify(browser, shop, signed("cc_ids_not-the-secret", "user-42")))}
    body = signed(shop["secret"], "user-42")
    body["signature"] = body["signature"][:-1] + ("0" if body["signature"][-1] != "0" else "1")
    messages.add(refused(identify(browser, shop, body)))
    new_secret = client.post(f"/api/clients/{shop['id']}/identity-secret").get_json()
    messages.add(refused(identify(browser, shop, signed(shop["secret"], "user-42", NOW - 1))))
    replayed = signed(new_secret["identity_secret"], "user-42")
    assert identify(browser, shop, replayed).status_code == 200
    messages.add(refused(identify(browser, shop, replayed)))
    messages.add(refused(identify(browser, shop, signed(new_secret["identity_secret"],
                                                        "user-42", NOW - 400))))
    assert messages == {"the identity could not be verified"}


def test_a_client_without_an_identity_secret_refuses_identify(client, browser, shop):
    created = client.post("/api/clients", json={"name": "No secret"}).get_json()
    response = identify(browser, created, signed("anything", "user-42"))
    assert refused(response) == "the identity could not be verified"


@pytest.mark.parametrize("body, field", [
    ({"timestamp": NOW, "signature": "0" * 64}, "user_id"),
    ({"user_id": "", "timestamp": NOW, "signature": "0" * 64}, "user_id"),
    ({"user_id": "x" * 201, "timestamp": NOW, "signature": "0" * 64}, "user_id"),
    ({"user_id": "u", "timestamp": "1800000000", "signature": "0" * 64}, "timestamp"),
    ({"user_id": "u", "timestamp": 1.8e9 + 0.5, "signature": "0" * 64}, "timestamp"),
    ({"user_id": "u", "timestamp": True, "signature": "0" * 64}, "timestamp"),
    ({"user_id": "u", "timestamp": NOW, "signature": "A" * 64}, "signature"),
    ({"user_id": "u", "timestamp": NOW, "signature": "0" * 63}, "signature"),
    ({"user_id": "u", "timestamp": NOW, "signature": "0" * 64, "admin": True}, "admin"),
])
def test_malformed_identify_bodies_are_validation_errors(browser, shop, body, field):
    response = identify(browser, shop, body)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]


def test_the_replay_store_forgets_signatures_once_they_expire(browser, shop, database_url):
    identified(browser, shop, "user-1")
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM identity_signatures").fetchone() == (1,)
        # As if it had been accepted long ago: the next identify purges it.
        conn.execute("UPDATE identity_signatures SET expires_at = now() - interval '1 second'")
    identified(browser, shop, "user-2")
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT signature, expires_at FROM identity_signatures").fetchall()
    assert [row[0] for row in stored] == [identity.sign(shop["secret"], "user-2", NOW)]
    assert stored[0][1].timestamp() == NOW + identity.REPLAY_KEEP_SECONDS


# --- contacts across devices, merge, identity_required -----------------------------------------

def test_the_same_user_on_two_devices_sees_one_history(app, shop):
    phone, laptop = app.test_client(), app.test_client()
    on_phone = identified(phone, shop, "user-42")
    first = start_conversation(phone, shop, headers=visitor(on_phone["visitor_token"]))
    on_laptop = identified(laptop, shop, "user-42", timestamp=NOW + 1)
    assert on_laptop["contact"]["id"] == on_phone["contact"]["id"]
    assert on_laptop["visitor_token"] != on_phone["visitor_token"]
    second = start_conversation(laptop, shop, message="Me again",
                                headers=visitor(on_laptop["visitor_token"]))
    ids = {first["conversation"]["id"], second["conversation"]["id"]}
    for http, token in ((phone, on_phone["visitor_token"]), (laptop, on_laptop["visitor_token"])):
        assert {c["id"] for c in contact_conversations(http, shop, token)} == ids
        for conversation_id in ids:
            response = http.get(f"/api/public/conversations/{conversation_id}/messages",
                                headers=visitor(token))
            assert response.status_code == 200


def test_identify_moves_an_anonymous_browsers_conversations_to_the_verified_contact(
        client, browser, shop, database_url):
    anonymous = start_conversation(browser, shop, visitor_name="Guest",
                                   visitor_email="guest@example.org")
    anonymous_token = anonymous["visitor_token"]
    second = start_conversation(browser, shop, message="Another question",
                                headers=visitor(anonymous_token))
    assert second["visitor_token"] == anonymous_token
    assert second["conversation"]["contact_id"] == anonymous["conversation"]["contact_id"]
    other = start_conversation(client, shop, message="Someone else")

    answer = identified(browser, shop, "user-42", token=anonymous_token, name="Ann")
    contact = answer["contact"]
    assert (contact["name"], contact["email"]) == ("Ann", "guest@example.org")
    assert {c["id"] for c in contact_conversations(browser, shop, answer["visitor_token"])} == \
        {anonymous["conversation"]["id"], second["conversation"]["id"]}
    assert all(c["contact_id"] == contact["id"]
               for c in contact_conversations(browser, shop, answer["visitor_token"]))
    # The anonymous contact and its token are gone; the other visitor is untouched.
    assert browser.get(f"/api/public/widgets/{shop['public_api_key']}/conversations",
                       headers=visitor(anonymous_token)).status_code == 404
    listed = client.get(contacts_url(shop)).get_json()["items"]
    assert {c["id"] for c in listed} == {contact["id"], other["conversation"]["contact_id"]}
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM contacts WHERE id = %s",
                            (anonymous["conversation"]["contact_id"],)).fetchone() == (0,)


def test_identify_as_another_user_replaces_the_token_without_merging_verified_contacts(
        browser, shop):
    ann = identified(browser, shop, "ann")
    start_conversation(browser, shop, headers=visitor(ann["visitor_token"]))
    bob = identified(browser, shop, "bob", token=ann["visitor_token"])
    assert bob["contact"]["id"] != ann["contact"]["id"]
    assert contact_conversations(browser, shop, bob["visitor_token"]) == []
    assert browser.get(f"/api/public/widgets/{shop['public_api_key']}/conversations",
                       headers=visitor(ann["visitor_token"])).status_code == 404
    again = identified(browser, shop, "ann", timestamp=NOW + 1)
    assert len(contact_conversations(browser, shop, again["visitor_token"])) == 1


def test_identity_required_refuses_anonymous_starts(client, browser, shop):
    assert client.patch(f"/api/clients/{shop['id']}",
                        json={"identity_required": True}).get_json()["identity_required"] is True
    url = f"/api/public/widgets/{shop['public_api_key']}/conversations"
    response = browser.post(url, json={"message": "Hi"})
    assert response.status_code == 401 and error_code(response) == "unauthorized"
    # An anonymous contact's token (from before the switch) does not do either.
    client.patch(f"/api/clients/{shop['id']}", json={"identity_required": False})
    anonymous = start_conversation(browser, shop)
    client.patch(f"/api/clients/{shop['id']}", json={"identity_required": True})
    response = browser.post(url, json={"message": "Hi"},
                            headers=visitor(anonymous["visitor_token"]))
    assert response.status_code == 401
    # The anonymous visitor can still write in the conversation they have.
    assert browser.post(f"/api/public/conversations/{anonymous['conversation']['id']}/messages",
                        json={"body": "Still there?"},
                        headers=visitor(anonymous["visitor_token"])).status_code == 201
    verified = identified(browser, shop, "user-42", token=anonymous["visitor_token"])
    started = start_conversation(browser, shop, headers=visitor(verified["visitor_token"]))
    assert started["conversation"]["contact_id"] == verified["contact"]["id"]


def test_a_token_that_opens_nothing_starts_a_new_anonymous_contact(browser, shop):
    started = start_conversation(browser, shop, headers=visitor("not-a-token-of-this-shop"))
    assert started["visitor_token"] != "not-a-token-of-this-shop"
    assert len(contact_conversations(browser, shop, started["visitor_token"])) == 1


def test_visitor_conversation_list_needs_the_contacts_token(browser, shop):
    url = f"/api/public/widgets/{shop['public_api_key']}/conversations"
    assert browser.get(url).status_code == 404
    assert browser.get(url, headers=visitor("wrong")).status_code == 404


# --- the team side ----------------------------------------------------------------------------

def test_contacts_list_and_search(client, app, shop, monkeypatch):
    people = [("ann-1", "Ann Lee", "ann@shop.example"), ("bob-2", "Bob Stone", "bob@mail.test"),
              ("carl_3", "Carl", "carl@shop.example")]
    for offset, (user_id, name, email) in enumerate(people):
        identified(app.test_client(), shop, user_id, timestamp=NOW + offset, name=name,
                   email=email)
    start_conversation(app.test_client(), shop, visitor_name="Dora")

    def names(query=""):
        response = client.get(contacts_url(shop, query))
        assert response.status_code == 200, response.get_json()
        return [c["name"] for c in response.get_json()["items"]]

    assert names() == ["Dora", "Carl", "Bob Stone", "Ann Lee"]  # most recently seen first
    assert names("?q=SHOP.example") == ["Carl", "Ann Lee"]  # email, any letter case
    assert names("?q=ston") == ["Bob Stone"]  # name
    assert names("?q=bob-2") == ["Bob Stone"]  # external id
    assert names("?q=l_3") == ["Carl"]
    assert names("?q=n_1") == names("?q=%25%25%25") == []  # LIKE wildcards are plain text
    first = client.get(contacts_url(shop, "?limit=3")).get_json()
    rest = client.get(contacts_url(shop, f"?limit=3&cursor={first['next_cursor']}")).get_json()
    assert [c["name"] for c in first["items"] + rest["items"]] == names()
    assert rest["next_cursor"] is None
    for short in ("", "an"):
        assert client.get(contacts_url(shop, f"?q={short}")).status_code == 422
    # Past the most recently seen contacts, the search goes on through the whole client.
    from chatconnect.repositories import contacts
    monkeypatch.setattr(contacts, "RECENT_CONTACTS_SEARCHED_FIRST", 1)
    assert names("?q=SHOP.example") == ["Carl", "Ann Lee"]
    paged = client.get(contacts_url(shop, "?q=shop.example&limit=1")).get_json()
    assert [c["name"] for c in paged["items"]] == ["Carl"]
    rest = client.get(contacts_url(shop, f"?q=shop.example&limit=1&cursor={paged['next_cursor']}"))
    assert [c["name"] for c in rest.get_json()["items"]] == ["Ann Lee"]


def test_one_contact_with_its_conversations(client, browser, shop):
    answer = identified(browser, shop, "user-42")
    token = answer["visitor_token"]
    first = start_conversation(browser, shop, headers=visitor(token))
    second = start_conversation(browser, shop, message="Again", headers=visitor(token))
    response = client.get(contacts_url(shop, f"/{answer['contact']['id']}"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["external_id"] == "user-42"
    assert [c["id"] for c in body["conversations"]] == [second["conversation"]["id"],
                                                         first["conversation"]["id"]]
    assert client.get(contacts_url(shop, f"/{first['conversation']['id']}")).status_code == 404


def test_export_holds_everything_about_the_contact_and_nothing_else(client, app, shop):
    browser, stranger = app.test_client(), app.test_client()
    answer = identified(browser, shop, "user-42", name="Ann", email="ann@example.org")
    token = answer["visitor_token"]
    started = start_conversation(browser, shop, message="My order?", headers=visitor(token))
    conversation_id = started["conversation"]["id"]
    client.post(f"/api/clients/{shop['id']}/conversations/{conversation_id}/messages",
                json={"body": "On its way"})
    start_conversation(stranger, shop, message="Stranger's secret", visitor_name="Eve")

    response = client.get(contacts_url(shop, f"/{answer['contact']['id']}/export"))
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="contact-{answer["contact"]["id"]}.json"'
    export = response.get_json()
    assert export["contact"]["id"] == answer["contact"]["id"]
    assert export["contact"]["email"] == "ann@example.org"
    [conversation] = export["conversations"]
    assert conversation["id"] == conversation_id
    assert [(m["sender"], m["body"]) for m in conversation["messages"]] == [
        ("visitor", "My order?"), ("agent", "On its way")]
    assert len(export["visitor_tokens"]) == 1
    assert token not in json.dumps(export)
    assert hashlib.sha256(token.encode()).hexdigest() not in json.dumps(export)
    assert "Stranger" not in json.dumps(export) and "Eve" not in json.dumps(export)


def rows_mentioning(database_url, needles) -> dict:
    """table -> rows of any table of the schema whose text contains one of the needles."""
    found = {}
    with psycopg.connect(database_url) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            rows = conn.execute(
                psycopg.sql.SQL("SELECT t::text FROM {} t WHERE t::text ILIKE ANY(%s)").format(
                    psycopg.sql.Identifier(table)),
                ([f"%{needle}%" for needle in needles],)).fetchall()
            if rows:
                found[table] = [row[0] for row in rows]
    return found


def test_erase_leaves_no_row_mentioning_the_contact(client, app, shop, database_url):
    browser, other = app.test_client(), app.test_client()
    anonymous = start_conversation(browser, shop, message="Guest question",
                                   visitor_name="Zed Zimmer", visitor_email="zed@zimmer.example")
    answer = identified(browser, shop, "zed-user-77", token=anonymous["visitor_token"])
    token = answer["visitor_token"]
    started = start_conversation(browser, shop, message="Zed's private note",
                                 headers=visitor(token))
    client.post(f"/api/clients/{shop['id']}/conversations/{started['conversation']['id']}"
                "/messages", json={"body": "Reply to Zed"})
    # Typing and seen marks, of both sides, name the conversation too.
    for conversation in (anonymous, started):
        conversation_id = conversation["conversation"]["id"]
        public = f"/api/public/conversations/{conversation_id}"
        team = f"/api/clients/{shop['id']}/conversations/{conversation_id}"
        assert browser.post(f"{public}/typing", headers=visitor(token)).status_code == 204
        assert client.post(f"{team}/typing").status_code == 204
        first = conversation["messages"][0]["id"]
        assert browser.post(f"{public}/seen", json={"message_id": first},
                            headers=visitor(token)).status_code == 204
        assert client.post(f"{team}/seen", json={"message_id": first}).status_code == 204
    kept = start_conversation(other, shop, message="Keep me", visitor_name="Kim")
    contact_id = answer["contact"]["id"]
    needles = [contact_id, anonymous["conversation"]["id"], started["conversation"]["id"],
               "zed-user-77", "Zed Zimmer", "zed@zimmer.example", "Guest question",
               "private note", "Reply to Zed", hashlib.sha256(token.encode()).hexdigest(),
               hashlib.sha256(anonymous["visitor_token"].encode()).hexdigest()]
    assert set(rows_mentioning(database_url, needles)) >= {"contacts", "conversations",
                                                           "messages", "visitor_tokens",
                                                           "rate_limits"}

    assert "events" in rows_mentioning(database_url, needles)

    response = client.delete(contacts_url(shop, f"/{contact_id}"))
    assert response.status_code == 204
    # All that names the contact is the event saying it was erased, with its id only.
    assert rows_mentioning(database_url, needles).keys() == {"events"}
    with psycopg.connect(database_url) as conn:
        erased_events = conn.execute(
            "SELECT type, conversation_id, data FROM events WHERE data::text LIKE %s",
            (f"%{contact_id}%",)).fetchall()
        conn.execute("DELETE FROM events WHERE type = 'contact.erased'")
    assert erased_events == [("contact.erased", None, {"contact_id": contact_id})]
    assert rows_mentioning(database_url, needles) == {}
    assert client.get(contacts_url(shop, f"/{contact_id}")).status_code == 404
    assert client.delete(contacts_url(shop, f"/{contact_id}")).status_code == 404
    assert browser.get(f"/api/public/widgets/{shop['public_api_key']}/conversations",
                       headers=visitor(token)).status_code == 404
    # Everyone else's data stays.
    assert contact_conversations(other, shop, kept["visitor_token"])[0]["id"] == \
        kept["conversation"]["id"]
    assert rows_mentioning(database_url, ["Keep me"]).keys() == {"messages", "events"}


# --- key rotation -----------------------------------------------------------------------------

def test_encryption_keys_rotate_without_losing_secrets(app, make_app, database_url, clock):
    old_key, new_key = "old-encryption-key-0123456789", "new-encryption-key-0123456789"
    app = make_app(IDENTITY_ENCRYPTION_KEYS=old_key)
    owner = app.test_client()
    AuthActions(owner).register()
    shop = owner.post("/api/clients", json={"name": "Shop"}).get_json()
    shop["secret"] = owner.post(
        f"/api/clients/{shop['id']}/identity-secret").get_json()["identity_secret"]

    # Only the new key: the stored secret does not open, identify is refused (and logged).
    only_new = make_app(IDENTITY_ENCRYPTION_KEYS=new_key).test_client()
    assert identify(only_new, shop, signed(shop["secret"], "u", NOW)).status_code == 401
    # The new key first, the old one still listed: works, and reencrypt moves to the new key.
    both = make_app(IDENTITY_ENCRYPTION_KEYS=f"{new_key},{old_key}")
    assert identify(both.test_client(), shop, signed(shop["secret"], "u", NOW + 1)) \
        .status_code == 200
    result = both.test_cli_runner().invoke(args=["identity", "reencrypt"])
    assert result.exit_code == 0 and result.output == "re-encrypted 1 identity secret\n"
    assert both.test_cli_runner().invoke(args=["identity", "reencrypt"]).output == \
        "re-encrypted 0 identity secrets\n"
    assert identify(only_new, shop, signed(shop["secret"], "u", NOW + 2)).status_code == 200
    # A secret that no configured key opens is named, and the others are still re-sealed.
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE clients SET identity_secret_encrypted = %s WHERE id = %s",
                     (identity.SecretBox([old_key]).seal(shop["id"], "cc_ids_x"), shop["id"]))
    other = owner.post("/api/clients", json={"name": "Other"}).get_json()
    owner.post(f"/api/clients/{other['id']}/identity-secret")  # sealed under old_key
    result = make_app(IDENTITY_ENCRYPTION_KEYS=f"{new_key},a-third-key-0123456789") \
        .test_cli_runner().invoke(args=["identity", "reencrypt"])
    assert result.exit_code == 1
    assert result.output.startswith("re-encrypted 0 identity secrets\n")
    assert shop["id"] in result.output and other["id"] in result.output


def test_identity_encryption_keys_must_be_long(tmp_path):
    from chatconnect.config import ConfigError, load_settings
    with pytest.raises(ConfigError, match="IDENTITY_ENCRYPTION_KEYS"):
        load_settings({"DATABASE_URL": "postgresql://x", "SECRET_KEY": "s",
                       "IDENTITY_ENCRYPTION_KEYS": "long-enough-key-123456,short"})


def test_merged_conversations_are_announced_with_their_new_contact(browser, shop, database_url):
    anonymous = start_conversation(browser, shop)
    answer = identified(browser, shop, "user-42", token=anonymous["visitor_token"])
    with psycopg.connect(database_url) as conn:
        events = conn.execute("SELECT type, conversation_id::text, data FROM events "
                              "ORDER BY id").fetchall()
    assert [event[0] for event in events] == ["conversation.created", "message.created",
                                              "conversation.updated"]
    assert events[0][2]["contact_id"] == anonymous["conversation"]["contact_id"]
    assert events[2][1] == anonymous["conversation"]["id"]
    assert events[2][2]["contact_id"] == answer["contact"]["id"]


def test_the_contacts_token_opens_the_feed_typing_and_seen_of_each_of_its_conversations(
        browser, app, shop):
    first = start_conversation(browser, shop, visitor_name="Vera", visitor_email="v@vera.example")
    token = first["visitor_token"]
    second = start_conversation(browser, shop, message="Me again", headers=visitor(token))
    stranger = start_conversation(app.test_client(), shop, message="Someone else")
    for started in (first, second):
        public = f"/api/public/conversations/{started['conversation']['id']}"
        feed = browser.get(f"{public}/events", headers=visitor(token))
        assert feed.status_code == 200
        items = feed.get_json()["items"]
        assert [e["type"] for e in items] == ["conversation.created", "message.created"]
        assert {e["conversation_id"] for e in items} == {started["conversation"]["id"]}
        assert not {"contact_id", "visitor_name", "visitor_email", "tags"} & set(items[0]["data"])
        assert browser.post(f"{public}/typing", headers=visitor(token)).status_code == 204
        assert browser.post(f"{public}/seen", headers=visitor(token), json={
            "message_id": started["messages"][0]["id"]}).status_code == 204
        for wrong in (stranger["visitor_token"], "not-the-token"):
            assert browser.get(f"{public}/events", headers=visitor(wrong)).status_code == 404
            assert browser.post(f"{public}/typing", headers=visitor(wrong)).status_code == 404
            assert browser.post(f"{public}/seen", headers=visitor(wrong), json={
                "message_id": started["messages"][0]["id"]}).status_code == 404


def test_the_visitor_conversation_list_refuses_unknown_query_parameters(browser, shop):
    token = start_conversation(browser, shop)["visitor_token"]
    response = browser.get(f"/api/public/widgets/{shop['public_api_key']}/conversations"
                           "?limit=5&colour=blue", headers=visitor(token))
    assert response.status_code == 422
    assert error_code(response) == "validation_error"
    assert len(contact_conversations(browser, shop, token)) == 1
