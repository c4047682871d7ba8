"""CORS of the signed-in API for a dashboard served from one of DASHBOARD_ORIGINS."""

import pytest

from .conftest import AuthActions

DASHBOARD = "https://app.example.com"
OTHER = "https://evil.example"


@pytest.fixture
def api(make_app, app):
    return make_app(DASHBOARD_ORIGINS=f"{DASHBOARD}, http://localhost:5173").test_client()


def test_a_dashboard_origin_may_read_answers_with_credentials(api):
    AuthActions(api).register()
    response = api.get("/api/clients", headers={"Origin": DASHBOARD})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == DASHBOARD
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response.vary
    assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]


def test_errors_are_readable_too(api):
    response = api.get("/api/auth/me", headers={"Origin": "http://localhost:5173"})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"


@pytest.mark.parametrize("origin", [OTHER, "https://app.example.com:8443", "http://app.example.com",
                                    "null", "https://APP.example.com", "*"])
def test_other_origins_get_no_cors_headers(api, origin):
    AuthActions(api).register()
    for response in (api.get("/api/clients", headers={"Origin": origin}),
                     api.options("/api/clients", headers={
                         "Origin": origin, "Access-Control-Request-Method": "POST"})):
        assert not [name for name, _ in response.headers if name.startswith("Access-Control-")]
    assert "Origin" in api.get("/api/clients", headers={"Origin": origin}).vary


def test_preflight_names_the_methods_of_the_route_and_the_headers(api):
    response = api.options("/api/clients/6f1f3c51-8a4b-4c55-9a0e-0c5b9cf5c0a1", headers={
        "Origin": DASHBOARD, "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "content-type"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == DASHBOARD
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert response.headers["Access-Control-Allow-Methods"] == "DELETE, GET, PATCH"
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "authorization"} <= allowed
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    put = api.options("/api/clients/6f1f3c51-8a4b-4c55-9a0e-0c5b9cf5c0a1/business-hours",
                      headers={"Origin": DASHBOARD, "Access-Control-Request-Method": "PUT"})
    assert put.headers["Access-Control-Allow-Methods"] == "GET, PUT"


def test_a_dashboard_origin_may_sign_in_and_write(api):
    user = AuthActions(api).register()
    api.post("/api/auth/logout", headers={"Origin": DASHBOARD})
    login = api.post("/api/auth/login", headers={"Origin": DASHBOARD},
                     json={"username": user["username"], "password": "correct horse battery"})
    assert login.status_code == 200
    assert login.headers["Access-Control-Allow-Origin"] == DASHBOARD
    created = api.post("/api/clients", json={"name": "Shop"}, headers={"Origin": DASHBOARD})
    assert created.status_code == 201
    refused = api.post("/api/clients", json={"name": "Shop"}, headers={"Origin": OTHER})
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_public_routes_keep_their_own_cors(api):
    AuthActions(api).register()
    shop = api.post("/api/clients", json={"name": "Shop"}).get_json()
    response = api.get(f"/api/public/widgets/{shop['public_api_key']}", headers={"Origin": DASHBOARD})
    assert response.headers["Access-Control-Allow-Origin"] == DASHBOARD
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_without_dashboard_origins_nothing_is_allowed(client, auth):
    auth.register()
    response = client.get("/api/clients", headers={"Origin": DASHBOARD})
    assert "Access-Control-Allow-Origin" not in response.headers
