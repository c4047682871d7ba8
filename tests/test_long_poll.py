"""Long-polling for messages: woken through PostgreSQL NOTIFY, holding no pooled connection."""

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from chatconnect.realtime.hub import EXTENSION

from .conftest import AuthActions
from .test_conversations import create_client, messages_url, start_conversation, team_url, visitor

REPO = Path(__file__).resolve().parent.parent
WAIT = 20  # long enough that waking up before it ends can only mean a notification arrived

POST_FROM_ANOTHER_PROCESS = """
import sys
from chatconnect import create_app
database_url, conversation_id, token = sys.argv[1:]
app = create_app({"DATABASE_URL": database_url, "CHATCONNECT_ENV": "development",
                  "SECRET_KEY": "another-process", "DB_POOL_MIN_SIZE": "1"})
response = app.test_client().post(f"/api/public/conversations/{conversation_id}/messages",
                                  json={"body": "from another process"},
                                  headers={"X-Visitor-Token": token})
sys.exit(0 if response.status_code == 201 else response.status_code)
"""


def timed_get(http, url, headers=None):
    started = time.monotonic()
    response = http.get(url, headers=headers or {})
    return response, time.monotonic() - started


def eventually(condition, seconds=15) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def listener_of(app):
    return app.extensions.get(EXTENSION)


def somebody_waits(app) -> bool:
    listener = listener_of(app)
    return listener is not None and listener.waiting() > 0


def connections_in_use(app) -> int:
    stats = app.extensions["db_pool"].get_stats()
    return stats["pool_size"] - stats["pool_available"]


@pytest.fixture
def background():
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


def setup_conversation(app, database_url):
    """(signed-in team client, the client, the started conversation) on `app`."""
    team = app.test_client()
    shop = create_client(database_url, AuthActions(team).register()["id"])
    return team, shop, start_conversation(app.test_client(), shop)


def test_long_poll_is_woken_by_a_message_posted_in_another_process(app, database_url,
                                                                   background):
    team, shop, started = setup_conversation(app, database_url)
    conversation_id = started["conversation"]["id"]
    first_id = started["messages"][0]["id"]
    waiting = background.submit(
        timed_get, team, team_url(shop, conversation_id, f"/messages?after={first_id}&wait={WAIT}"))
    assert eventually(lambda: somebody_waits(app))

    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "TEST_DATABASE_URL", "SECRET_KEY")}
    env["PYTHONPATH"] = str(REPO)
    other = subprocess.run(
        [sys.executable, "-c", POST_FROM_ANOTHER_PROCESS, database_url, conversation_id,
         started["visitor_token"]], env=env, capture_output=True, text=True, timeout=60)
    assert other.returncode == 0, other.stderr

    response, elapsed = waiting.result(timeout=WAIT + 10)
    assert response.status_code == 200
    assert [m["body"] for m in response.get_json()["items"]] == ["from another process"]
    assert elapsed < WAIT


def test_long_poll_times_out_with_an_empty_list(app, database_url):
    _, _, started = setup_conversation(app, database_url)
    url = messages_url(started["conversation"]["id"])
    after = started["messages"][0]["id"]
    response, elapsed = timed_get(app.test_client(), f"{url}?after={after}&wait=1",
                                  visitor(started["visitor_token"]))
    assert response.status_code == 200
    assert response.get_json() == {"items": [], "next_cursor": None}
    assert 1 <= elapsed < WAIT


def test_long_poll_answers_at_once_when_a_newer_message_exists(app, database_url):
    _, _, started = setup_conversation(app, database_url)
    response, elapsed = timed_get(app.test_client(),
                                  f"{messages_url(started['conversation']['id'])}?wait={WAIT}",
                                  visitor(started["visitor_token"]))
    assert [m["id"] for m in response.get_json()["items"]] == [started["messages"][0]["id"]]
    assert elapsed < WAIT


def test_waiting_holds_no_pooled_connection(app, make_app, database_url, background):
    one_connection = make_app(DB_POOL_MIN_SIZE="1", DB_POOL_MAX_SIZE="1", DB_POOL_TIMEOUT="2")
    team, shop, started = setup_conversation(one_connection, database_url)
    conversation_id = started["conversation"]["id"]
    waiting = background.submit(
        timed_get, one_connection.test_client(),
        f"{messages_url(conversation_id)}?after={started['messages'][0]['id']}&wait={WAIT}",
        visitor(started["visitor_token"]))

    assert eventually(lambda: somebody_waits(one_connection)
                      and connections_in_use(one_connection) == 0)
    assert not waiting.done()
    # The pool's only connection serves another request while the long-poll waits.
    reply = team.post(team_url(shop, conversation_id, "/messages"), json={"body": "Here!"})
    assert reply.status_code == 201

    response, elapsed = waiting.result(timeout=WAIT + 10)
    assert response.get_json()["items"] == [reply.get_json()]
    assert elapsed < WAIT
    assert connections_in_use(one_connection) == 0


def test_one_listener_per_app_started_by_the_first_long_poll(app, database_url, background):
    _, _, started = setup_conversation(app, database_url)
    url = f"{messages_url(started['conversation']['id'])}?after={started['messages'][0]['id']}"
    headers = visitor(started["visitor_token"])
    assert listener_of(app) is None
    assert app.test_client().get(url, headers=headers).status_code == 200
    assert listener_of(app) is None  # a plain read does not start it

    polls = [background.submit(timed_get, app.test_client(), url + "&wait=1", headers)
             for _ in range(2)]
    assert [poll.result(timeout=30)[0].status_code for poll in polls] == [200, 200]
    listener = listener_of(app)
    assert listener.is_alive()
    assert app.test_client().get(url + "&wait=1", headers=headers).status_code == 200
    assert listener_of(app) is listener


def test_listener_reconnects_after_the_database_restarts(make_app, own_cluster, background):
    database_url = own_cluster.url("chatconnect")
    app = make_app(DATABASE_URL=database_url, DB_POOL_TIMEOUT="2")
    team, shop, started = setup_conversation(app, database_url)
    conversation_id, token = started["conversation"]["id"], started["visitor_token"]
    url = f"{messages_url(conversation_id)}?after={started['messages'][0]['id']}"
    app.test_client().get(url + "&wait=1", headers=visitor(token))
    listener = listener_of(app)
    assert eventually(lambda: listener.connections == 1)

    own_cluster.restart()
    assert eventually(lambda: listener.connections == 2, seconds=60)

    waiting = background.submit(timed_get, app.test_client(), f"{url}&wait={WAIT}",
                                visitor(token))
    assert eventually(lambda: somebody_waits(app))
    reply = team.post(team_url(shop, conversation_id, "/messages"), json={"body": "Back again"})
    assert reply.status_code == 201
    response, elapsed = waiting.result(timeout=WAIT + 10)
    assert [m["body"] for m in response.get_json()["items"]] == ["Back again"]
    assert elapsed < WAIT
