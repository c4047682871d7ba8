"""Security headers the app sets on every answer (nginx's own are in test_deploy)."""

import pytest

from .accounts import bearer, create_token, register

CSP = "default-src 'none'; frame-ancestors 'none'"


def assert_common(response):
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == CSP


@pytest.mark.parametrize("method, path", [
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/nope"),
    ("delete", "/healthz"),
    ("get", "/api/openapi.json"),
    ("get", "/api/public/widgets/pk_unknown"),
    ("options", "/api/public/widgets/pk_unknown"),
    ("get", "/api/auth/me"),
    ("post", "/api/auth/login"),
])
def test_every_answer_is_nosniff_with_the_csp(client, method, path):
    assert_common(getattr(client, method)(path))


def test_signed_in_answers_are_never_stored(app):
    _, owner = register(app)
    token = create_token(owner)["token"]
    shop = owner.post("/api/clients", json={"name": "Shop"})
    for response in (shop, owner.get("/api/clients"), owner.get("/api/auth/me"),
                     owner.get(f"/api/clients/{shop.get_json()['id']}/widget"),
                     owner.get("/api/clients/0b7c1f9e-4a57-4c3c-9a51-1d2f7d5e8a01"),
                     app.test_client().get("/api/clients", headers=bearer(token)),
                     app.test_client().get("/api/clients")):  # refused: 401
        assert response.headers["Cache-Control"] == "no-store", response.request.path
        assert_common(response)
    # Sign-in answers carry the new session.
    login = app.test_client().post("/api/auth/login", json={"username": "nobody",
                                                            "password": "wrong password"})
    assert login.headers["Cache-Control"] == "no-store"


def test_public_answers_stay_cacheable(app):
    _, owner = register(app)
    shop = owner.post("/api/clients", json={"name": "Shop"}).get_json()
    widget = app.test_client().get(f"/api/public/widgets/{shop['public_api_key']}")
    assert widget.status_code == 200
    assert widget.headers["Cache-Control"] == "public, max-age=60"
    assert_common(widget)
    tag = widget.headers["ETag"]
    not_modified = app.test_client().get(f"/api/public/widgets/{shop['public_api_key']}",
                                         headers={"If-None-Match": tag})
    assert not_modified.status_code == 304
    assert not_modified.headers["Cache-Control"] == "public, max-age=60"
    assert "no-store" not in app.test_client().get("/api/openapi.json").headers.get(
        "Cache-Control", "")
