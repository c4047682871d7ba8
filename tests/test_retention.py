"""Retention: `retention apply` deletes exactly what clients' retention_days no longer keep."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from .test_conversations import start_conversation, visitor

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


@pytest.fixture
def owner(auth, client):
    auth.register()
    return client


def new_client(owner, name, retention_days=None):
    created = owner.post("/api/clients", json={"name": name}).get_json()
    if retention_days is not None:
        response = owner.patch(f"/api/clients/{created['id']}",
                               json={"retention_days": retention_days})
        assert response.get_json()["retention_days"] == retention_days
    return created


def conversation(app, shop, messages=3, token=None, days_ago=0, database_url=None):
    """A conversation with `messages` messages, its activity moved `days_ago` days back."""
    http = app.test_client()
    started = start_conversation(http, shop, headers=visitor(token) if token else None)
    conversation_id = started["conversation"]["id"]
    for n in range(messages - 1):
        http.post(f"/api/public/conversations/{conversation_id}/messages",
                  json={"body": f"message {n}"}, headers=visitor(started["visitor_token"]))
    if days_ago:
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE conversations SET last_message_at = now() - make_interval("
                         "days => %s), created_at = now() - make_interval(days => %s) "
                         "WHERE id = %s", (days_ago, days_ago, conversation_id))
            conn.execute("UPDATE messages SET created_at = now() - make_interval(days => %s) "
                         "WHERE conversation_id = %s", (days_ago, conversation_id))
            conn.execute("UPDATE contacts SET last_seen_at = now() - make_interval(days => %s) "
                         "WHERE id = %s", (days_ago, started["conversation"]["contact_id"]))
    return started


def snapshot(database_url):
    with psycopg.connect(database_url) as conn:
        return {
            "conversations": {str(r[0]) for r in conn.execute("SELECT id FROM conversations")},
            "contacts": {str(r[0]) for r in conn.execute("SELECT id FROM contacts")},
            "messages": conn.execute("SELECT count(*) FROM messages").fetchone()[0],
            "events": {str(r[0]) for r in conn.execute(
                "SELECT DISTINCT conversation_id FROM events WHERE conversation_id IS NOT NULL")},
        }


@pytest.mark.parametrize("batch_size", [1000, 2])
def test_retention_deletes_exactly_the_expired_conversations(app, owner, runner, database_url,
                                                             batch_size):
    shop = new_client(owner, "Shop", retention_days=30)
    forever = new_client(owner, "Keeps everything")
    expired = [conversation(app, shop, days_ago=31, database_url=database_url)
               for _ in range(5)]
    fresh = conversation(app, shop, days_ago=29, database_url=database_url)
    old_elsewhere = conversation(app, forever, days_ago=400, database_url=database_url)
    # A contact with an expired and a live conversation keeps the live one, and stays.
    returning = expired[0]
    live = conversation(app, shop, token=returning["visitor_token"])
    before = snapshot(database_url)

    result = runner.invoke(args=["retention", "apply", "--batch-size", str(batch_size)])
    assert result.exit_code == 0, result.output

    after = snapshot(database_url)
    gone = {c["conversation"]["id"] for c in expired}
    assert after["conversations"] == before["conversations"] - gone
    assert {fresh["conversation"]["id"], old_elsewhere["conversation"]["id"],
            live["conversation"]["id"]} <= after["conversations"]
    assert after["messages"] == before["messages"] - 5 * 3
    assert after["events"] == before["events"] - gone
    gone_contacts = {c["conversation"]["contact_id"] for c in expired[1:]}
    assert after["contacts"] == before["contacts"] - gone_contacts
    assert f"client {shop['id']}: deleted 5 conversations, 15 messages and 4 contacts" \
        in result.output
    batches = int(re.search(r"in (\d+) batches\n\Z", result.output)[1])
    if batch_size == 2:
        # No statement deleted more than two rows: 15 messages, 5 conversations' events, ...
        assert batches >= 15 / 2 + 5 / 2 + 4 / 2
    # Running again finds nothing more to do.
    again = runner.invoke(args=["retention", "apply", "--batch-size", str(batch_size)])
    assert again.exit_code == 0
    assert "deleted 0 conversations, 0 messages and 0 contacts" in again.output
    assert snapshot(database_url) == after


def test_retention_days_are_checked_and_can_be_switched_off(owner):
    shop = new_client(owner, "Shop", retention_days=1)
    url = f"/api/clients/{shop['id']}"
    for bad in (0, 3651, "30", 1.5, True):
        response = owner.patch(url, json={"retention_days": bad})
        assert response.status_code == 422, bad
        assert "retention_days" in response.get_json()["error"]["fields"]
    assert owner.patch(url, json={"retention_days": 3650}).get_json()["retention_days"] == 3650
    assert owner.patch(url, json={"retention_days": None}).get_json()["retention_days"] is None
    assert owner.patch(url, json={"name": "Renamed"}).get_json()["retention_days"] is None


def test_a_second_run_while_one_holds_the_lock_stops_at_once(app, runner, database_url):
    from chatconnect import retention
    with psycopg.connect(database_url, autocommit=True) as other_run:
        other_run.execute("SELECT pg_advisory_lock(%s)", (retention.LOCK_KEY,))
        result = runner.invoke(args=["retention", "apply"])
    assert result.exit_code == 0
    assert result.output == "another retention run is in progress\n"


def test_the_shipped_timer_runs_the_console_script(owner, app, database_url, tmp_path):
    service = (DEPLOY / "chatconnect-retention.service").read_text()
    timer = (DEPLOY / "chatconnect-retention.timer").read_text()
    assert re.search(r"^OnCalendar=\S+", timer, re.M)
    assert re.search(r"^Type=oneshot$", service, re.M)
    command = shlex.split(re.search(r"^ExecStart=(.+)$", service, re.M)[1])
    assert command[0] == "/srv/chatconnect/.venv/bin/chatconnect"
    shop = new_client(owner, "Shop", retention_days=7)
    conversation(app, shop, days_ago=8, database_url=database_url)
    env = {k: v for k, v in os.environ.items() if k not in ("TEST_DATABASE_URL",)}
    env.update(DATABASE_URL=database_url, CHATCONNECT_ENV="development")
    script = str(Path(sys.executable).parent / "chatconnect")
    result = subprocess.run([script, *command[1:]], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "deleted 1 conversations, 3 messages and 1 contacts" in result.stdout
