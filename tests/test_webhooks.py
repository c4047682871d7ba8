"""Webhooks as their owner manages them: storage, validation, the delivery log, redelivery,
the address guard at creation, and other owners seeing nothing."""

import re

import psycopg
import pytest

from chatconnect.config import ConfigError, load_settings
from chatconnect.repositories.webhook_deliveries import WebhookDeliveryRepository
from chatconnect.repositories.webhooks import MAX_WEBHOOKS_PER_CLIENT

from .conftest import AuthActions

PUBLIC_URL = "https://93.184.215.14/hooks/chat"  # an address literal: needs no DNS here


def error_fields(response):
    assert response.status_code == 422, response.get_json()
    return response.get_json()["error"]["fields"]


@pytest.fixture
def owner(client, auth):
    auth.register()
    return client


@pytest.fixture
def shop(owner):
    return owner.post("/api/clients", json={"name": "Shop"}).get_json()


@pytest.fixture
def hooks_url(shop):
    return f"/api/clients/{shop['id']}/webhooks"


def create(owner, hooks_url, **body):
    response = owner.post(hooks_url, json={"url": PUBLIC_URL, **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def store_events(database_url, client_id, count=1, type="message.created"):
    with psycopg.connect(database_url) as conn:
        for n in range(count):
            conn.execute("INSERT INTO events (client_id, type, data) VALUES (%s, %s, %s)",
                         (client_id, type, psycopg.types.json.Jsonb({"n": n})))


def fan_out(app):
    with app.extensions["db_pool"].connection() as conn:
        WebhookDeliveryRepository(conn).fan_out()


# --- creating, reading, changing, deleting ------------------------------------------------

def test_create_shows_the_secret_once(owner, hooks_url):
    created = create(owner, hooks_url, events=["message.created"])
    assert set(created) == {"id", "url", "events", "active", "created_at", "secret"}
    assert re.fullmatch(r"whsec_[A-Za-z0-9_-]{43}", created["secret"])
    assert created["url"] == PUBLIC_URL and created["events"] == ["message.created"]
    assert created["active"] is True
    shown = {key: value for key, value in created.items() if key != "secret"}
    assert owner.get(f"{hooks_url}/{created['id']}").get_json() == shown
    assert owner.get(hooks_url).get_json() == {"items": [shown], "next_cursor": None}
    changed = owner.patch(f"{hooks_url}/{created['id']}", json={"active": False})
    assert changed.status_code == 200 and "secret" not in changed.get_json()


def test_events_default_to_every_type_and_are_kept_once(owner, hooks_url):
    assert create(owner, hooks_url)["events"] == []
    twice = create(owner, hooks_url, events=["message.created", "message.created"])
    assert twice["events"] == ["message.created"]


def test_patch_changes_only_what_is_given(owner, hooks_url):
    created = create(owner, hooks_url)
    response = owner.patch(f"{hooks_url}/{created['id']}",
                           json={"events": ["conversation.created"], "active": False})
    assert response.status_code == 200
    body = response.get_json()
    assert (body["url"], body["events"], body["active"]) == (
        PUBLIC_URL, ["conversation.created"], False)
    other_url = "https://[2606:4700:4700::1111]/hook"
    assert owner.patch(f"{hooks_url}/{created['id']}",
                       json={"url": other_url}).get_json()["url"] == other_url
    assert owner.patch(f"{hooks_url}/{created['id']}", json={}).get_json()["url"] == other_url


def test_delete(owner, hooks_url):
    created = create(owner, hooks_url)
    assert owner.delete(f"{hooks_url}/{created['id']}").status_code == 204
    assert owner.get(f"{hooks_url}/{created['id']}").status_code == 404
    assert owner.delete(f"{hooks_url}/{created['id']}").status_code == 404


def test_at_most_ten_per_client(owner, hooks_url, shop):
    for _ in range(MAX_WEBHOOKS_PER_CLIENT):
        create(owner, hooks_url)
    response = owner.post(hooks_url, json={"url": PUBLIC_URL})
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "conflict"
    other = owner.post("/api/clients", json={"name": "Blog"}).get_json()
    create(owner, f"/api/clients/{other['id']}/webhooks")


@pytest.mark.parametrize("body, field", [
    ({}, "url"),
    ({"url": 42}, "url"),
    ({"url": "ftp://93.184.215.14/"}, "url"),
    ({"url": "http://93.184.215.14/"}, "url"),  # plain http needs the development setting
    ({"url": "https:///path"}, "url"),
    ({"url": "https://user:pw@93.184.215.14/"}, "url"),
    ({"url": "https://93.184.215.14/#frag"}, "url"),
    ({"url": "https://93.184.215.14/a b"}, "url"),
    ({"url": "https://93.184.215.14:99999/"}, "url"),
    ({"url": "https://93.184.215.14/" + "a" * 2048}, "url"),
    ({"url": "https://no-such-host.invalid/"}, "url"),
    ({"url": PUBLIC_URL, "events": ["message.deleted"]}, "events"),
    ({"url": PUBLIC_URL, "events": "message.created"}, "events"),
    ({"url": PUBLIC_URL, "active": "yes"}, "active"),
    ({"url": PUBLIC_URL, "secret": "mine"}, "secret"),
])
def test_bad_input_is_refused_and_changes_nothing(owner, hooks_url, body, field):
    assert field in error_fields(owner.post(hooks_url, json=body))
    assert owner.get(hooks_url).get_json()["items"] == []


# --- the address guard at creation ----------------------------------------------------------

@pytest.mark.parametrize("url", [
    "https://127.0.0.1/hook",
    "https://10.0.0.1/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://[::1]/hook",
    "https://localhost/hook",  # a name that resolves to 127.0.0.1
    "https://0.0.0.0/hook",
    "https://192.168.1.10/hook",
    "https://172.16.0.1/hook",
    "https://100.64.0.1/hook",
    "https://[fd00::1]/hook",
    "https://[fe80::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:8.8.8.8]/hook",
    "https://[64:ff9b::a00:1]/hook",
])
def test_non_public_addresses_are_refused_at_creation(owner, hooks_url, url):
    fields = error_fields(owner.post(hooks_url, json={"url": url}))
    assert "non-public" in fields["url"]
    created = create(owner, hooks_url)
    assert "non-public" in error_fields(
        owner.patch(f"{hooks_url}/{created['id']}", json={"url": url}))["url"]


def test_the_development_setting_allows_loopback_and_http(make_app, database_url):
    app = make_app(WEBHOOK_ALLOW_PRIVATE_NETWORKS="true")
    client = app.test_client()
    AuthActions(client).register()
    shop = client.post("/api/clients", json={"name": "Shop"}).get_json()
    response = client.post(f"/api/clients/{shop['id']}/webhooks",
                           json={"url": "http://localhost:8080/hook"})
    assert response.status_code == 201, response.get_json()


# --- the delivery log and redelivery --------------------------------------------------------

def test_delivery_log_newest_first_in_keyset_pages(app, owner, hooks_url, shop, database_url):
    created = create(owner, hooks_url)
    store_events(database_url, shop["id"], 5)
    fan_out(app)
    log_url = f"{hooks_url}/{created['id']}/deliveries"
    first = owner.get(f"{log_url}?limit=2").get_json()
    assert [d["event_id"] for d in first["items"]] == sorted(
        [d["event_id"] for d in first["items"]], reverse=True)
    seen = [d["event_id"] for d in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = owner.get(f"{log_url}?limit=2&cursor={cursor}").get_json()
        seen += [d["event_id"] for d in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)
    delivery = first["items"][0]
    assert set(delivery) == {"id", "event_id", "event_type", "attempt", "status",
                             "response_status", "duration_ms", "error", "created_at",
                             "next_attempt_at"}
    assert (delivery["status"], delivery["attempt"], delivery["event_type"]) == (
        "pending", 0, "message.created")
    assert "cursor" in error_fields(owner.get(f"{log_url}?cursor=forged"))
    assert "limit" in error_fields(owner.get(f"{log_url}?limit=101"))


def test_events_before_creation_are_not_delivered(app, owner, hooks_url, shop, database_url):
    store_events(database_url, shop["id"], 2)
    created = create(owner, hooks_url)
    store_events(database_url, shop["id"], 1)
    fan_out(app)
    log = owner.get(f"{hooks_url}/{created['id']}/deliveries").get_json()["items"]
    assert len(log) == 1


def test_an_inactive_webhook_gets_no_deliveries(app, owner, hooks_url, shop, database_url):
    created = create(owner, hooks_url, active=False)
    store_events(database_url, shop["id"], 2)
    fan_out(app)
    assert owner.get(f"{hooks_url}/{created['id']}/deliveries").get_json()["items"] == []


def test_redeliver_queues_a_new_delivery(app, owner, hooks_url, shop, database_url):
    created = create(owner, hooks_url)
    store_events(database_url, shop["id"], 1)
    fan_out(app)
    log_url = f"{hooks_url}/{created['id']}/deliveries"
    original = owner.get(log_url).get_json()["items"][0]
    response = owner.post(f"{log_url}/{original['id']}/redeliver")
    assert response.status_code == 202
    again = response.get_json()
    assert again["id"] != original["id"]
    assert (again["event_id"], again["status"], again["attempt"]) == (
        original["event_id"], "pending", 0)
    assert [d["id"] for d in owner.get(log_url).get_json()["items"]] == [again["id"],
                                                                          original["id"]]


# --- other owners see nothing ---------------------------------------------------------------

def test_another_owners_webhooks_and_deliveries_are_404(app, owner, hooks_url, shop,
                                                        database_url):
    created = create(owner, hooks_url)
    store_events(database_url, shop["id"], 1)
    fan_out(app)
    hook_url = f"{hooks_url}/{created['id']}"
    delivery = owner.get(f"{hook_url}/deliveries").get_json()["items"][0]
    stranger = app.test_client()
    AuthActions(stranger).register()
    for response in (
        stranger.get(hooks_url),
        stranger.post(hooks_url, json={"url": PUBLIC_URL}),
        stranger.get(hook_url),
        stranger.patch(hook_url, json={"active": False}),
        stranger.delete(hook_url),
        stranger.get(f"{hook_url}/deliveries"),
        stranger.post(f"{hook_url}/deliveries/{delivery['id']}/redeliver"),
    ):
        assert response.status_code == 404, response.request.path
        assert response.get_json()["error"]["code"] == "not_found"
    # The stranger's own client does not open the owner's webhook either.
    theirs = stranger.post("/api/clients", json={"name": "Theirs"}).get_json()
    assert stranger.get(f"/api/clients/{theirs['id']}/webhooks/{created['id']}").status_code == 404
    # Nor does the owner's other client, nor another webhook's delivery id.
    blog = owner.post("/api/clients", json={"name": "Blog"}).get_json()
    assert owner.get(f"/api/clients/{blog['id']}/webhooks/{created['id']}").status_code == 404
    second = create(owner, hooks_url)
    assert owner.post(f"{hooks_url}/{second['id']}/deliveries/{delivery['id']}/redeliver"
                      ).status_code == 404
    assert owner.get(hook_url).get_json()["active"] is True
    assert len(owner.get(f"{hook_url}/deliveries").get_json()["items"]) == 1


def test_signed_out_is_401(client, hooks_url, auth):
    auth.logout()
    assert client.get(hooks_url).status_code == 401


def test_fan_out_catches_up_in_batches_and_never_copies_twice(app, owner, hooks_url, shop,
                                                              database_url):
    created = create(owner, hooks_url)
    quiet_client = owner.post("/api/clients", json={"name": "Quiet"}).get_json()
    create(owner, f"/api/clients/{quiet_client['id']}/webhooks")
    store_events(database_url, shop["id"], 5)
    with app.extensions["db_pool"].connection() as conn:
        deliveries = WebhookDeliveryRepository(conn)
        # (webhooks advanced, deliveries created): the quiet client's webhook is not touched.
        assert [deliveries.fan_out(batch=2) for _ in range(4)] == [(1, 2), (1, 2), (1, 1),
                                                                    (0, 0)]
        conn.execute("UPDATE webhooks SET last_event_id = 0")  # as if the range came again
        assert deliveries.fan_out() == (1, 0)
    log = owner.get(f"{hooks_url}/{created['id']}/deliveries").get_json()["items"]
    assert len(log) == 5 and len({d["event_id"] for d in log}) == 5


@pytest.mark.parametrize("raw, allowed", [("", False), ("false", False), ("true", True),
                                          ("TRUE", True), ("1", True), ("no", False)])
def test_the_development_setting_is_read_strictly(raw, allowed):
    assert load_settings({"DATABASE_URL": "postgresql://x/y", "SECRET_KEY": "k",
                          "WEBHOOK_ALLOW_PRIVATE_NETWORKS": raw}
                         )["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] is allowed


def test_a_malformed_development_setting_stops_start_up():
    with pytest.raises(ConfigError, match="WEBHOOK_ALLOW_PRIVATE_NETWORKS"):
        load_settings({"DATABASE_URL": "postgresql://x/y", "SECRET_KEY": "k",
                       "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "sometimes"})


def test_purge_deletes_only_old_finished_deliveries(app, runner, owner, hooks_url, shop,
                                                    database_url):
    created = create(owner, hooks_url)
    store_events(database_url, shop["id"], 4)
    fan_out(app)
    with psycopg.connect(database_url) as conn:
        ids = [row[0] for row in conn.execute(
            "SELECT id FROM webhook_deliveries ORDER BY event_id")]
        conn.execute("UPDATE webhook_deliveries SET created_at = now() - interval '31 days'")
        conn.execute("UPDATE webhook_deliveries SET status = 'succeeded' WHERE id = %s", (ids[0],))
        conn.execute("UPDATE webhook_deliveries SET status = 'failed' WHERE id = %s", (ids[1],))
        conn.execute("UPDATE webhook_deliveries SET status = 'succeeded', created_at = now() "
                     "WHERE id = %s", (ids[2],))
    result = runner.invoke(args=["webhooks", "purge"])
    assert result.exit_code == 0 and result.output == "deleted 2 finished deliveries\n"
    log = owner.get(f"{hooks_url}/{created['id']}/deliveries").get_json()["items"]
    assert sorted(d["id"] for d in log) == sorted(str(i) for i in ids[2:])  # pending stays
