"""The per-process caches of widget configurations and sessions: every kind of change, made
with plain SQL from another connection, reaches every worker; the listener-down path; the flush
on reconnect. Two app instances on one database stand for two gunicorn workers: each has its
own pool, hub (LISTEN connection) and caches."""

import psycopg
import pytest

from chatconnect import widget_config
from chatconnect.caches import NotifiedCache
from chatconnect.realtime.hub import EXTENSION as HUB
from chatconnect.session_store import COOKIE_NAME, session_cache
from chatconnect.tokens import hash_secret

from .accounts import PASSWORD, register, session_cookie, signed_in_client, sql
from .caching import eventually, settle, wait_until_cache_is_live

NEW_ORIGIN = {"Origin": "https://new.example"}


@pytest.fixture
def workers(app, make_app):
    both = [app, make_app()]
    for worker in both:
        assert wait_until_cache_is_live(worker)
    return both


@pytest.fixture
def shop(app):
    """(the owner's signed-in client on the first worker, a new client of theirs)."""
    _, owner = register(app)
    response = owner.post("/api/clients", json={"name": "Shop",
                                                "allowed_domains": ["old.example"]})
    assert response.status_code == 201
    return owner, response.get_json()


def widget(worker, key, headers=None):
    return worker.test_client().get(f"/api/public/widgets/{key}", headers=headers or {})


def cached_by_every_worker(workers, key, headers=None):
    """Ask every worker for `key` until each answers it from memory (a value loaded while a
    notification of an earlier change arrived is not kept)."""
    for worker in workers:
        assert eventually(lambda: widget(worker, key, headers).status_code
                          and key in widget_config.cache(worker))


def without_notifications(database_url, statement, params=None):
    """Change rows as if the notification were lost: with triggers off for the transaction."""
    with psycopg.connect(database_url) as conn:
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(statement, params)


def listener_backends(database_url) -> list:
    return sql(database_url, "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                             " AND pid <> pg_backend_pid() AND query LIKE 'LISTEN %%'")


# --- the widget configuration -----------------------------------------------------------

def change_widget_name(database_url, shop):
    sql(database_url, "UPDATE client_widgets SET widget_name = 'Renamed' WHERE client_id = %s",
        (shop["id"],))
    return lambda worker: widget(worker, shop["public_api_key"]).get_json()["widget_name"] == "Renamed"


def change_domains(database_url, shop):
    sql(database_url, """UPDATE clients SET allowed_domains = '["new.example"]' WHERE id = %s""",
        (shop["id"],))
    return lambda worker: widget(worker, shop["public_api_key"], NEW_ORIGIN).status_code == 200


def suspend(database_url, shop):
    sql(database_url, "UPDATE clients SET status = 'suspended' WHERE id = %s", (shop["id"],))
    return lambda worker: widget(worker, shop["public_api_key"]).status_code == 404


def rotate_key(database_url, shop):
    sql(database_url, "UPDATE clients SET public_api_key = %s WHERE id = %s",
        (shop["spare_key"], shop["id"]))
    return lambda worker: (widget(worker, shop["public_api_key"]).status_code == 404
                           and widget(worker, shop["spare_key"]).status_code == 200)


def delete_client(database_url, shop):
    sql(database_url, "DELETE FROM clients WHERE id = %s", (shop["id"],))
    return lambda worker: widget(worker, shop["public_api_key"]).status_code == 404


def truncate(database_url, shop):
    sql(database_url, "TRUNCATE clients CASCADE")
    return lambda worker: widget(worker, shop["public_api_key"]).status_code == 404


@pytest.mark.parametrize("change", [change_widget_name, change_domains, suspend, rotate_key,
                                    delete_client, truncate])
def test_a_change_reaches_every_worker(workers, shop, database_url, change):
    _, created = shop
    created["spare_key"] = "pk_" + "k" * 32
    cached_by_every_worker(workers, created["public_api_key"])
    cached_by_every_worker(workers, created["spare_key"])  # unknown: cached as such
    assert widget(workers[1], created["spare_key"]).status_code == 404
    assert widget(workers[1], created["public_api_key"], NEW_ORIGIN).status_code == 403
    served_after_the_change = change(database_url, created)
    for worker in workers:
        assert eventually(lambda: served_after_the_change(worker))


def test_reactivating_and_creating_reach_every_worker(workers, shop, database_url):
    owner, created = shop
    key = created["public_api_key"]
    sql(database_url, "UPDATE clients SET status = 'suspended' WHERE id = %s", (created["id"],))
    assert all(eventually(lambda: widget(w, key).status_code == 404) for w in workers)
    cached_by_every_worker(workers, key)
    sql(database_url, "UPDATE clients SET status = 'active' WHERE id = %s", (created["id"],))
    for worker in workers:
        assert eventually(lambda: widget(worker, key).status_code == 200)

    # A key asked for before any client had it, then given to a new client.
    new_key = "pk_" + "n" * 32
    cached_by_every_worker(workers, new_key)
    [[owner_id]] = sql(database_url, "SELECT user_id FROM clients WHERE id = %s", (created["id"],))
    [[new_id]] = sql(database_url, "INSERT INTO clients (user_id, name, public_api_key)"
                                   " VALUES (%s, 'New', %s) RETURNING id", (owner_id, new_key))
    sql(database_url, "INSERT INTO client_widgets (client_id) VALUES (%s)", (new_id,))
    sql(database_url, "INSERT INTO widget_styles (client_id) VALUES (%s)", (new_id,))
    for worker in workers:
        assert eventually(lambda: widget(worker, new_key).status_code == 200)


def test_the_changing_worker_sees_its_own_change_at_once(workers, shop):
    owner, created = shop
    key = created["public_api_key"]
    cached_by_every_worker(workers, key)
    assert owner.patch(f"/api/clients/{created['id']}/widget",
                       json={"widget_name": "At once"}).status_code == 200
    assert widget(workers[0], key).get_json()["widget_name"] == "At once"
    rotated = owner.post(f"/api/clients/{created['id']}/rotate-key").get_json()
    assert widget(workers[0], key).status_code == 404
    assert widget(workers[0], rotated["public_api_key"]).status_code == 200
    assert eventually(lambda: widget(workers[1], key).status_code == 404)


def test_while_the_listener_is_down_the_database_answers(workers, shop, database_url):
    _, created = shop
    key = created["public_api_key"]
    cached_by_every_worker(workers, key)
    worker = workers[1]
    worker.extensions[HUB].stop()
    assert not widget_config.cache(worker).live
    # Even a change whose notification is lost is served at once: the cache is bypassed.
    without_notifications(database_url, "UPDATE client_widgets SET widget_name = 'Fresh'"
                                        " WHERE client_id = %s", (created["id"],))
    assert widget(worker, key).get_json()["widget_name"] == "Fresh"
    without_notifications(database_url, "UPDATE clients SET status = 'suspended' WHERE id = %s",
                          (created["id"],))
    assert widget(worker, key).status_code == 404


def test_the_cache_is_emptied_when_the_listener_reconnects(workers, shop, database_url):
    _, created = shop
    key = created["public_api_key"]
    assert settle(workers, database_url)
    cached_by_every_worker(workers, key)
    # A change whose notification is lost, as while the listener is away: still cached...
    without_notifications(database_url, "UPDATE client_widgets SET widget_name = 'Missed'"
                                        " WHERE client_id = %s", (created["id"],))
    assert all(widget(w, key).get_json()["widget_name"] != "Missed" for w in workers)
    connections = [w.extensions[HUB].connections for w in workers]
    # ... until the listener's connection breaks and comes back.
    for [pid] in listener_backends(database_url):
        sql(database_url, "SELECT pg_terminate_backend(%s)", (pid,))
    for worker, before in zip(workers, connections):
        assert eventually(lambda: worker.extensions[HUB].connections > before
                          and worker.extensions[HUB].connected)
        assert widget(worker, key).get_json()["widget_name"] == "Missed"


# --- sessions ---------------------------------------------------------------------------

@pytest.fixture
def signed_in(workers):
    """(username, {worker: a client of that worker with the same session cookie})."""
    username, first = register(workers[0])
    cookie = session_cookie(first)
    clients = {}
    for worker in workers:
        client = worker.test_client()
        client.set_cookie(COOKIE_NAME, cookie)
        assert eventually(lambda: client.get("/api/auth/me").status_code == 200
                          and hash_secret(cookie) in session_cache(worker))
        clients[worker] = client
    return username, clients


def refused_everywhere(clients) -> bool:
    return all(eventually(lambda: client.get("/api/auth/me").status_code == 401)
               for client in clients.values())


@pytest.mark.parametrize("statement", [
    "DELETE FROM session",
    "UPDATE session SET expire = now() AT TIME ZONE 'UTC' - interval '1 second'",
    "DELETE FROM users",
    "TRUNCATE session",
])
def test_a_revocation_in_sql_reaches_every_worker(signed_in, database_url, statement):
    _, clients = signed_in
    sql(database_url, statement)
    assert refused_everywhere(clients)


def test_signing_out_on_one_worker_reaches_every_worker(workers, signed_in):
    _, clients = signed_in
    first = clients[workers[0]]
    assert first.post("/api/auth/logout").status_code == 204
    assert refused_everywhere(clients)


def test_revoking_a_session_reaches_every_worker(workers, signed_in):
    username, clients = signed_in
    other = signed_in_client(workers[0], username, user_agent="Other/1.0")
    listed = other.get("/api/auth/sessions").get_json()["items"]
    [revoked] = [item["id"] for item in listed if not item["current"]]
    assert other.delete(f"/api/auth/sessions/{revoked}").status_code == 204
    assert refused_everywhere(clients)
    assert other.get("/api/auth/me").status_code == 200


def test_a_password_change_reaches_every_worker(workers, signed_in):
    username, clients = signed_in
    other = signed_in_client(workers[1], username, user_agent="Other/1.0")
    assert other.post("/api/auth/password", json={
        "current_password": PASSWORD,
        "new_password": "a brand new passphrase"}).status_code == 204
    assert refused_everywhere(clients)
    assert other.get("/api/auth/me").status_code == 200  # renewed cookie


def test_while_the_listener_is_down_sessions_are_read_from_the_database(workers, signed_in,
                                                                        database_url):
    _, clients = signed_in
    worker = workers[1]
    worker.extensions[HUB].stop()
    without_notifications(database_url, "DELETE FROM session")
    assert clients[worker].get("/api/auth/me").status_code == 401


# --- the cache itself -------------------------------------------------------------------

class AlwaysConnected:
    connected = True

    def add_callback(self, channel, callback):
        pass

    def add_connect_callback(self, callback):
        pass


def test_the_cache_keeps_the_most_recently_used_entries():
    cache = NotifiedCache("widgets", 2)
    cache.attach(AlwaysConnected(), "chatconnect_widget_config")
    loads = []

    def load(key):
        loads.append(key)
        return key.upper()

    assert [cache.get(key, load) for key in ("a", "b", "a", "c", "a", "b")] == list("ABACAB")
    assert loads == ["a", "b", "c", "b"]  # "b" was the least recently used when "c" came
    assert len(cache) == 2


def test_forgetting_a_group_drops_all_its_keys():
    cache = NotifiedCache("sessions", 10, group_of=lambda value: value and value["user"])
    cache.attach(AlwaysConnected(), "chatconnect_sessions")
    for key, user in (("s1", "u1"), ("s2", "u1"), ("s3", "u2")):
        cache.get(key, lambda _, user=user: {"user": user})
    cache.get("unknown", lambda _: None)
    cache.forget_words("u1")
    assert ("s1" in cache, "s2" in cache, "s3" in cache, "unknown" in cache) == (
        False, False, True, True)
    cache.forget_words("unknown s3")
    assert len(cache) == 0


def test_a_value_loaded_while_a_notification_arrived_is_not_kept():
    cache = NotifiedCache("widgets", 10)
    cache.attach(AlwaysConnected(), "chatconnect_widget_config")

    def load_during_a_change(key):
        cache.forget_words("some-client")  # what the hub does when a notification arrives
        return "maybe stale"

    assert cache.get("k", load_during_a_change) == "maybe stale"
    assert "k" not in cache
    assert cache.get("k", lambda key: "fresh") == "fresh"
    assert "k" in cache
