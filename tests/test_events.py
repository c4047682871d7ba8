"""The event feed, typing, seen marks and presence: both sides, on a real PostgreSQL."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from chatconnect.realtime.hub import EXTENSION
from chatconnect.realtime.presence import CLOCK
from chatconnect.repositories.events import EventRepository

from .conftest import TRUNCATE_TABLES, AuthActions
from .test_conversations import create_client, start_conversation, team_url, visitor
from .test_long_poll import connections_in_use, eventually, somebody_waits

STREAM = {"Accept": "text/event-stream"}
STREAM_SECONDS = "2"


def parse_stream(text: str) -> list[dict]:
    """The frames of an SSE body: each a dict of its fields (comments under ":")."""
    frames = []
    for block in text.split("\n\n"):
        if not block:
            continue
        frame = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                frame[":"] = line[1:].strip()
            else:
                name, _, value = line.partition(": ")
                frame[name] = value
        frames.append(frame)
    return frames


class Stream:
    """An event stream read in a background thread until the server ends it."""

    def __init__(self, http, url, headers=None):
        self.chunks = []
        self.status = None
        # Read in the thread that made the request: Flask's stream context lives there.
        self.thread = threading.Thread(target=self._read, args=(http, url, headers), daemon=True)
        self.thread.start()

    def _read(self, http, url, headers):
        response = http.get(url, headers={**STREAM, **(headers or {})}, buffered=False)
        self.status, self.headers = response.status_code, response.headers
        try:
            for chunk in response.response:
                self.chunks.append(chunk.decode() if isinstance(chunk, bytes) else chunk)
        finally:
            response.close()

    def frames(self) -> list[dict]:
        return parse_stream("".join(self.chunks))

    def events(self) -> list[dict]:
        return [json.loads(frame["data"]) for frame in self.frames() if "data" in frame]

    def finish(self) -> list[dict]:
        self.thread.join(timeout=60)
        assert not self.thread.is_alive()
        return self.events()


@pytest.fixture
def stream_app(make_app, database_url):
    """An app whose event streams end after a few seconds."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(TRUNCATE_TABLES)
    return make_app(EVENT_STREAM_SECONDS=STREAM_SECONDS)


def setup(app, database_url, **client_fields):
    team = app.test_client()
    user = AuthActions(team).register()
    shop = create_client(database_url, user["id"], **client_fields)
    started = start_conversation(app.test_client(), shop)
    return team, user, shop, started


def events_url(conversation_id) -> str:
    return f"/api/public/conversations/{conversation_id}/events"


def stored_ids(database_url) -> list[int]:
    with psycopg.connect(database_url) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM events ORDER BY id")]


def streams_open(app, count) -> bool:
    """`count` streams wait, and the hub listens (a typing sent before would be lost)."""
    hub = app.extensions.get(EXTENSION)
    return hub is not None and hub.connected and hub.waiting() >= count


def reply(team, shop, conversation_id, body):
    response = team.post(team_url(shop, conversation_id, "/messages"), json={"body": body})
    assert response.status_code == 201
    return response.get_json()


# --- the list ------------------------------------------------------------------------------

def test_the_team_lists_its_events_oldest_first_and_pages_by_id(stream_app, database_url):
    team, _, shop, started = setup(stream_app, database_url)
    conversation_id = started["conversation"]["id"]
    replies = [reply(team, shop, conversation_id, f"reply {n}") for n in range(3)]

    items = team.get("/api/events").get_json()["items"]
    assert [event["type"] for event in items] == ["conversation.created"] + ["message.created"] * 4
    assert [event["data"]["id"] for event in items[2:]] == [r["id"] for r in replies]
    assert all(event["client_id"] == shop["id"] and event["conversation_id"] == conversation_id
               for event in items)
    ids = [event["id"] for event in items]
    assert ids == sorted(ids)
    after = team.get(f"/api/events?after={ids[1]}").get_json()
    assert [event["id"] for event in after["items"]] == ids[2:]
    assert after["next_cursor"] is None


def test_next_cursor_names_the_last_id_when_more_are_waiting(stream_app, database_url):
    team, _, shop, started = setup(stream_app, database_url)
    with psycopg.connect(database_url) as conn:
        conn.row_factory = psycopg.rows.dict_row
        events = EventRepository(conn)
        for n in range(120):
            events.append(shop["id"], "message.created", {"n": n}, started["conversation"]["id"])
    first = team.get("/api/events").get_json()
    assert len(first["items"]) == 100
    assert first["next_cursor"] == str(first["items"][-1]["id"])
    second = team.get(f"/api/events?after={first['next_cursor']}").get_json()
    assert len(second["items"]) == 122 - 100 and second["next_cursor"] is None
    assert [e["id"] for e in first["items"] + second["items"]] == stored_ids(database_url)


def test_a_long_poll_answers_as_soon_as_an_event_is_stored(stream_app, database_url):
    team, _, shop, started = setup(stream_app, database_url)
    latest = stored_ids(database_url)[-1]
    with ThreadPoolExecutor(max_workers=1) as background:
        waiting = background.submit(team.get, f"/api/events?after={latest}&wait=20")
        assert eventually(lambda: somebody_waits(stream_app))
        message = reply(team, shop, started["conversation"]["id"], "Hi")
        response = waiting.result(timeout=30)
    assert [event["data"] for event in response.get_json()["items"]] == [message]


@pytest.mark.parametrize("query", ["after=-1", "after=x", "wait=26", "client_id=nope",
                                   "after=9223372036854775808"])
def test_bad_queries_are_validation_errors(stream_app, database_url, query):
    team, _, _, _ = setup(stream_app, database_url)
    response = team.get(f"/api/events?{query}")
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"]


def test_a_bad_last_event_id_is_a_validation_error(stream_app, database_url):
    team, _, _, _ = setup(stream_app, database_url)
    response = team.get("/api/events", headers={**STREAM, "Last-Event-ID": "soon"})
    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["Last-Event-ID"]


def test_the_feed_needs_a_sign_in(stream_app):
    response = stream_app.test_client().get("/api/events", headers=STREAM)
    assert response.status_code == 401


# --- another owner's events are never delivered --------------------------------------------

def test_another_owners_events_and_typing_are_never_delivered(stream_app, database_url):
    team, _, shop, started = setup(stream_app, database_url)
    other_team, _, other_shop, other_started = setup(stream_app, database_url)
    other_conversation = other_started["conversation"]["id"]
    mine = {event["id"] for event in team.get("/api/events").get_json()["items"]}
    theirs = {event["id"] for event in other_team.get("/api/events").get_json()["items"]}
    assert mine and theirs and not mine & theirs
    assert team.get(f"/api/events?client_id={other_shop['id']}").status_code == 404
    assert [e["client_id"] for e in team.get(f"/api/events?client_id={shop['id']}")
            .get_json()["items"]] == [shop["id"], shop["id"]]

    stream = Stream(team, "/api/events")
    assert eventually(lambda: streams_open(stream_app, 1))
    reply(other_team, other_shop, other_conversation, "not for you")
    stream_app.test_client().post(f"/api/public/conversations/{other_conversation}/typing",
                                  headers=visitor(other_started["visitor_token"]))
    mine_now = reply(team, shop, started["conversation"]["id"], "for you")
    events = stream.finish()
    assert [event["data"] for event in events] == [mine_now]


# --- Server-Sent Events --------------------------------------------------------------------

def test_a_stream_sends_retry_its_start_events_with_ids_and_ends(stream_app, database_url):
    team, _, shop, started = setup(stream_app, database_url)
    latest = stored_ids(database_url)[-1]
    stream = Stream(team, "/api/events")
    assert eventually(lambda: streams_open(stream_app, 1))
    message = reply(team, shop, started["conversation"]["id"], "live")
    stream.finish()
    assert stream.status == 200
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    assert stream.headers["Cache-Control"] == "no-store"
    opening, event = stream.frames()
    assert opening == {"retry": "2000", "id": str(latest)}
    assert event["event"] == "message.created"
    assert json.loads(event["data"])["data"] == message
    assert event["id"] == str(json.loads(event["data"])["id"])


def test_a_stream_ended_by_the_server_resumes_with_nothing_lost_or_repeated(stream_app,
                                                                            database_url):
    team, _, shop, started = setup(stream_app, database_url)
    conversation_id = started["conversation"]["id"]
    first = Stream(team, "/api/events?after=0")
    assert eventually(lambda: streams_open(stream_app, 1))
    reply(team, shop, conversation_id, "during the first stream")
    first_events = first.finish()
    # Between the streams, as while a browser waits for `retry` to pass.
    reply(team, shop, conversation_id, "between the streams")
    last_id = first.frames()[-1]["id"]
    second = Stream(team, "/api/events?after=0", headers={"Last-Event-ID": last_id})
    assert eventually(lambda: streams_open(stream_app, 1))
    reply(team, shop, conversation_id, "during the second stream")
    second_events = second.finish()

    received = [event["id"] for event in first_events + second_events]
    assert received == stored_ids(database_url)
    assert [e["data"]["body"] for e in second_events] == ["between the streams",
                                                          "during the second stream"]


def test_a_stream_sends_keep_alives_while_nothing_happens(make_app, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(TRUNCATE_TABLES)
    app = make_app(EVENT_STREAM_SECONDS="3", EVENT_STREAM_KEEPALIVE_SECONDS="1")
    team, _, _, _ = setup(app, database_url)
    stream = Stream(team, "/api/events")
    stream.finish()
    assert [frame for frame in stream.frames() if ":" in frame]  # `: keep-alive` comments
    assert all(frame == {":": "keep-alive"} for frame in stream.frames()[1:])


def test_the_visitor_streams_their_conversation_only_without_the_teams_data(stream_app,
                                                                             database_url):
    team, _, shop, started = setup(stream_app, database_url)
    other = start_conversation(stream_app.test_client(), shop, visitor_name="Other")
    conversation_id = started["conversation"]["id"]
    headers = visitor(started["visitor_token"])
    assert team.patch(team_url(shop, conversation_id),
                      json={"tags": ["vip"], "status": "closed"}).status_code == 200

    listed = stream_app.test_client().get(events_url(conversation_id), headers=headers)
    assert listed.status_code == 200
    items = listed.get_json()["items"]
    assert [e["type"] for e in items] == ["conversation.created", "message.created",
                                          "conversation.updated"]
    assert {e["conversation_id"] for e in items} == {conversation_id}
    for event in (items[0], items[2]):
        assert not {"tags", "visitor_name", "visitor_email"} & set(event["data"])
    assert items[2]["data"]["status"] == "closed"

    stream = Stream(stream_app.test_client(), events_url(conversation_id), headers)
    assert eventually(lambda: streams_open(stream_app, 1))
    reply(team, shop, other["conversation"]["id"], "to the other visitor")
    answer = reply(team, shop, conversation_id, "to you")
    events = stream.finish()
    assert [e["type"] for e in events] == ["conversation.updated", "message.created"]
    assert events[1]["data"] == answer
    assert events[0]["data"]["status"] == "open"

    wrong = stream_app.test_client().get(events_url(conversation_id),
                                         headers={**STREAM, **visitor("not-the-token")})
    assert wrong.status_code == 404


def test_visitor_events_answer_cors_and_preflights(database_url, stream_app):
    team, _, shop, started = setup(stream_app, database_url, allowed_domains=["shop.example"])
    conversation_id = started["conversation"]["id"]
    browser = stream_app.test_client()
    origin = {"Origin": "https://shop.example"}
    for path in ("events", "typing", "seen"):
        preflight = browser.options(f"/api/public/conversations/{conversation_id}/{path}",
                                    headers=origin)
        assert preflight.status_code == 204
        assert "Last-Event-ID" in preflight.headers["Access-Control-Allow-Headers"]
        assert preflight.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    listed = browser.get(events_url(conversation_id),
                         headers={**origin, **visitor(started["visitor_token"])})
    assert listed.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    refused = browser.get(events_url(conversation_id),
                          headers={"Origin": "https://evil.example",
                                   **visitor(started["visitor_token"])})
    assert refused.status_code == 403


# --- ordering ------------------------------------------------------------------------------

def test_a_reader_never_gets_an_event_before_an_earlier_one_commits(stream_app, database_url):
    _, _, shop, started = setup(stream_app, database_url)
    conversation_id = started["conversation"]["id"]
    latest = stored_ids(database_url)[-1]

    def read():
        with psycopg.connect(database_url) as conn:
            conn.row_factory = psycopg.rows.dict_row
            return [row["id"] for row in EventRepository(conn).list_for_conversation(
                shop["id"], conversation_id, latest, 100, ["message.created"])]

    first = psycopg.connect(database_url)
    first.row_factory = psycopg.rows.dict_row
    first_id = EventRepository(first).append(shop["id"], "message.created", {"n": 1},
                                             conversation_id)

    def second_writer():
        with psycopg.connect(database_url) as second:
            second.row_factory = psycopg.rows.dict_row
            return EventRepository(second).append(shop["id"], "message.created", {"n": 2},
                                                  conversation_id)

    with ThreadPoolExecutor(max_workers=1) as background:
        second = background.submit(second_writer)
        # The second writer is waiting for the first to end before it can draw an id.
        with psycopg.connect(database_url) as watcher:
            assert eventually(lambda: watcher.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()[0] == 1)
        assert read() == []
        assert not second.done()
        first.commit()
        first.close()
        second_id = second.result(timeout=30)
    assert first_id < second_id
    assert read() == [first_id, second_id]


# --- typing --------------------------------------------------------------------------------

def test_typing_reaches_the_other_side_and_is_never_stored(stream_app, database_url):
    team, _, shop, started = setup(stream_app, database_url)
    conversation_id = started["conversation"]["id"]
    headers = visitor(started["visitor_token"])
    stored_before = stored_ids(database_url)
    team_stream = Stream(team, "/api/events")
    visitor_stream = Stream(stream_app.test_client(), events_url(conversation_id), headers)
    assert eventually(lambda: streams_open(stream_app, 2))

    typed = stream_app.test_client().post(f"/api/public/conversations/{conversation_id}/typing",
                                          headers=headers)
    assert typed.status_code == 204 and typed.data == b""
    assert team.post(team_url(shop, conversation_id, "/typing")).status_code == 204

    expected = {"id": None, "type": "typing", "client_id": shop["id"],
                "conversation_id": conversation_id, "created_at": None}
    assert team_stream.finish() == [{**expected, "data": {"by": "visitor"}}]
    assert visitor_stream.finish() == [{**expected, "data": {"by": "agent"}}]
    typing_frames = [f for f in team_stream.frames() + visitor_stream.frames()
                     if f.get("event") == "typing"]
    assert len(typing_frames) == 2 and not any("id" in frame for frame in typing_frames)
    assert stored_ids(database_url) == stored_before


def test_typing_is_delivered_about_once_a_second(stream_app, database_url):
    team, _, shop, started = setup(stream_app, database_url)
    conversation_id = started["conversation"]["id"]
    stream = Stream(stream_app.test_client(), events_url(conversation_id),
                    visitor(started["visitor_token"]))
    assert eventually(lambda: streams_open(stream_app, 1))
    began = time.monotonic()
    answers = [team.post(team_url(shop, conversation_id, "/typing")).status_code
               for _ in range(8)]
    took = time.monotonic() - began
    delivered = stream.finish()
    assert answers == [204] * 8
    assert 1 <= len(delivered) <= took + 1


def test_typing_needs_the_conversation(stream_app, database_url):
    team, _, shop, started = setup(stream_app, database_url)
    other_team, _, other_shop, _ = setup(stream_app, database_url)
    conversation_id = started["conversation"]["id"]
    assert other_team.post(team_url(shop, conversation_id, "/typing")).status_code == 404
    anonymous = stream_app.test_client().post(
        f"/api/public/conversations/{conversation_id}/typing", headers=visitor("wrong"))
    assert anonymous.status_code == 404


# --- seen marks ----------------------------------------------------------------------------

def seen_marks(team, shop, conversation_id):
    conversation = team.get(team_url(shop, conversation_id)).get_json()
    return conversation["visitor_last_seen_message_id"], conversation["agent_last_seen_message_id"]


def test_seen_marks_never_move_backwards(stream_app, database_url):
    team, _, shop, started = setup(stream_app, database_url)
    conversation_id = started["conversation"]["id"]
    headers = visitor(started["visitor_token"])
    first = started["messages"][0]["id"]
    second = reply(team, shop, conversation_id, "second")["id"]
    third = reply(team, shop, conversation_id, "third")["id"]
    agent_seen = team_url(shop, conversation_id, "/seen")
    visitor_seen = f"/api/public/conversations/{conversation_id}/seen"
    public = stream_app.test_client()

    assert public.post(visitor_seen, json={"message_id": third}, headers=headers).status_code == 204
    assert public.post(visitor_seen, json={"message_id": second}, headers=headers).status_code == 204
    assert team.post(agent_seen, json={"message_id": first}).status_code == 204
    assert team.post(agent_seen, json={"message_id": first}).status_code == 204
    assert seen_marks(team, shop, conversation_id) == (third, first)

    seen_events = [e["data"] for e in team.get("/api/events").get_json()["items"]
                   if e["type"] == "conversation.seen"]
    assert seen_events == [{"by": "visitor", "message_id": third},
                           {"by": "agent", "message_id": first}]
    visitor_view = public.get(events_url(conversation_id), headers=headers).get_json()["items"]
    assert [e["data"] for e in visitor_view if e["type"] == "conversation.seen"] == seen_events


def test_seen_marks_move_forward_under_concurrent_marks(stream_app, database_url):
    team, _, shop, started = setup(stream_app, database_url)
    conversation_id = started["conversation"]["id"]
    ids = [reply(team, shop, conversation_id, f"m{n}")["id"] for n in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda mid: stream_app.test_client().post(
            f"/api/public/conversations/{conversation_id}/seen", json={"message_id": mid},
            headers=visitor(started["visitor_token"])).status_code, reversed(ids)))
    assert answers == [204] * 8
    assert seen_marks(team, shop, conversation_id)[0] == ids[-1]
    moves = [e["data"]["message_id"] for e in team.get("/api/events").get_json()["items"]
             if e["type"] == "conversation.seen"]
    assert moves == sorted(moves) and moves[-1] == ids[-1]


@pytest.mark.parametrize("body", [{}, {"message_id": 0}, {"message_id": "1"},
                                  {"message_id": True}, {"message_id": 1.5},
                                  {"message_id": 1, "extra": 1}])
def test_a_bad_seen_body_is_a_validation_error(stream_app, database_url, body):
    team, _, shop, started = setup(stream_app, database_url)
    response = team.post(team_url(shop, started["conversation"]["id"], "/seen"), json=body)
    assert response.status_code == 422


def test_a_message_of_another_conversation_cannot_be_marked_seen(stream_app, database_url):
    team, _, shop, started = setup(stream_app, database_url)
    other = start_conversation(stream_app.test_client(), shop)
    conversation_id = started["conversation"]["id"]
    before = stored_ids(database_url)
    body = {"message_id": other["messages"][0]["id"]}
    for response in (team.post(team_url(shop, conversation_id, "/seen"), json=body),
                     stream_app.test_client().post(
                         f"/api/public/conversations/{conversation_id}/seen", json=body,
                         headers=visitor(started["visitor_token"]))):
        assert response.status_code == 422
        assert list(response.get_json()["error"]["fields"]) == ["message_id"]
    assert seen_marks(team, shop, conversation_id) == (None, None)
    assert stored_ids(database_url) == before


# --- presence and the widget status ------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += timedelta(seconds=seconds)


def status(app, shop) -> dict:
    response = app.test_client().get(f"/api/public/widgets/{shop['public_api_key']}/status")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=15"
    return response.get_json()


def test_agents_online_with_an_open_stream_and_false_60_s_after_it_closes(stream_app,
                                                                         database_url):
    clock = Clock()
    stream_app.extensions[CLOCK] = clock
    team, _, shop, _ = setup(stream_app, database_url)
    assert status(stream_app, shop) == {"agents_online": False, "open_now": True,
                                        "next_open_at": None}
    stream = Stream(team, "/api/events")
    assert eventually(lambda: streams_open(stream_app, 1))
    assert eventually(lambda: status(stream_app, shop)["agents_online"])
    clock.advance(1)  # the stream closes a second later
    stream.finish()
    clock.advance(59)
    assert status(stream_app, shop)["agents_online"] is True
    clock.advance(1)
    assert status(stream_app, shop)["agents_online"] is False


def test_a_long_poll_counts_as_online_for_60_s(stream_app, database_url):
    clock = Clock()
    stream_app.extensions[CLOCK] = clock
    team, _, shop, _ = setup(stream_app, database_url)
    other_team, _, other_shop, _ = setup(stream_app, database_url)
    assert team.get("/api/events?wait=1").status_code == 200
    assert status(stream_app, shop)["agents_online"] is True
    assert status(stream_app, other_shop)["agents_online"] is False
    clock.advance(60)
    assert status(stream_app, shop)["agents_online"] is False


def test_the_status_of_an_unknown_or_foreign_widget(stream_app, database_url):
    _, _, shop, _ = setup(stream_app, database_url, allowed_domains=["shop.example"])
    http = stream_app.test_client()
    assert http.get("/api/public/widgets/pk_unknown/status").status_code == 404
    path = f"/api/public/widgets/{shop['public_api_key']}/status"
    assert http.get(path, headers={"Origin": "https://evil.example"}).status_code == 403
    allowed = http.get(path, headers={"Origin": "https://shop.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert http.options(path, headers={"Origin": "https://shop.example"}).status_code == 204


# --- retention -----------------------------------------------------------------------------

def test_events_purge_deletes_events_older_than_the_retention(make_app, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(TRUNCATE_TABLES)
    app = make_app(EVENTS_RETENTION_DAYS="7")
    setup(app, database_url)
    old, kept = stored_ids(database_url)
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE events SET created_at = now() - interval '8 days' WHERE id = %s",
                     (old,))
        conn.execute("INSERT INTO rate_limits (key, window_start, hits) VALUES "
                     "('typing:old:agent', now() - interval '2 hours', 1), "
                     "('typing:new:agent', now(), 1), ('login:ip:x', now() - interval '2 hours', 1)")
    result = app.test_cli_runner().invoke(args=["events", "purge"])
    assert result.exit_code == 0, result.output
    assert result.output == "deleted 1 event older than 7 days\n"
    assert stored_ids(database_url) == [kept]
    with psycopg.connect(database_url) as conn:
        keys = {row[0] for row in conn.execute("SELECT key FROM rate_limits")}
    assert {"typing:new:agent", "login:ip:x"} <= keys and "typing:old:agent" not in keys


def test_a_stream_resumes_after_last_event_id_with_nothing_lost_across_a_listener_reconnect(
        make_app, own_cluster):
    database_url = own_cluster.url("chatconnect")
    app = make_app(DATABASE_URL=database_url, DB_POOL_TIMEOUT="2", EVENT_STREAM_SECONDS="10")
    team, _, shop, started = setup(app, database_url)
    conversation_id = started["conversation"]["id"]
    first = Stream(team, "/api/events?after=0")
    assert eventually(lambda: streams_open(app, 1))
    reply(team, shop, conversation_id, "before the restart")
    hub = app.extensions[EXTENSION]
    connections = hub.connections

    own_cluster.restart()
    assert eventually(lambda: hub.connections == connections + 1, seconds=60)
    assert eventually(lambda: team.post(team_url(shop, conversation_id, "/messages"),
                                        json={"body": "after the restart"}).status_code == 201)
    first_events = first.finish()
    frames_with_ids = [frame for frame in first.frames() if "id" in frame]
    second = Stream(team, "/api/events", headers={"Last-Event-ID": frames_with_ids[-1]["id"]})
    assert eventually(lambda: streams_open(app, 1))
    reply(team, shop, conversation_id, "on the next stream")
    second_events = second.finish()

    received = first_events + second_events
    assert [event["id"] for event in received] == stored_ids(database_url)
    assert [e["data"]["body"] for e in received if e["type"] == "message.created"] == [
        "Hello, anyone there?", "before the restart", "after the restart", "on the next stream"]


def test_an_open_stream_holds_no_pooled_connection(make_app, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(TRUNCATE_TABLES)
    app = make_app(DB_POOL_MIN_SIZE="1", DB_POOL_MAX_SIZE="1", DB_POOL_TIMEOUT="2",
                   EVENT_STREAM_SECONDS="4")
    team, _, shop, started = setup(app, database_url)
    stream = Stream(app.test_client(), events_url(started["conversation"]["id"]),
                    visitor(started["visitor_token"]))
    assert eventually(lambda: streams_open(app, 1) and connections_in_use(app) == 0)
    # The pool's only connection serves other requests while the stream is open.
    message = reply(team, shop, started["conversation"]["id"], "Here!")
    assert [e["data"] for e in stream.finish()] == [message]
    assert connections_in_use(app) == 0
