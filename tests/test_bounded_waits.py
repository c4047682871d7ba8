"""Bounds on the long-polls and event streams one caller holds at once: one more is 429."""

import http.client
import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from chatconnect.realtime.hub import EXTENSION

from .conftest import TRUNCATE_TABLES, AuthActions
from .test_conversations import create_client, messages_url, start_conversation, team_url, visitor
from .test_deploy import free_port, wait_until
from .test_events import STREAM, Stream, events_url, streams_open
from .test_long_poll import eventually

REPO = Path(__file__).resolve().parent.parent


def waiting(app) -> int:
    hub = app.extensions.get(EXTENSION)
    return hub.waiting() if hub is not None else 0


@pytest.fixture
def bounded(make_app, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(TRUNCATE_TABLES)
    return make_app(WAITS_PER_VISITOR="2", WAITS_PER_SESSION="1", WAITS_PER_IP="3",
                    EVENT_STREAM_SECONDS="3")


def conversation(app, database_url):
    team = app.test_client()
    shop = create_client(database_url, AuthActions(team).register()["id"])
    return team, shop, start_conversation(app.test_client(), shop)


def poll(app, started, seconds=20):
    after = started["messages"][0]["id"]
    return app.test_client().get(
        f"{messages_url(started['conversation']['id'])}?after={after}&wait={seconds}",
        headers=visitor(started["visitor_token"]))


def assert_refused(response):
    assert response.status_code == 429
    assert response.get_json()["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1


def test_one_visitor_token_holds_at_most_its_bound(bounded, database_url):
    team, shop, started = conversation(bounded, database_url)
    conversation_id = started["conversation"]["id"]
    other = start_conversation(bounded.test_client(), shop)
    with ThreadPoolExecutor(max_workers=3) as background:
        held = [background.submit(poll, bounded, started) for _ in range(2)]
        assert eventually(lambda: waiting(bounded) == 2)
        assert_refused(poll(bounded, started))
        assert_refused(bounded.test_client().get(
            events_url(conversation_id), headers={**STREAM, **visitor(started["visitor_token"])}))
        # Another visitor has a bound of their own.
        assert poll(bounded, other, seconds=1).status_code == 200
        assert team.post(team_url(shop, conversation_id, "/messages"),
                         json={"body": "here"}).status_code == 201
        assert [f.result(timeout=30).status_code for f in held] == [200, 200]
    # Ended waits are given back.
    assert poll(bounded, started, seconds=1).status_code == 200


def test_one_client_ip_holds_at_most_its_bound(bounded, database_url):
    team, shop, started = conversation(bounded, database_url)
    visitors = [start_conversation(bounded.test_client(), shop) for _ in range(3)]
    with ThreadPoolExecutor(max_workers=3) as background:
        held = [background.submit(poll, bounded, v) for v in (started, *visitors[:2])]
        assert eventually(lambda: waiting(bounded) == 3)
        assert_refused(poll(bounded, visitors[2]))
        for v in (started, *visitors[:2]):
            team.post(team_url(shop, v["conversation"]["id"], "/messages"), json={"body": "hi"})
        assert [f.result(timeout=30).status_code for f in held] == [200] * 3


def test_one_session_holds_at_most_its_bound_and_a_token_has_its_own(bounded, database_url):
    team, shop, _ = conversation(bounded, database_url)
    token = team.post("/api/auth/tokens", json={"name": "script"}).get_json()["token"]
    stream = Stream(team, "/api/events")
    assert eventually(lambda: streams_open(bounded, 1))
    assert_refused(team.get(f"/api/events?after={2**62}&wait=5"))
    assert_refused(team.get("/api/events", headers=STREAM))
    by_token = bounded.test_client().get(
        f"/api/events?after={2**62}&wait=1", headers={"Authorization": f"Bearer {token}"})
    assert by_token.status_code == 200
    stream.finish()
    assert team.get(f"/api/events?after={2**62}&wait=1").status_code == 200


# --- the attack of 48 long-polls with one visitor token, on the shipped server -----------

def request(port, path, headers=None, method="GET", body=None, timeout=60):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture
def server(database_url, tmp_path):
    """gunicorn with the shipped configuration and one gevent worker."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(TRUNCATE_TABLES)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("TEST_DATABASE_URL",)}
    env.update(DATABASE_URL=database_url, SECRET_KEY="test-secret", CHATCONNECT_ENV="development",
               GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="1", LOG_LEVEL="warning",
               WAITS_PER_VISITOR="4", PYTHONPATH=str(REPO))
    log = open(tmp_path / "gunicorn.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"],
                               cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)

    def answers():
        try:
            return request(port, "/healthz", timeout=2)[0] == 200
        except OSError:
            return False
    try:
        wait_until(answers, "gunicorn to answer", 30,
                   lambda: (tmp_path / "gunicorn.log").read_text(errors="replace"))
        yield port
    finally:
        process.terminate()
        process.wait(timeout=40)
        log.close()


def test_48_long_polls_with_one_visitor_token_leave_the_api_answering(server, database_url):
    with psycopg.connect(database_url) as conn:
        owner_id = conn.execute(
            "INSERT INTO users (username, password) VALUES (%s, 'x') RETURNING id",
            (f"user-{uuid.uuid4().hex[:8]}",)).fetchone()[0]
    shop = create_client(database_url, owner_id)
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO client_widgets (client_id) VALUES (%s)", (shop["id"],))
        conn.execute("INSERT INTO widget_styles (client_id) VALUES (%s)", (shop["id"],))
    status, body = request(server, f"/api/public/widgets/{shop['public_api_key']}/conversations",
                           {"Content-Type": "application/json"}, "POST",
                           json.dumps({"message": "Hello"}))
    assert status == 201
    started = json.loads(body)
    token = {"X-Visitor-Token": started["visitor_token"]}
    path = (f"{messages_url(started['conversation']['id'])}"
            f"?after={started['messages'][0]['id']}&wait=25")

    with ThreadPoolExecutor(max_workers=48) as attack:
        polls = [attack.submit(request, server, path, token) for _ in range(48)]
        assert eventually(lambda: sum(poll.done() for poll in polls) >= 44, seconds=30)
        assert sorted(poll.result()[0] for poll in polls if poll.done()) == [429] * 44
        held = [poll for poll in polls if not poll.done()]
        assert len(held) == 4

        # While the four wait, everyone else is served as usual.
        assert request(server, "/healthz", timeout=10)[0] == 200
        assert request(server, f"/api/public/widgets/{shop['public_api_key']}", timeout=10)[0] == 200

        status, _ = request(server, messages_url(started["conversation"]["id"]),
                            {**token, "Content-Type": "application/json"}, "POST",
                            json.dumps({"body": "still there?"}))
        assert status == 201
        answers = [poll.result(timeout=30) for poll in held]
    assert [status for status, _ in answers] == [200] * 4
    assert all([m["body"] for m in json.loads(body)["items"]] == ["still there?"]
               for _, body in answers)
