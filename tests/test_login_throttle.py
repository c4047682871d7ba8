"""Sign-in throttling per username and per client IP, counted in the database for every worker."""

import pytest

from chatconnect.db import transaction
from chatconnect.repositories.users import UserRepository

from .accounts import PASSWORD, sql, unique_username
from .conftest import AuthActions


@pytest.fixture
def limited(app, make_app):  # `app` empties the tables first
    return make_app(LOGIN_LIMIT_PER_USERNAME="3/900", LOGIN_LIMIT_PER_IP="5/900")


def new_user(app) -> str:
    username = unique_username()
    AuthActions(app.test_client()).register(username)
    return username


def attempt(app, username, password="wrong password", ip="192.0.2.1"):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client.post("/api/auth/login", json={"username": username, "password": password})


def assert_rate_limited(response, window=900):
    assert response.status_code == 429
    assert response.get_json()["error"]["code"] == "rate_limited"
    assert 0 < int(response.headers["Retry-After"]) <= window


def test_repeated_failures_for_a_username_are_refused(limited):
    username = new_user(limited)
    assert [attempt(limited, username).status_code for _ in range(3)] == [401] * 3
    assert_rate_limited(attempt(limited, username, PASSWORD))  # even the right password
    assert_rate_limited(attempt(limited, username.upper(), ip="198.51.100.7"))  # any case, any IP
    assert attempt(limited, new_user(limited), PASSWORD).status_code == 200  # others unaffected


def test_a_refused_attempt_does_not_count(limited):
    username = new_user(limited)
    for _ in range(5):
        attempt(limited, username)
    [[hits]] = sql(limited.config["DATABASE_URL"],
                   "SELECT hits FROM rate_limits WHERE key = %s", (f"login:user:{username.lower()}",))
    assert hits == 3


def test_a_successful_sign_in_resets_the_username_counter(limited):
    username = new_user(limited)
    assert [attempt(limited, username).status_code for _ in range(2)] == [401, 401]
    assert attempt(limited, username, PASSWORD).status_code == 200
    assert [attempt(limited, username).status_code for _ in range(3)] == [401] * 3
    assert_rate_limited(attempt(limited, username))


def test_repeated_failures_from_one_ip_are_refused_across_usernames(limited):
    names = [unique_username() for _ in range(5)]
    assert [attempt(limited, name).status_code for name in names] == [401] * 5
    assert_rate_limited(attempt(limited, new_user(limited), PASSWORD))
    assert attempt(limited, unique_username(), ip="203.0.113.9").status_code == 401


def test_successful_sign_ins_do_not_use_up_the_ip_limit(limited):
    username = new_user(limited)
    assert [attempt(limited, username, PASSWORD).status_code for _ in range(7)] == [200] * 7
    assert attempt(limited, unique_username()).status_code == 401


def test_unknown_user_and_wrong_password_are_throttled_alike(limited):
    known, unknown = new_user(limited), unique_username()
    for username, ip in ((known, "192.0.2.10"), (unknown, "192.0.2.20")):
        responses = [attempt(limited, username, ip=ip) for _ in range(4)]
        assert [r.status_code for r in responses] == [401, 401, 401, 429]
    first_known = attempt(limited, known, ip="198.51.100.1")
    first_unknown = attempt(limited, unknown, ip="198.51.100.2")
    assert first_known.get_json() == first_unknown.get_json()


def test_unknown_user_and_wrong_password_answer_the_same(app):
    username = new_user(app)
    wrong_password = attempt(app, username)
    unknown_user = attempt(app, unique_username())
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.get_json() == unknown_user.get_json()
    assert wrong_password.headers.get("Set-Cookie") == unknown_user.headers.get("Set-Cookie")


def test_two_app_instances_share_the_counters(app, make_app):
    """Like two gunicorn workers (or hosts) on the same database."""
    first = make_app(LOGIN_LIMIT_PER_USERNAME="4/900")
    second = make_app(LOGIN_LIMIT_PER_USERNAME="4/900")
    username = new_user(first)
    assert [attempt(worker, username).status_code
            for worker in (first, second, first, second)] == [401] * 4
    assert_rate_limited(attempt(second, username, PASSWORD))
    assert_rate_limited(attempt(first, username, PASSWORD))


def test_behind_a_trusted_proxy_the_forwarded_client_ip_is_counted(app, make_app):
    proxied = make_app(TRUSTED_PROXY_HOPS="1", LOGIN_LIMIT_PER_IP="2/900")
    client = proxied.test_client()

    def from_ip(ip):
        return client.post("/api/auth/login", headers={"X-Forwarded-For": ip},
                           json={"username": unique_username(), "password": "wrong password"})

    assert [from_ip("192.0.2.50").status_code for _ in range(2)] == [401, 401]
    assert_rate_limited(from_ip("192.0.2.50"))
    assert from_ip("192.0.2.51").status_code == 401


def test_a_non_ascii_spelling_neither_dodges_the_limit_nor_reaches_the_account(limited):
    """'İ' (U+0130) is 'i̇' to Python's lower() and 'i' to PostgreSQL's: the throttle key and
    the lookup once disagreed, giving 'mİni' a bucket of its own that signed in as 'mini'."""
    username = "mini-" + unique_username("").strip("-")
    AuthActions(limited.test_client()).register(username)
    assert [attempt(limited, username).status_code for _ in range(3)] == [401] * 3
    assert_rate_limited(attempt(limited, username, PASSWORD))
    for spelling in ("mİni" + username[4:], "MİNİ" + username[4:], "mını" + username[4:],
                     "mini\u0307" + username[4:]):
        response = attempt(limited, spelling, PASSWORD, ip="198.51.100.77")
        assert response.status_code == 401, spelling
        assert "Set-Cookie" not in response.headers
    assert AuthActions(limited.test_client()).login(username.upper()).status_code == 429


@pytest.mark.parametrize("name, same_name, other_name", [
    ("Mini", "mINI", "mİni"),
    ("straße", "STRAßE", "STRASSE"),
    ("kelvin", "KELVIN", "\u212aelvin"),  # KELVIN SIGN, which lower() maps to 'k'
])
def test_the_unique_index_and_the_lookup_fold_ascii_letters_only(app, name, same_name,
                                                                  other_name):
    """Older accounts may have any name; both sides of the rule treat them alike."""
    with app.app_context(), transaction() as conn:
        users = UserRepository(conn)
        assert users.create(name, "x") is not None
        assert users.create(same_name, "x") is None  # the same name: refused by the index
        assert users.create(other_name, "x") is not None  # another name
        assert users.get_credentials(same_name)[0].username == name
        assert users.get_credentials(other_name)[0].username == other_name
