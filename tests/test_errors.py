"""Every failure the framework can produce answers the same JSON error envelope."""

import pytest


def assert_error(response, status, code):
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def test_unknown_path_is_json_404(client):
    assert_error(client.get("/nope"), 404, "not_found")


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/clients//widget"),
    ("PATCH", "/api/clients//widget"),
    ("GET", "/api/clients/%2F/conversations"),
    ("OPTIONS", "/api/public/widgets//conversations"),
    ("GET", "/api//auth/me"),
    ("GET", "/healthz/"),
])
def test_an_empty_path_segment_is_json_404_not_a_redirect(client, method, path):
    assert_error(client.open(path, method=method), 404, "not_found")


def test_wrong_method_is_json_405_with_allow(client):
    response = client.delete("/healthz")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_body_over_64_kib_is_413(client):
    body = b'{"username": "' + b"a" * 70_000 + b'"}'
    response = client.post("/api/auth/register", data=body, content_type="application/json")
    assert_error(response, 413, "payload_too_large")


def test_body_that_is_not_json_content_type_is_415(client):
    response = client.post("/api/auth/register", data="username=a", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("body", [b"{", b"[1,", b"\xff\xfe", b"[" * 100_00 + b"]" * 100_00])
def test_malformed_json_is_400(client, body):
    response = client.post("/api/auth/register", data=body, content_type="application/json")
    assert_error(response, 400, "bad_request")


@pytest.mark.parametrize("body", [b"[]", b"null", b'"x"', b"3"])
def test_body_that_is_not_an_object_is_400(client, body):
    response = client.post("/api/auth/register", data=body, content_type="application/json")
    assert_error(response, 400, "bad_request")


def test_unknown_field_is_a_validation_error(client):
    response = client.post("/api/auth/register",
                           json={"username": "someone", "password": "long enough", "admin": True})
    error = assert_error(response, 422, "validation_error")
    assert error["fields"] == {"admin": "is not a known field"}


def test_unexpected_exception_is_500_without_details(app):
    @app.get("/boom")
    def boom():
        raise RuntimeError("SELECT secret FROM internals")

    response = app.test_client().get("/boom")
    error = assert_error(response, 500, "internal_error")
    assert "SELECT" not in response.get_data(as_text=True)
    assert set(error) == {"code", "message"}


def test_healthz_touches_no_database(make_app, database_url):
    app = make_app()
    app.extensions["db_pool"].close()
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_answers_without_a_body_carry_no_content_type(client, auth):
    """Flask labels every response text/html; 204 and 304 have nothing to label."""
    auth.register()
    response = auth.logout()
    assert response.status_code == 204 and response.data == b""
    assert "Content-Type" not in response.headers
    response = client.options("/api/public/widgets/pk_missing")  # unknown key: an error body
    assert response.status_code == 404 and response.mimetype == "application/json"
