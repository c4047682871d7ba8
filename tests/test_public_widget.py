"""The public widget route, as browsers on customer sites call it."""

import re

import pytest

from chatconnect.business_hours import DEFAULT_OFFLINE_MESSAGE
from chatconnect.session_store import COOKIE_NAME

from .caching import settle, wait_until_cache_is_live

WIDGET_FIELDS = {"widget_name", "primary_color", "position", "welcome_message"}


@pytest.fixture
def owner(client, auth):
    auth.register()
    return client


@pytest.fixture
def browser(app):
    """A visitor's browser: no cookie, no token."""
    return app.test_client()


def create_client(owner, **body):
    response = owner.post("/api/clients", json={"name": "Shop", **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def widget_path(client):
    return f"/api/public/widgets/{client['public_api_key']}"


def error_code(response):
    return response.get_json()["error"]["code"]


def test_serves_the_widget_settings(owner, browser):
    shop = create_client(owner, allowed_domains=["shop.example"])
    owner.patch(f"/api/clients/{shop['id']}/widget",
                json={"widget_name": "Équipe", "welcome_message": "Salut 👋"})
    response = browser.get(widget_path(shop))
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {
        "widget_name": "Équipe", "primary_color": "#3b82f6", "position": "bottom-right",
        "welcome_message": "Salut 👋",
        "style": {"theme": "light", "font_family": "system", "border_radius": 12,
                  "offset_x": 20, "offset_y": 20, "launcher_icon": "chat",
                  "show_on_mobile": True, "header_text": ""},
        "offline_message": DEFAULT_OFFLINE_MESSAGE}
    assert re.fullmatch(r'"[!#-~]+"', response.headers["ETag"])
    assert response.headers["Cache-Control"] == "public, max-age=60"
    assert "Origin" in response.vary
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("key", [
    "pk_unknown", "pk_" + "a" * 32, "%00", "pk_%00abc", "a" * 5000, "pk%20with%20space",
    "%C3%A9", "%ED%A0%80", "%FF", "pk_..", "'%20OR%20'1'='1",
])
def test_unknown_and_odd_keys_are_not_found(owner, browser, key):
    create_client(owner)
    for method in (browser.get, browser.options):
        response = method(f"/api/public/widgets/{key}", headers={"Origin": "https://a.test"})
        assert response.status_code == 404
        assert error_code(response) == "not_found"
        # The widget reads the refusal of its GET (a simple request); a preflight gets no echo.
        assert response.headers.get("Access-Control-Allow-Origin") == (
            "https://a.test" if method == browser.get else None)


def test_a_suspended_client_serves_nothing_until_reactivated(owner, browser):
    shop = create_client(owner)
    tag = browser.get(widget_path(shop)).headers["ETag"]
    owner.patch(f"/api/clients/{shop['id']}", json={"status": "suspended"})
    for headers in ({}, {"If-None-Match": tag}):
        assert browser.get(widget_path(shop), headers=headers).status_code == 404
    assert browser.options(widget_path(shop)).status_code == 404
    owner.patch(f"/api/clients/{shop['id']}", json={"status": "active"})
    assert browser.get(widget_path(shop)).status_code == 200


def test_a_deleted_clients_key_is_not_found(owner, browser):
    shop = create_client(owner)
    owner.delete(f"/api/clients/{shop['id']}")
    assert browser.get(widget_path(shop)).status_code == 404


# --- the Origin check -------------------------------------------------------------------

@pytest.mark.parametrize("allowed_domains, origin, allowed", [
    ([], "https://anything.test", True),
    (["example.com"], "https://example.com", True),
    (["example.com"], "http://example.com", True),
    (["example.com"], "https://example.com:8443", True),
    (["Example.COM"], "https://EXAMPLE.com", True),
    (["example.com"], "https://www.example.com", False),
    (["example.com"], "https://example.com.evil.com", False),
    (["example.com"], "https://evilexample.com", False),
    (["example.com"], "https://example.co", False),
    (["example.com"], "null", False),
    (["example.com"], "https://example.com/", False),
    (["example.com"], "ftp://example.com", False),
    (["example.com"], "https://user@example.com", False),
    (["*.example.com"], "https://shop.example.com", True),
    (["*.example.com"], "https://a.b.example.com", True),
    (["*.example.com"], "https://example.com", False),
    (["*.example.com"], "https://evilexample.com", False),
    (["*.example.com"], "https://shop.example.com.evil.com", False),
    (["localhost:3000"], "http://localhost:3000", True),
    (["localhost:3000"], "http://localhost:3001", False),
    (["localhost:3000"], "http://localhost", False),
    (["example.com:443"], "https://example.com", True),
    (["example.com:443"], "http://example.com", False),
    (["example.com:8080"], "http://example.com:8080", True),
    (["example.com:8080"], "https://example.com:8080", True),
    (["127.0.0.1:8000"], "http://127.0.0.1:8000", True),
    (["xn--bcher-kva.de"], "https://xn--bcher-kva.de", True),
    (["xn--bcher-kva.de"], "https://bücher.de", False),
    (["*.xn--bcher-kva.de"], "https://shop.xn--bcher-kva.de", True),
    (["other.test", "*.example.com"], "https://shop.example.com", True),
])
def test_origin_check(owner, browser, allowed_domains, origin, allowed):
    shop = create_client(owner, allowed_domains=allowed_domains)
    response = browser.get(widget_path(shop), headers={"Origin": origin})
    assert "Origin" in response.vary
    assert "Access-Control-Allow-Credentials" not in response.headers
    if allowed:
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == origin
    else:
        assert response.status_code == 403
        assert error_code(response) == "forbidden"
        # Readable, so that the widget can tell a refusal from a network failure and stop.
        assert response.headers["Access-Control-Allow-Origin"] == origin


def test_no_origin_is_answered_even_with_allowed_domains(owner, browser):
    shop = create_client(owner, allowed_domains=["shop.example"])
    assert browser.get(widget_path(shop)).status_code == 200


def test_changing_allowed_domains_applies_at_once(owner, browser):
    shop = create_client(owner, allowed_domains=["old.example"])
    headers = {"Origin": "https://new.example"}
    assert browser.get(widget_path(shop), headers=headers).status_code == 403
    owner.patch(f"/api/clients/{shop['id']}", json={"allowed_domains": ["new.example"]})
    assert browser.get(widget_path(shop), headers=headers).status_code == 200


def test_preflight(owner, browser):
    shop = create_client(owner, allowed_domains=["shop.example"])
    response = browser.options(widget_path(shop), headers={
        "Origin": "https://shop.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "if-none-match"})
    assert response.status_code == 204 and "Content-Type" not in response.headers
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "GET" in response.headers["Access-Control-Allow-Methods"]
    assert "If-None-Match" in response.headers["Access-Control-Allow-Headers"]
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in response.vary
    assert "Access-Control-Allow-Credentials" not in response.headers
    refused = browser.options(widget_path(shop), headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_other_methods_are_405(owner, browser):
    shop = create_client(owner)
    response = browser.post(widget_path(shop), json={})
    assert response.status_code == 405
    assert error_code(response) == "method_not_allowed"


# --- caching ----------------------------------------------------------------------------

def test_if_none_match_with_the_current_tag_is_304(owner, browser):
    shop = create_client(owner, allowed_domains=["shop.example"])
    origin = {"Origin": "https://shop.example"}
    tag = browser.get(widget_path(shop), headers=origin).headers["ETag"]
    for if_none_match in (tag, f'"other", {tag}', f"W/{tag}", "*"):
        response = browser.get(widget_path(shop), headers={**origin, "If-None-Match": if_none_match})
        assert response.status_code == 304, if_none_match
        assert response.data == b"" and "Content-Type" not in response.headers
        assert response.headers["ETag"] == tag
        assert response.headers["Cache-Control"] == "public, max-age=60"
        assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"
        assert "Origin" in response.vary
    for if_none_match in ('"other"', tag[:-2] + '"', "", "garbage"):
        response = browser.get(widget_path(shop), headers={"If-None-Match": if_none_match})
        assert response.status_code == 200, if_none_match
    # The origin check comes first: a foreign site gets no 304.
    foreign = browser.get(widget_path(shop), headers={"Origin": "https://evil.example",
                                                      "If-None-Match": tag})
    assert foreign.status_code == 403


def test_the_tag_changes_with_the_widget_and_the_key(owner, browser):
    shop = create_client(owner)
    path = widget_path(shop)
    first = browser.get(path).headers["ETag"]
    assert browser.get(path).headers["ETag"] == first
    owner.patch(f"/api/clients/{shop['id']}/widget", json={})
    owner.patch(f"/api/clients/{shop['id']}", json={"name": "Renamed"})
    assert browser.get(path, headers={"If-None-Match": first}).status_code == 304

    owner.patch(f"/api/clients/{shop['id']}/widget", json={"primary_color": "#000"})
    changed = browser.get(path, headers={"If-None-Match": first})
    assert changed.status_code == 200 and changed.get_json()["primary_color"] == "#000"
    second = changed.headers["ETag"]
    assert second != first

    rotated = owner.post(f"/api/clients/{shop['id']}/rotate-key").get_json()
    assert browser.get(path, headers={"If-None-Match": second}).status_code == 404
    after_rotation = browser.get(widget_path(rotated), headers={"If-None-Match": second})
    assert after_rotation.status_code == 200
    assert after_rotation.headers["ETag"] not in (first, second)


def test_another_client_with_the_same_settings_has_another_tag(owner, browser):
    first, second = create_client(owner), create_client(owner)
    first_response, second_response = browser.get(widget_path(first)), browser.get(widget_path(second))
    assert first_response.data == second_response.data
    assert first_response.headers["ETag"] != second_response.headers["ETag"]


# --- cost -------------------------------------------------------------------------------

def connection_requests(app, request):
    """How many connections the request took from the pool."""
    pool = app.extensions["db_pool"]
    pool.pop_stats()
    response = request()
    return response, pool.get_stats().get("requests_num", 0)


def test_at_most_one_connection_and_no_session_work_per_request(app, owner, browser,
                                                                database_url):
    shop = create_client(owner)
    assert wait_until_cache_is_live(app) and settle([app], database_url)
    response, used = connection_requests(app, lambda: browser.get(widget_path(shop)))
    assert response.status_code == 200 and used == 1
    # Then the answer comes from this process's cache. A signed-in owner's cookie (or a stale
    # one) sent along is neither looked up nor touched.
    assert owner.get_cookie(COOKIE_NAME) is not None
    response, used = connection_requests(app, lambda: owner.get(widget_path(shop)))
    assert response.status_code == 200 and used == 0
    assert "Set-Cookie" not in response.headers
    browser.set_cookie(COOKIE_NAME, "made-up")
    response, used = connection_requests(app, lambda: browser.get(widget_path(shop)))
    assert response.status_code == 200 and used == 0
    assert "Set-Cookie" not in response.headers
    response, used = connection_requests(app, lambda: browser.get("/api/public/widgets/%00"))
    assert response.status_code == 404 and used == 0
