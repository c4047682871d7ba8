"""`chatconnect worker` delivering to a real HTTP receiver on loopback: signed, filtered,
retried, taken over after a crash, once per event with two workers, and never to a
non-public address unless the development setting says so."""

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from chatconnect.repositories.events import EventRepository
from chatconnect.repositories.webhook_deliveries import WebhookDeliveryRepository
from chatconnect.webhooks.signing import signature
from chatconnect.webhooks.worker import Worker, backoff

from .conftest import AuthActions, app_config
from .webhook_receiver import Receiver, wait_until

SIGNATURE_TOLERANCE = 300  # seconds, as the README's verification code


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def dev_app(make_app, database_url, app):
    """The app with WEBHOOK_ALLOW_PRIVATE_NETWORKS, so that webhooks may point at loopback, and
    a pool large enough for a worker's senders besides the test's requests."""
    return make_app(WEBHOOK_ALLOW_PRIVATE_NETWORKS="true", DB_POOL_MAX_SIZE="10")


@pytest.fixture
def owner(dev_app):
    client = dev_app.test_client()
    AuthActions(client).register()
    return client


@pytest.fixture
def shop(owner):
    return owner.post("/api/clients", json={"name": "Shop"}).get_json()


def add_webhook(owner, shop, url, **body):
    response = owner.post(f"/api/clients/{shop['id']}/webhooks", json={"url": url, **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def deliveries(owner, shop, webhook):
    url = f"/api/clients/{shop['id']}/webhooks/{webhook['id']}/deliveries?limit=100"
    return owner.get(url).get_json()["items"]


def store_events(database_url, client_id, count=1, type="message.created"):
    with psycopg.connect(database_url) as conn:
        ids = []
        for n in range(count):
            ids.append(conn.execute(
                "INSERT INTO events (client_id, type, data) VALUES (%s, %s, %s) RETURNING id",
                (client_id, type, psycopg.types.json.Jsonb({"n": n}))).fetchone()[0])
        return ids


@contextmanager
def running_worker(app, **options):
    options.setdefault("allow_private", True)
    worker = Worker(app.extensions["db_pool"], app.config["DATABASE_URL"], **options)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(30)
        assert not thread.is_alive()


def verify(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """An implementation of the receiver's check written from the contract alone."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(parts["t"])
    if abs((now or time.time()) - timestamp) > SIGNATURE_TOLERANCE:
        return False
    expected = hmac.new(secret.encode("utf-8"), str(timestamp).encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


# --- signed, complete, filtered -------------------------------------------------------------

def test_every_event_type_is_delivered_and_verifies(dev_app, owner, shop, receiver):
    webhook = add_webhook(owner, shop, receiver.url())
    started = dev_app.test_client().post(
        f"/api/public/widgets/{shop['public_api_key']}/conversations",
        json={"message": "Hello", "visitor_name": "Vera"}).get_json()
    conversation = f"/api/clients/{shop['id']}/conversations/{started['conversation']['id']}"
    reply = owner.post(f"{conversation}/messages", json={"body": "Hi Vera"}).get_json()
    closed = owner.patch(conversation, json={"status": "closed"}).get_json()
    seen = {"by": "agent", "message_id": started["messages"][0]["id"]}
    with dev_app.extensions["db_pool"].connection() as conn:  # as the seen route stores it
        EventRepository(conn).append(shop["id"], "conversation.seen", seen,
                                     started["conversation"]["id"])
    with running_worker(dev_app):
        got = receiver.wait_for(5)
        wait_until(lambda: all(d["status"] == "succeeded"
                               for d in deliveries(owner, shop, webhook)), "recorded successes")

    events = sorted((json.loads(r.body) for r in got), key=lambda event: event["id"])
    assert [(e["type"], e["data"]) for e in events] == [
        ("conversation.created", started["conversation"]),
        ("message.created", started["messages"][0]),
        ("message.created", reply),
        ("conversation.updated", closed),
        ("conversation.seen", seen),
    ]
    for request in got:
        assert verify(webhook["secret"], request.headers["ChatConnect-Signature"], request.body)
        assert not verify("whsec_another", request.headers["ChatConnect-Signature"],
                          request.body)
        event = json.loads(request.body)
        assert set(event) == {"id", "type", "client_id", "conversation_id", "data", "created_at"}
        assert (event["client_id"], event["conversation_id"]) == (
            shop["id"], started["conversation"]["id"])
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["ChatConnect-Event-Id"] == str(event["id"])
        assert request.headers["ChatConnect-Event-Type"] == event["type"]
    log = deliveries(owner, shop, webhook)
    assert [d["event_id"] for d in log] == [e["id"] for e in reversed(events)]
    assert {(d["status"], d["attempt"], d["response_status"], d["error"], d["next_attempt_at"])
            for d in log} == {("succeeded", 1, 200, None, None)}


def readme_code(language: str, section: str) -> str:
    """The first `language` code block after the README heading `section`."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    start = readme.index(f"```{language}\n", readme.index(section)) + len(language) + 4
    return readme[start:readme.index("```", start)]


def test_the_readmes_python_verification_accepts_a_real_delivery(dev_app, owner, shop,
                                                                 receiver, database_url):
    namespace = {}
    exec(readme_code("python", "### Verifying the signature"), namespace)
    readme_verify = namespace["verify_chatconnect_signature"]
    webhook = add_webhook(owner, shop, receiver.url())
    store_events(database_url, shop["id"], 1)
    with running_worker(dev_app):
        [request] = receiver.wait_for(1)
    header, secret = request.headers["ChatConnect-Signature"], webhook["secret"]
    assert readme_verify(secret, header, request.body)
    assert not readme_verify(secret, header, request.body + b" ")
    assert not readme_verify("whsec_another", header, request.body)
    assert not readme_verify(secret, "t=1,v1=00", request.body)
    assert not readme_verify(secret, "", request.body)
    old = signature(secret, request.body, timestamp=int(time.time()) - SIGNATURE_TOLERANCE - 5)
    assert not readme_verify(secret, old, request.body)


def test_an_old_signature_does_not_verify():
    body = b'{"id":1}'
    header = signature("whsec_x", body, timestamp=int(time.time()) - SIGNATURE_TOLERANCE - 1)
    assert not verify("whsec_x", header, body)
    assert verify("whsec_x", signature("whsec_x", body), body)


def test_the_event_filter_is_honoured(dev_app, owner, shop, receiver, database_url):
    add_webhook(owner, shop, receiver.url("/messages"), events=["message.created"])
    add_webhook(owner, shop, receiver.url("/all"))
    store_events(database_url, shop["id"], 1, "conversation.created")
    store_events(database_url, shop["id"], 1, "message.created")
    store_events(database_url, shop["id"], 1, "conversation.updated")
    with running_worker(dev_app):
        everything = receiver.wait_for(3, "/all")
        messages = receiver.wait_for(1, "/messages")
    assert {json.loads(r.body)["type"] for r in everything} == {
        "conversation.created", "message.created", "conversation.updated"}
    assert [json.loads(r.body)["type"] for r in receiver.received("/messages")] == [
        "message.created"]
    assert len(messages) == 1


def test_another_clients_events_are_not_delivered(dev_app, owner, shop, receiver, database_url):
    add_webhook(owner, shop, receiver.url("/shop"))
    blog = owner.post("/api/clients", json={"name": "Blog"}).get_json()
    add_webhook(owner, blog, receiver.url("/blog"))
    store_events(database_url, blog["id"], 1)
    store_events(database_url, shop["id"], 1)
    with running_worker(dev_app):
        shop_got, blog_got = receiver.wait_for(1, "/shop"), receiver.wait_for(1, "/blog")
    assert json.loads(shop_got[0].body)["client_id"] == shop["id"]
    assert json.loads(blog_got[0].body)["client_id"] == blog["id"]
    assert len(receiver.received()) == 2


# --- retries ---------------------------------------------------------------------------------

def test_three_failures_then_success_on_the_fourth_attempt(dev_app, owner, shop, receiver,
                                                           database_url):
    webhook = add_webhook(owner, shop, receiver.url())
    receiver.statuses["/hook"] = [500, 500, 500]
    store_events(database_url, shop["id"], 1)
    with running_worker(dev_app, backoff=lambda attempt: 0):
        receiver.wait_for(4)
        [delivery] = wait_until(lambda: [d for d in deliveries(owner, shop, webhook)
                                         if d["status"] == "succeeded"], "the success")
    assert (delivery["attempt"], delivery["response_status"]) == (4, 200)
    assert len(receiver.received()) == 4
    signatures = {r.headers["ChatConnect-Signature"] for r in receiver.received()}
    assert all(verify(webhook["secret"], s, receiver.received()[0].body) for s in signatures)


def test_a_failure_waits_for_the_backoff(dev_app, owner, shop, receiver, database_url):
    webhook = add_webhook(owner, shop, receiver.url())
    receiver.statuses["/hook"] = [503]
    store_events(database_url, shop["id"], 1)
    with running_worker(dev_app, backoff=lambda attempt: 3600):
        receiver.wait_for(1)
        [delivery] = wait_until(lambda: [d for d in deliveries(owner, shop, webhook)
                                         if d["attempt"] == 1 and d["error"]], "the failure")
    assert delivery["status"] == "pending" and delivery["response_status"] == 503
    assert delivery["error"] == "the receiver answered 503: server trouble"
    assert delivery["next_attempt_at"] > delivery["created_at"]
    assert len(receiver.received()) == 1


def test_after_the_retry_window_a_delivery_fails(dev_app, owner, shop, receiver, database_url):
    webhook = add_webhook(owner, shop, receiver.url())
    receiver.statuses["/hook"] = [500]
    store_events(database_url, shop["id"], 1)
    with dev_app.extensions["db_pool"].connection() as conn:
        WebhookDeliveryRepository(conn).fan_out()
        conn.execute("UPDATE webhook_deliveries SET created_at = now() - interval '25 hours'")
    with running_worker(dev_app):
        [delivery] = wait_until(lambda: [d for d in deliveries(owner, shop, webhook)
                                         if d["status"] == "failed"], "the failure")
    assert (delivery["attempt"], delivery["next_attempt_at"]) == (1, None)


def test_backoff_grows_with_jitter_and_covers_a_day():
    delays = [backoff(attempt) for attempt in range(1, 16)]
    assert 22 <= delays[0] <= 38
    assert all(0.75 * 4 * 3600 <= delay <= 1.25 * 4 * 3600 for delay in delays[10:])
    assert len({round(backoff(3), 6) for _ in range(20)}) > 1
    lower_bound = sum(min(30 * 2 ** (a - 1), 4 * 3600) * 0.75 for a in range(1, 16))
    assert lower_bound >= 15 * 3600  # well inside the window: retries stop at 24 h, not before


def test_a_redelivery_is_delivered(dev_app, owner, shop, receiver, database_url):
    webhook = add_webhook(owner, shop, receiver.url())
    store_events(database_url, shop["id"], 1)
    with running_worker(dev_app):
        receiver.wait_for(1)
        [first] = wait_until(lambda: [d for d in deliveries(owner, shop, webhook)
                                      if d["status"] == "succeeded"], "the first delivery")
        redeliver = f"/api/clients/{shop['id']}/webhooks/{webhook['id']}/deliveries/" \
                    f"{first['id']}/redeliver"
        assert owner.post(redeliver).status_code == 202
        got = receiver.wait_for(2)
    assert got[0].body == got[1].body


# --- crashes, several workers, slow receivers -----------------------------------------------

def worker_process(database_url, *args):
    env = {**os.environ, **app_config(database_url), "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
           "LOG_LEVEL": "WARNING"}
    # The console script, as deploy/chatconnect-worker.service runs it.
    script = Path(sys.executable).parent / "chatconnect"
    return subprocess.Popen([script, "worker", *args], env=env)


def test_a_worker_killed_mid_delivery_is_taken_over(dev_app, owner, shop, receiver,
                                                    database_url):
    webhook = add_webhook(owner, shop, receiver.url())
    receiver.hold("/hook")
    store_events(database_url, shop["id"], 1)
    first = worker_process(database_url)
    try:
        receiver.wait_for(1)
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    # The delivery is still leased by the dead worker's session; the next worker takes it over.
    second = worker_process(database_url, "--poll-interval", "0.2")
    try:
        receiver.release("/hook")
        receiver.wait_for(2)
        [delivery] = wait_until(lambda: [d for d in deliveries(owner, shop, webhook)
                                         if d["status"] == "succeeded"], "the takeover")
    finally:
        second.terminate()
        assert second.wait(30) == 0
    assert delivery["attempt"] == 2


def test_sigterm_lets_the_attempt_in_flight_finish(dev_app, owner, shop, receiver,
                                                   database_url):
    webhook = add_webhook(owner, shop, receiver.url())
    receiver.hold("/hook")
    store_events(database_url, shop["id"], 1)
    process = worker_process(database_url)
    try:
        receiver.wait_for(1)
        process.terminate()
        threading.Timer(0.5, receiver.release, ("/hook",)).start()
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    [delivery] = deliveries(owner, shop, webhook)
    assert (delivery["status"], delivery["attempt"]) == ("succeeded", 1)
    assert len(receiver.received()) == 1


def test_two_workers_deliver_each_event_once(dev_app, make_app, owner, shop, receiver,
                                             database_url):
    webhooks = [add_webhook(owner, shop, receiver.url(f"/hook{n}")) for n in range(3)]
    ids = store_events(database_url, shop["id"], 40)
    # Each worker with a pool and a listening session of its own, as two processes would be.
    other_app = make_app(WEBHOOK_ALLOW_PRIVATE_NETWORKS="true", DB_POOL_MAX_SIZE="10")
    with running_worker(dev_app, concurrency=4), running_worker(other_app, concurrency=4):
        for n in range(3):
            receiver.wait_for(40, f"/hook{n}")
        for webhook in webhooks:
            wait_until(lambda: all(d["status"] == "succeeded"
                                   for d in deliveries(owner, shop, webhook)), "the log")
    for n, webhook in enumerate(webhooks):
        assert sorted(json.loads(r.body)["id"] for r in receiver.received(f"/hook{n}")) == ids
        assert {d["attempt"] for d in deliveries(owner, shop, webhook)} == {1}


def test_a_slow_receiver_does_not_delay_another_webhook(dev_app, owner, shop, receiver,
                                                        database_url):
    add_webhook(owner, shop, receiver.url("/slow"))
    add_webhook(owner, shop, receiver.url("/fast"))
    receiver.hold("/slow")  # answers only when released (or after 30 s)
    ids = store_events(database_url, shop["id"], 12)
    with running_worker(dev_app, concurrency=4, per_endpoint=2):
        fast = receiver.wait_for(12, "/fast")
        # Every event reached the fast endpoint while the slow one still held its first two.
        assert len(receiver.received("/slow")) == 2
        receiver.release("/slow")
        slow = receiver.wait_for(12, "/slow")
    assert sorted(json.loads(r.body)["id"] for r in fast) == ids
    assert sorted(json.loads(r.body)["id"] for r in slow) == ids


# --- no event skipped when events commit out of order ----------------------------------------

def test_an_event_committing_late_is_not_skipped(dev_app, owner, shop, database_url):
    webhook = add_webhook(owner, shop, "http://127.0.0.1:9/hook")
    store_events(database_url, shop["id"], 1)
    with psycopg.connect(database_url) as slow:
        # This transaction draws the next id and commits only after another event is waiting.
        slow.execute("INSERT INTO events (client_id, type, data) VALUES (%s, 'message.created', "
                     "'{}')", (shop["id"],))
        later = threading.Thread(target=store_events, args=(database_url, shop["id"], 1))
        later.start()
        with dev_app.extensions["db_pool"].connection() as conn:
            WebhookDeliveryRepository(conn).fan_out()
        slow.commit()
        later.join()
    with dev_app.extensions["db_pool"].connection() as conn:
        WebhookDeliveryRepository(conn).fan_out()
    with psycopg.connect(database_url) as conn:
        all_ids = [row[0] for row in conn.execute(
            "SELECT id FROM events WHERE client_id = %s ORDER BY id", (shop["id"],))]
    assert len(all_ids) == 3
    assert sorted(d["event_id"] for d in deliveries(owner, shop, webhook)) == all_ids


# --- the address guard at every attempt ------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "10.0.0.1",
                                  "169.254.169.254"])
def test_non_public_addresses_are_refused_at_delivery(dev_app, owner, shop, receiver,
                                                      database_url, host):
    # Created while allowed (as a development database would hold it), delivered without.
    webhook = add_webhook(owner, shop, f"http://{host}:{receiver.port}/hook")
    store_events(database_url, shop["id"], 1)
    with running_worker(dev_app, allow_private=False, backoff=lambda attempt: 3600):
        [delivery] = wait_until(lambda: [d for d in deliveries(owner, shop, webhook)
                                         if d["attempt"] == 1 and d["error"]], "the refusal")
    assert delivery["error"].startswith("refused: ") and "non-public" in delivery["error"]
    assert (delivery["status"], delivery["response_status"]) == ("pending", None)
    assert receiver.received() == []
