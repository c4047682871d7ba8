"""A password change evicts whoever else is signed in, whatever they are doing meanwhile.

Two attacks race the victim's change against a real gunicorn, many times: an attacker with a
stolen session cookie minting tokens, and an attacker who knows the old password signing in.
Nothing the attacker obtained, before or around the change, may work once it has answered."""

import threading
import time

import pytest

from .conftest import PASSWORD, unique_username
from .live_server import COOKIE, Browser, LiveServer

NEW_PASSWORD = "a brand new passphrase"
TOKEN_ROUNDS = 8
SIGN_IN_ROUNDS = 5  # each attempt hashes a password: these are slower


@pytest.fixture(scope="module")
def server(database_url, tmp_path_factory):
    live = LiveServer(database_url, tmp_path_factory.mktemp("credential-races"),
                      LOGIN_LIMIT_PER_USERNAME="100000/900", LOGIN_LIMIT_PER_IP="100000/900",
                      REGISTER_LIMIT_PER_IP="100000/900", PASSWORD_HASH_CONCURRENCY="8")
    try:
        yield live
    finally:
        live.stop()


def race(attempt, threads, change):
    """Run `attempt` in a loop from `threads` threads; once each thread has succeeded, run
    `change`; keep going until every thread has made an attempt that started after `change`
    returned. Returns everything the attempts obtained."""
    obtained, lock = [], threading.Lock()
    changed, failures = threading.Event(), []

    def attacker():
        try:
            started_after_change = False
            while not started_after_change:
                after = changed.is_set()
                outcome = attempt()
                if outcome is not None:
                    with lock:
                        obtained.append(outcome)
                started_after_change = after
        except Exception as error:  # noqa: BLE001 - reported by the test below
            failures.append(error)

    workers = [threading.Thread(target=attacker) for _ in range(threads)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 30
    while len(obtained) < threads and time.monotonic() < deadline and not failures:
        time.sleep(0.01)
    try:
        change()
    finally:
        changed.set()
        for worker in workers:
            worker.join(60)
    assert not failures, failures
    return obtained


def victim_and_second_session(server):
    username = unique_username("victim")
    victim = Browser(server)
    victim.register(username)
    stolen = Browser(server)
    assert stolen.login(username) == 200
    return victim, stolen.cookie


def change_password(victim):
    status, body = victim.request("POST", "/api/auth/password",
                                  {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert status == 204, body


def me(server, headers):
    return server.request("GET", "/api/auth/me", headers=headers)[0]


@pytest.mark.parametrize("round_number", range(TOKEN_ROUNDS))
def test_tokens_minted_with_a_stolen_cookie_die_with_the_password_change(server, round_number):
    victim, stolen_cookie = victim_and_second_session(server)

    def mint_token():
        status, _, body = server.request("POST", "/api/auth/tokens", {"name": "mine now"},
                                         headers={"Cookie": f"{COOKIE}={stolen_cookie}"})
        return body["token"] if status == 201 else None

    tokens = race(mint_token, 2, lambda: change_password(victim))
    assert tokens
    survivors = [t for t in tokens if me(server, {"Authorization": f"Bearer {t}"}) != 401]
    assert survivors == [], f"{len(survivors)} of {len(tokens)} tokens outlived the change"
    assert me(server, {"Cookie": f"{COOKIE}={stolen_cookie}"}) == 401
    assert victim.request("GET", "/api/auth/me")[0] == 200


@pytest.mark.parametrize("round_number", range(SIGN_IN_ROUNDS))
def test_sign_ins_with_the_old_password_die_with_the_password_change(server, round_number):
    username = unique_username("victim")
    victim = Browser(server)
    victim.register(username)

    def sign_in_with_the_old_password():
        intruder = Browser(server)
        return intruder.cookie if intruder.login(username) == 200 else None

    cookies = race(sign_in_with_the_old_password, 3, lambda: change_password(victim))
    assert cookies
    survivors = [c for c in cookies if me(server, {"Cookie": f"{COOKIE}={c}"}) != 401]
    assert survivors == [], f"{len(survivors)} of {len(cookies)} sessions outlived the change"
    assert Browser(server).login(username) == 401
    assert Browser(server).login(username, NEW_PASSWORD) == 200
    assert victim.request("GET", "/api/auth/me")[0] == 200
