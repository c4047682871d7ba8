"""Sign-up: a taken name costs no hashing, sign-ups are limited per client IP, and each process
hashes only a few passwords at once (503 beyond)."""

from contextlib import contextmanager

import pytest

from .accounts import PASSWORD, register, sql, unique_username
from .conftest import AuthActions


def sign_up(app, username, ip="192.0.2.1"):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client.post("/api/auth/register", json={"username": username, "password": PASSWORD})


@contextmanager
def every_hashing_slot_taken(app):
    """As when as many passwords as the bound allows are being hashed in this process."""
    slots = app.extensions["password_hash_slots"]
    for _ in range(app.config["PASSWORD_HASH_CONCURRENCY"]):
        assert slots.acquire(blocking=False)
    try:
        yield
    finally:
        for _ in range(app.config["PASSWORD_HASH_CONCURRENCY"]):
            slots.release()


def assert_busy(response):
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "service_unavailable"
    assert response.headers["Retry-After"] == "1"


def test_a_taken_name_is_refused_without_hashing(app):
    username = unique_username()
    assert sign_up(app, username).status_code == 201
    with every_hashing_slot_taken(app):
        for spelling in (username, username.upper()):
            response = sign_up(app, spelling)
            assert response.status_code == 409
            assert response.get_json()["error"]["code"] == "conflict"
        assert_busy(sign_up(app, unique_username()))  # a free name does need a hash
    assert sign_up(app, unique_username()).status_code == 201


def test_sign_ups_are_limited_per_client_ip_across_workers(app, make_app, database_url):
    first, second = (make_app(REGISTER_LIMIT_PER_IP="3/3600") for _ in range(2))
    taken = unique_username()
    assert sign_up(first, taken).status_code == 201
    assert sign_up(second, taken).status_code == 409  # a taken name counts too
    assert sign_up(first, unique_username()).status_code == 201
    for worker in (first, second):
        response = sign_up(worker, unique_username())
        assert response.status_code == 429
        assert response.get_json()["error"]["code"] == "rate_limited"
        assert 3000 < int(response.headers["Retry-After"]) <= 3600
    assert sign_up(second, unique_username(), ip="198.51.100.9").status_code == 201
    assert sql(database_url, "SELECT count(*) FROM users")[0][0] == 3


def test_sign_ins_and_password_changes_beyond_the_hashing_bound_get_503(app, database_url):
    username, signed_in = register(app)
    with every_hashing_slot_taken(app):
        assert_busy(AuthActions(app.test_client()).login(username))
        assert_busy(signed_in.post("/api/auth/password", json={
            "current_password": PASSWORD, "new_password": "a brand new passphrase"}))
    # Refused before any check: nothing was counted against the username or the IP.
    assert sql(database_url, "SELECT count(*) FROM rate_limits WHERE key LIKE 'login:%%'") \
        == [(0,)]
    assert AuthActions(app.test_client()).login(username).status_code == 200


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_the_hashing_bound_must_be_a_positive_number(make_app, value):
    with pytest.raises(SystemExit, match="PASSWORD_HASH_CONCURRENCY"):
        make_app(PASSWORD_HASH_CONCURRENCY=value)


def test_sign_ups_leave_hashing_slots_for_sign_ins(make_app, app):
    limited = make_app(PASSWORD_HASH_CONCURRENCY="2")
    username, _ = register(limited)
    sign_up_slots = limited.extensions["password_hash_sign_up_slots"]
    assert sign_up_slots.acquire(blocking=False)  # one sign-up is being hashed
    try:
        assert_busy(sign_up(limited, unique_username()))
        assert AuthActions(limited.test_client()).login(username).status_code == 200
    finally:
        sign_up_slots.release()
    assert sign_up(limited, unique_username()).status_code == 201
