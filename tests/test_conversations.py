"""Visitors and the client's team talking through conversations and messages."""

import hashlib
import secrets
from datetime import datetime

import psycopg
import pytest
from psycopg.types.json import Json

from .conftest import AuthActions

ORIGIN = "https://shop.example"


def create_client(database_url, owner_id, allowed_domains=(), status="active") -> dict:
    """A client row made directly in the database."""
    with psycopg.connect(database_url) as conn:
        client_id, key = conn.execute(
            "INSERT INTO clients (user_id, name, public_api_key, allowed_domains, status) "
            "VALUES (%s, 'Shop', %s, %s, %s) RETURNING id, public_api_key",
            (owner_id, "pk_" + secrets.token_urlsafe(16), Json(list(allowed_domains)), status),
        ).fetchone()
    return {"id": client_id, "public_api_key": key}


def start_conversation(http, client, message="Hello, anyone there?", headers=None, **fields):
    response = http.post(f"/api/public/widgets/{client['public_api_key']}/conversations",
                         json={"message": message, **fields}, headers=headers or {})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def visitor(token) -> dict:
    return {"X-Visitor-Token": token}


def messages_url(conversation_id) -> str:
    return f"/api/public/conversations/{conversation_id}/messages"


def team_url(client, conversation_id=None, suffix="") -> str:
    url = f"/api/clients/{client['id']}/conversations"
    return url + (f"/{conversation_id}" if conversation_id else "") + suffix


def moment(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def error_code(response) -> str:
    return response.get_json()["error"]["code"]


@pytest.fixture
def owner(auth):
    return auth.register()


@pytest.fixture
def shop(owner, database_url):
    return create_client(database_url, owner["id"])


@pytest.fixture
def visitor_client(app):
    return app.test_client()


@pytest.fixture
def started(visitor_client, shop):
    return start_conversation(visitor_client, shop, visitor_name="Vera",
                              visitor_email="vera@example.org")


def test_visitor_and_team_exchange_messages(client, visitor_client, shop, started):
    conversation, token = started["conversation"], started["visitor_token"]
    assert set(started) == {"conversation", "visitor_token", "messages"}
    assert set(conversation) == {"id", "client_id", "contact_id", "status", "visitor_name",
                                 "visitor_email", "tags", "created_at", "last_message_at",
                                 "visitor_last_seen_message_id", "agent_last_seen_message_id"}
    assert conversation["client_id"] == shop["id"] and conversation["status"] == "open"
    assert (conversation["visitor_name"], conversation["visitor_email"]) == (
        "Vera", "vera@example.org")
    assert conversation["tags"] == [] and conversation["created_at"].endswith("Z")
    assert len(token) >= 43
    [first] = started["messages"]
    assert set(first) == {"id", "conversation_id", "sender", "body", "created_at"}
    assert (first["sender"], first["body"], first["conversation_id"]) == (
        "visitor", "Hello, anyone there?", conversation["id"])

    listed = client.get(team_url(shop)).get_json()
    assert [c["id"] for c in listed["items"]] == [conversation["id"]]
    assert listed["next_cursor"] is None

    reply = client.post(team_url(shop, conversation["id"], "/messages"),
                        json={"body": "Hi Vera, how can we help?"})
    assert reply.status_code == 201
    reply = reply.get_json()
    assert reply["sender"] == "agent" and reply["id"] > first["id"]

    seen = visitor_client.get(messages_url(conversation["id"]) + f"?after={first['id']}",
                              headers=visitor(token)).get_json()
    assert seen == {"items": [reply], "next_cursor": None}

    follow_up = visitor_client.post(messages_url(conversation["id"]), headers=visitor(token),
                                    json={"body": "My order is late."})
    assert follow_up.status_code == 201
    follow_up = follow_up.get_json()
    assert follow_up["sender"] == "visitor"

    team_view = client.get(team_url(shop, conversation["id"])).get_json()
    assert team_view["messages"] == [first, reply, follow_up]
    assert moment(team_view["last_message_at"]) >= moment(follow_up["created_at"]) \
        > moment(conversation["created_at"])
    everything = visitor_client.get(messages_url(conversation["id"]), headers=visitor(token))
    assert everything.get_json()["items"] == [first, reply, follow_up]
    after_reply = client.get(team_url(shop, conversation["id"], f"/messages?after={reply['id']}"))
    assert after_reply.get_json() == {"items": [follow_up], "next_cursor": None}


def test_visitor_token_is_stored_only_as_a_hash(started, database_url):
    token = started["visitor_token"]
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT token_hash FROM visitor_tokens").fetchall()
    assert stored == [(hashlib.sha256(token.encode()).hexdigest(),)]


@pytest.mark.parametrize("headers", [
    {},
    {"X-Visitor-Token": ""},
    {"X-Visitor-Token": "not-the-token"},
])
def test_wrong_or_missing_visitor_token_is_404(visitor_client, started, headers):
    url = messages_url(started["conversation"]["id"])
    assert visitor_client.get(url, headers=headers).status_code == 404
    response = visitor_client.post(url, headers=headers, json={"body": "let me in"})
    assert response.status_code == 404 and error_code(response) == "not_found"


def test_a_visitor_token_opens_only_its_own_conversation(visitor_client, shop, started):
    other = start_conversation(visitor_client, shop)
    url = messages_url(other["conversation"]["id"])
    assert visitor_client.get(url, headers=visitor(started["visitor_token"])).status_code == 404
    assert visitor_client.get(url, headers=visitor(other["visitor_token"])).status_code == 200


@pytest.mark.parametrize("conversation_id",
                         ["not-a-uuid", "1", "00000000-0000-0000-0000-000000000000"])
def test_unknown_or_malformed_conversation_id_is_404(client, visitor_client, shop, started,
                                                     conversation_id):
    headers = visitor(started["visitor_token"])
    assert visitor_client.get(messages_url(conversation_id), headers=headers).status_code == 404
    assert visitor_client.options(messages_url(conversation_id)).status_code == 404
    for url in (team_url(shop, conversation_id), team_url(shop, conversation_id, "/messages")):
        assert client.get(url).status_code == 404
    assert client.patch(team_url(shop, conversation_id), json={}).status_code == 404


def test_team_routes_are_scoped_to_the_owner(client, auth, visitor_client, database_url, shop,
                                             started):
    conversation_id = started["conversation"]["id"]
    auth.logout()
    stranger = auth.register()
    strangers_shop = create_client(database_url, stranger["id"])
    attempts = [
        client.get(team_url(shop)),
        client.get(team_url(shop, conversation_id)),
        client.patch(team_url(shop, conversation_id), json={"status": "closed"}),
        client.post(team_url(shop, conversation_id, "/messages"), json={"body": "hijack"}),
        client.get(team_url(shop, conversation_id, "/messages")),
        # The stranger's own client does not reach into someone else's conversation either.
        client.get(team_url(strangers_shop, conversation_id)),
        client.post(team_url(strangers_shop, conversation_id, "/messages"), json={"body": "x"}),
        client.get("/api/clients/not-a-uuid/conversations"),
    ]
    assert [r.status_code for r in attempts] == [404] * len(attempts)
    assert client.get(team_url(strangers_shop)).get_json() == {"items": [], "next_cursor": None}
    history = visitor_client.get(messages_url(conversation_id),
                                 headers=visitor(started["visitor_token"])).get_json()
    assert [m["sender"] for m in history["items"]] == ["visitor"]
    auth.logout()
    assert client.get(team_url(shop)).status_code == 401


def test_a_conversation_is_reached_only_through_its_own_client(client, owner, database_url,
                                                               started):
    second_shop = create_client(database_url, owner["id"])
    conversation_id = started["conversation"]["id"]
    assert client.get(team_url(second_shop, conversation_id)).status_code == 404
    assert client.get(team_url(second_shop)).get_json()["items"] == []


def test_suspended_client_answers_404_on_every_visitor_route(visitor_client, database_url,
                                                             shop, started):
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE clients SET status = 'suspended' WHERE id = %s", (shop["id"],))
    url = messages_url(started["conversation"]["id"])
    headers = visitor(started["visitor_token"])
    responses = [
        visitor_client.post(f"/api/public/widgets/{shop['public_api_key']}/conversations",
                            json={"message": "hi"}),
        visitor_client.options(f"/api/public/widgets/{shop['public_api_key']}/conversations"),
        visitor_client.get(url, headers=headers),
        visitor_client.post(url, headers=headers, json={"body": "hello?"}),
        visitor_client.options(url),
    ]
    assert [r.status_code for r in responses] == [404] * 5


@pytest.mark.parametrize("key", ["pk_nope", "%00", "pk_%00abc", "pk%20with%20space", "a" * 5000])
def test_unknown_and_odd_public_keys_are_404(visitor_client, key):
    url = f"/api/public/widgets/{key}/conversations"
    responses = [visitor_client.post(url, json={"message": "hi"}), visitor_client.options(url)]
    for response in responses:
        assert response.status_code == 404 and error_code(response) == "not_found"


def test_origin_check_and_cors_echo(visitor_client, owner, database_url):
    shop = create_client(database_url, owner["id"], allowed_domains=["shop.example"])
    url = f"/api/public/widgets/{shop['public_api_key']}/conversations"

    refused = visitor_client.post(url, json={"message": "hi"},
                                  headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403 and error_code(refused) == "forbidden"
    assert "Access-Control-Allow-Origin" not in refused.headers

    allowed = visitor_client.post(url, json={"message": "hi"}, headers={"Origin": ORIGIN})
    assert allowed.status_code == 201
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in allowed.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in allowed.headers
    # Errors after the origin check are readable by the page too.
    invalid = visitor_client.post(url, json={"message": ""}, headers={"Origin": ORIGIN})
    assert invalid.status_code == 422 and invalid.headers["Access-Control-Allow-Origin"] == ORIGIN

    token = allowed.get_json()["visitor_token"]
    messages = messages_url(allowed.get_json()["conversation"]["id"])
    foreign = visitor_client.get(messages, headers={**visitor(token),
                                                    "Origin": "https://evil.example"})
    assert foreign.status_code == 403
    own = visitor_client.get(messages, headers={**visitor(token), "Origin": ORIGIN})
    assert own.status_code == 200 and own.headers["Access-Control-Allow-Origin"] == ORIGIN
    # Without an Origin (curl, a server) the call is answered.
    assert visitor_client.get(messages, headers=visitor(token)).status_code == 200


def test_preflights_answer_from_the_client_alone(visitor_client, owner, database_url):
    shop = create_client(database_url, owner["id"], allowed_domains=["*.shop.example"])
    url = f"/api/public/widgets/{shop['public_api_key']}/conversations"
    origin = "https://www.shop.example"
    preflight_headers = {"Origin": origin, "Access-Control-Request-Method": "POST",
                         "Access-Control-Request-Headers": "content-type, x-visitor-token"}

    answer = visitor_client.options(url, headers=preflight_headers)
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == origin
    assert "POST" in answer.headers["Access-Control-Allow-Methods"]
    assert "X-Visitor-Token" in answer.headers["Access-Control-Allow-Headers"]
    assert visitor_client.options(url, headers={"Origin": "https://shop.example.net"}
                                  ).status_code == 403

    started = start_conversation(visitor_client, shop, headers={"Origin": origin})
    messages = messages_url(started["conversation"]["id"])
    answer = visitor_client.options(messages, headers=preflight_headers)
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == origin
    assert visitor_client.options(messages, headers={"Origin": "https://shop.example"}
                                  ).status_code == 403


def test_tag_and_status_filters(client, visitor_client, shop):
    ids = [start_conversation(visitor_client, shop)["conversation"]["id"] for _ in range(3)]
    tagged = client.patch(team_url(shop, ids[0]), json={"tags": ["vip", "billing"]})
    assert tagged.status_code == 200 and tagged.get_json()["tags"] == ["vip", "billing"]
    client.patch(team_url(shop, ids[1]), json={"tags": ["billing"], "status": "closed"})

    def listed(query):
        response = client.get(team_url(shop) + query)
        assert response.status_code == 200, response.get_json()
        return {c["id"] for c in response.get_json()["items"]}

    assert listed("?tag=vip") == {ids[0]}
    assert listed("?tag=billing") == {ids[0], ids[1]}
    assert listed("?tag=VIP") == set()
    assert listed("?status=closed") == {ids[1]}
    assert listed("?status=open") == {ids[0], ids[2]}
    assert listed("?status=open&tag=billing") == {ids[0]}
    assert listed("") == set(ids)


def test_team_list_is_paginated_most_recent_activity_first(client, visitor_client, shop):
    ids = [start_conversation(visitor_client, shop)["conversation"]["id"] for _ in range(5)]
    # A reply makes the oldest conversation the most recently active one.
    client.post(team_url(shop, ids[0], "/messages"), json={"body": "We're on it."})
    expected = [ids[0], *reversed(ids[1:])]

    seen, cursor = [], None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(team_url(shop) + query).get_json()
        assert len(body["items"]) <= 2
        seen += [c["id"] for c in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    items = client.get(team_url(shop)).get_json()["items"]
    activity = [moment(c["last_message_at"]) for c in items]
    assert activity == sorted(activity, reverse=True)
    # The last page that is exactly full says there is nothing more.
    assert client.get(team_url(shop) + "?limit=5").get_json()["next_cursor"] is None


def test_closed_conversation_refuses_the_visitor_until_an_agent_replies(
        client, visitor_client, shop, started, database_url):
    conversation_id, token = started["conversation"]["id"], started["visitor_token"]
    closed = client.patch(team_url(shop, conversation_id), json={"status": "closed"})
    assert closed.status_code == 200 and closed.get_json()["status"] == "closed"

    refused = visitor_client.post(messages_url(conversation_id), headers=visitor(token),
                                  json={"body": "Hello again"})
    assert refused.status_code == 409 and error_code(refused) == "conflict"
    # Nothing of the refused message was kept, and the activity time did not move.
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == (1,)
    assert client.get(team_url(shop, conversation_id)).get_json()["last_message_at"] == \
        closed.get_json()["last_message_at"]
    # The visitor can still read the history.
    assert visitor_client.get(messages_url(conversation_id), headers=visitor(token)).status_code \
        == 200

    client.post(team_url(shop, conversation_id, "/messages"), json={"body": "Reopening"})
    assert client.get(team_url(shop, conversation_id)).get_json()["status"] == "open"
    assert visitor_client.post(messages_url(conversation_id), headers=visitor(token),
                               json={"body": "Thanks"}).status_code == 201


def test_patch_replaces_tags_keeps_each_once_and_empty_patch_changes_nothing(client, shop,
                                                                              started):
    url = team_url(shop, started["conversation"]["id"])
    tags = client.patch(url, json={"tags": ["b", "a", "b", "Ünïcode tag", "a"]}).get_json()["tags"]
    assert tags == ["b", "a", "Ünïcode tag"]
    assert client.patch(url, json={"tags": [f"t{i}" for i in range(20)]}).status_code == 200
    before = client.get(url).get_json()
    after = client.patch(url, json={})
    assert after.status_code == 200
    assert after.get_json() == {k: v for k, v in before.items() if k != "messages"}
    assert client.patch(url, json={"tags": []}).get_json()["tags"] == []


def test_single_conversation_carries_its_latest_100_messages_oldest_first(
        client, shop, started, database_url):
    conversation_id = started["conversation"]["id"]
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO messages (conversation_id, sender, body) "
                     "SELECT %s, 'agent', 'n' || i FROM generate_series(1, 120) i",
                     (conversation_id,))
    messages = client.get(team_url(shop, conversation_id)).get_json()["messages"]
    assert len(messages) == 100
    assert [m["body"] for m in messages] == [f"n{i}" for i in range(21, 121)]


def test_message_lists_hold_100_and_point_to_the_rest(client, visitor_client, shop, started,
                                                      database_url):
    conversation_id, token = started["conversation"]["id"], started["visitor_token"]
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO messages (conversation_id, sender, body) "
                     "SELECT %s, 'agent', 'n' || i FROM generate_series(1, 104) i",
                     (conversation_id,))
    first = visitor_client.get(messages_url(conversation_id), headers=visitor(token)).get_json()
    assert len(first["items"]) == 100
    assert first["next_cursor"] == str(first["items"][-1]["id"])
    rest = visitor_client.get(messages_url(conversation_id) + f"?after={first['next_cursor']}",
                              headers=visitor(token)).get_json()
    assert [m["body"] for m in rest["items"]] == [f"n{i}" for i in range(100, 105)]
    assert rest["next_cursor"] is None
    team = client.get(team_url(shop, conversation_id, f"/messages?after={first['next_cursor']}"))
    assert team.get_json() == rest


@pytest.mark.parametrize("body, field", [
    ({}, "message"),
    ({"message": ""}, "message"),
    ({"message": "x" * 5001}, "message"),
    ({"message": 42}, "message"),
    ({"message": "a\x00b"}, "message"),
    ({"message": "hi", "visitor_name": ""}, "visitor_name"),
    ({"message": "hi", "visitor_name": "n" * 101}, "visitor_name"),
    ({"message": "hi", "visitor_name": ["Vera"]}, "visitor_name"),
    ({"message": "hi", "visitor_email": "not an email"}, "visitor_email"),
    ({"message": "hi", "visitor_email": "a@b"}, "visitor_email"),
    ({"message": "hi", "visitor_email": "a" * 250 + "@b.io"}, "visitor_email"),
    ({"message": "hi", "status": "closed"}, "status"),
])
def test_starting_a_conversation_validates_the_body(visitor_client, shop, database_url, body,
                                                    field):
    response = visitor_client.post(f"/api/public/widgets/{shop['public_api_key']}/conversations",
                                   json=body)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT (SELECT count(*) FROM conversations), "
                            "(SELECT count(*) FROM messages)").fetchone() == (0, 0)


def test_visitor_name_and_email_may_be_null_or_left_out(visitor_client, shop):
    conversation = start_conversation(visitor_client, shop, visitor_name=None,
                                      visitor_email=None)["conversation"]
    assert conversation["visitor_name"] is None and conversation["visitor_email"] is None


@pytest.mark.parametrize("body, field", [
    ({}, "body"),
    ({"body": ""}, "body"),
    ({"body": "x" * 5001}, "body"),
    ({"body": None}, "body"),
    ({"body": "hi", "sender": "agent"}, "sender"),
])
def test_posting_a_message_validates_the_body(client, visitor_client, shop, started, body, field):
    conversation_id = started["conversation"]["id"]
    for response in (
        visitor_client.post(messages_url(conversation_id), json=body,
                            headers=visitor(started["visitor_token"])),
        client.post(team_url(shop, conversation_id, "/messages"), json=body),
    ):
        assert response.status_code == 422
        assert field in response.get_json()["error"]["fields"]


def test_posting_requires_a_json_object(client, visitor_client, shop, started):
    conversation_id = started["conversation"]["id"]
    response = visitor_client.post(messages_url(conversation_id), data="body=hi",
                                   headers=visitor(started["visitor_token"]))
    assert response.status_code == 415
    response = client.post(team_url(shop, conversation_id, "/messages"), data="[]",
                           content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize("body, field", [
    ({"status": "archived"}, "status"),
    ({"status": None}, "status"),
    ({"tags": "vip"}, "tags"),
    ({"tags": [""]}, "tags"),
    ({"tags": ["t" * 41]}, "tags"),
    ({"tags": [7]}, "tags"),
    ({"tags": [f"t{i}" for i in range(21)]}, "tags"),
    ({"tags": ["ok", "bad\x00tag"]}, "tags"),
    ({"visitor_name": "x"}, "visitor_name"),
])
def test_patch_validation(client, shop, started, body, field):
    url = team_url(shop, started["conversation"]["id"])
    response = client.patch(url, json=body)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]
    assert client.get(url).get_json()["status"] == "open"


def test_a_bad_tag_is_named_by_its_value(client, shop, started):
    response = client.patch(team_url(shop, started["conversation"]["id"]),
                            json={"tags": ["fine", "t" * 41]})
    assert ("t" * 41) in response.get_json()["error"]["fields"]["tags"]


@pytest.mark.parametrize("query, field", [
    ("?after=-1", "after"),
    ("?after=abc", "after"),
    ("?after=%D9%A1", "after"),  # a digit, but not an ASCII one
    ("?after=9223372036854775808", "after"),
    ("?after=99999999999999999999999999", "after"),
    ("?wait=26", "wait"),
    ("?wait=-1", "wait"),
    ("?wait=1.5", "wait"),
])
def test_message_list_query_validation(client, visitor_client, shop, started, query, field):
    conversation_id = started["conversation"]["id"]
    for response in (
        visitor_client.get(messages_url(conversation_id) + query,
                           headers=visitor(started["visitor_token"])),
        client.get(team_url(shop, conversation_id, "/messages") + query),
    ):
        assert response.status_code == 422
        assert field in response.get_json()["error"]["fields"]


def test_largest_after_is_accepted(visitor_client, started):
    response = visitor_client.get(
        messages_url(started["conversation"]["id"]) + "?after=9223372036854775807",
        headers=visitor(started["visitor_token"]))
    assert response.get_json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("query, field", [
    ("?status=archived", "status"),
    ("?status=", "status"),
    ("?tag=", "tag"),
    ("?tag=" + "t" * 41, "tag"),
    ("?tag=a%00b", "tag"),
    ("?limit=0", "limit"),
    ("?limit=101", "limit"),
    ("?cursor=made-up", "cursor"),
])
def test_team_list_query_validation(client, shop, query, field):
    response = client.get(team_url(shop) + query)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]


def test_a_cursor_of_another_list_is_refused(client, shop, app):
    from chatconnect.pagination import issue_cursor
    with app.test_request_context():
        foreign = issue_cursor("clients", ["2026-01-01T00:00:00Z", shop["id"]])
    response = client.get(team_url(shop) + f"?cursor={foreign}")
    assert response.status_code == 422 and "cursor" in response.get_json()["error"]["fields"]


def test_conversation_creation_is_rate_limited_per_ip_across_workers(make_app, app, shop):
    first, second = (make_app(CONVERSATION_LIMIT_PER_IP="2/3600").test_client()
                     for _ in range(2))
    start_conversation(first, shop)
    start_conversation(second, shop)
    refused = first.post(f"/api/public/widgets/{shop['public_api_key']}/conversations",
                         json={"message": "one more"})
    assert refused.status_code == 429 and error_code(refused) == "rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    # Another address is counted on its own.
    other_ip = second.post(f"/api/public/widgets/{shop['public_api_key']}/conversations",
                           json={"message": "hi"}, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other_ip.status_code == 201


def test_visitor_messages_are_rate_limited_per_ip_across_workers(make_app, app, shop, started,
                                                                 database_url):
    first, second = (make_app(VISITOR_MESSAGE_LIMIT_PER_IP="3/60").test_client()
                     for _ in range(2))
    url, headers = messages_url(started["conversation"]["id"]), visitor(started["visitor_token"])
    statuses = [http.post(url, headers=headers, json={"body": f"m{i}"}).status_code
                for i, http in enumerate([first, second, first, second])]
    assert statuses == [201, 201, 201, 429]
    refused = first.post(url, headers=headers, json={"body": "again"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == (4,)


def test_a_page_may_read_the_retry_after_of_a_refusal(make_app, shop, started):
    http = make_app(VISITOR_MESSAGE_LIMIT_PER_IP="1/60").test_client()
    headers = {**visitor(started["visitor_token"]), "Origin": "https://shop.example.com"}
    url = messages_url(started["conversation"]["id"])
    accepted = http.post(url, headers=headers, json={"body": "one"})
    refused = http.post(url, headers=headers, json={"body": "two"})
    assert accepted.status_code == 201
    assert "Access-Control-Expose-Headers" not in accepted.headers
    assert refused.status_code == 429
    assert refused.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert refused.headers["Access-Control-Expose-Headers"] == "Retry-After"


def test_agent_replies_do_not_use_up_the_visitor_limit(make_app, app, database_url):
    limited = make_app(VISITOR_MESSAGE_LIMIT_PER_IP="1/60")
    team, visitor_http = limited.test_client(), limited.test_client()
    shop = create_client(database_url, AuthActions(team).register()["id"])
    started = start_conversation(visitor_http, shop)
    conversation_id = started["conversation"]["id"]
    replies = [team.post(team_url(shop, conversation_id, "/messages"), json={"body": f"r{i}"})
               for i in range(3)]
    assert [r.status_code for r in replies] == [201, 201, 201]
    url, headers = messages_url(conversation_id), visitor(started["visitor_token"])
    assert visitor_http.post(url, headers=headers, json={"body": "one"}).status_code == 201
    assert visitor_http.post(url, headers=headers, json={"body": "two"}).status_code == 429


def test_deleting_a_client_removes_its_conversations_and_messages(shop, started, database_url):
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM clients WHERE id = %s", (shop["id"],))
        assert conn.execute("SELECT (SELECT count(*) FROM conversations), "
                            "(SELECT count(*) FROM messages)").fetchone() == (0, 0)
