"""The API document: served as JSON, naming exactly the routes the app serves, and true.

"True" is checked by schemathesis, which fuzzes every documented operation in-process with
schema-valid and schema-invalid requests, anonymously and as a signed-in user, and checks each
answer against the document: no server errors, documented status codes, content types, headers
and response schemas, invalid data rejected, valid data accepted, authentication enforced."""

import re

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings

from chatconnect.session_store import COOKIE_NAME
from chatconnect.views.ops import api_document

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


# --- the document is served -----------------------------------------------------------------

def test_document_is_served_as_json(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document = response.get_json()
    assert document == api_document()
    assert document["openapi"].startswith("3.1.")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert client.get("/api/openapi.json").data == response.data


def test_document_is_valid_openapi():
    SCHEMA.validate()


def test_document_declares_both_ways_of_signing_in(client):
    schemes = client.get("/api/openapi.json").get_json()["components"]["securitySchemes"]
    assert schemes["sessionCookie"] == {**schemes["sessionCookie"], "type": "apiKey",
                                        "in": "cookie", "name": COOKIE_NAME}
    assert schemes["bearerToken"]["scheme"] == "bearer"


# --- the document names exactly the routes the app serves ----------------------------------

def flask_operations(app: Flask) -> set[tuple[str, str]]:
    """(METHOD, path) of every route the app serves, each path parameter written `{}`.

    HEAD and the OPTIONS answer Flask adds to every route are left out; a route that declares
    OPTIONS itself (a CORS preflight) is kept."""
    operations = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        methods = set(rule.methods) - {"HEAD"}
        if rule.provide_automatic_options:
            methods.discard("OPTIONS")
        path = re.sub(r"<[^<>]+>", "{}", rule.rule)
        operations.update((method, path) for method in methods)
    return operations


def document_operations(document: dict) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation in an OpenAPI document, each path parameter `{}`."""
    return {
        (method.upper(), re.sub(r"\{[^{}]+\}", "{}", path))
        for path, path_item in document["paths"].items()
        for method in path_item
        if method in HTTP_METHODS
    }


def test_every_route_is_documented(app):
    undocumented = flask_operations(app) - document_operations(api_document())
    assert not undocumented, f"routes missing from chatconnect/openapi.yaml: {sorted(undocumented)}"


def test_every_documented_operation_is_served(app):
    unserved = document_operations(api_document()) - flask_operations(app)
    assert not unserved, f"documented operations the app does not serve: {sorted(unserved)}"


def test_route_comparison_ignores_parameter_names_and_automatic_methods():
    app = Flask("example")

    @app.get("/things/<uuid:thing_id>")
    def get_thing(thing_id):
        return {}

    @app.route("/public/<key>", methods=["GET", "OPTIONS"])
    def public(key):
        return {}

    assert flask_operations(app) == {("GET", "/things/{}"), ("GET", "/public/{}"),
                                     ("OPTIONS", "/public/{}")}
    document = {"paths": {
        "/things/{id}": {"parameters": [], "get": {}},
        "/public/{public_api_key}": {"get": {}, "options": {}},
    }}
    assert document_operations(document) == flask_operations(app)
    del document["paths"]["/public/{public_api_key}"]["options"]
    assert flask_operations(app) - document_operations(document) == {("OPTIONS", "/public/{}")}


# --- the document is true: schemathesis ------------------------------------------------------

class AppUnderTest:
    """A WSGI app that forwards to the running test's app, and the credentials it issued.

    The schema is loaded once, at import, so that pytest gets one test per operation; apps are
    built per test (each test starts with empty tables)."""

    app = None
    session_cookie = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


TARGET = AppUnderTest()
SCHEMA = schemathesis.openapi.from_dict(api_document())
SCHEMA.app = TARGET

FUZZ_SETTINGS = settings(
    max_examples=30,
    derandomize=True,  # the same cases on every run, so CI is repeatable
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


class SignedInUser:
    """Sends the session cookie of the user the `signed_in` fixture registered."""

    def get(self, case, context):
        return TARGET.session_cookie

    def set(self, case, data, context):
        case.cookies = {**(case.cookies or {}), COOKIE_NAME: data}


@pytest.fixture
def target(app):
    TARGET.app = app
    yield TARGET
    TARGET.app = TARGET.session_cookie = None


@pytest.fixture
def signed_in(target, client, auth):
    auth.register()
    target.session_cookie = client.get_cookie(COOKIE_NAME).value
    return target


@SCHEMA.parametrize()
@FUZZ_SETTINGS
def test_api_anonymously(case, target):
    case.call_and_validate()


@SCHEMA.auth.apply(SignedInUser, refresh_interval=None)
@SCHEMA.parametrize()
@FUZZ_SETTINGS
def test_api_signed_in(case, signed_in):
    case.call_and_validate()
