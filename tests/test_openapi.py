"""The API document: served as JSON, naming exactly the routes the app serves, and true.

"True" is checked by schemathesis, which fuzzes every documented operation in-process with
schema-valid and schema-invalid requests (anonymously, signed in with the session cookie, and
as the owner of a real client and conversation with a bearer token) and checks each answer
against the document: no server errors, documented status codes, content types, headers and
response schemas, invalid data rejected, valid data accepted, authentication enforced."""

import re

import psycopg
import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (ignored_auth, missing_required_header,
                                               positive_data_acceptance)

from chatconnect.articles import SLUG_PATTERN
from chatconnect.repositories.webhook_deliveries import WebhookDeliveryRepository
from chatconnect.session_store import COOKIE_NAME
from chatconnect.validation import UUID_REGEX, is_public_api_key
from chatconnect.views.ops import api_document
from chatconnect.webhooks.signing import new_secret

from .conftest import PASSWORD


HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def is_id(value: str) -> bool:
    return re.fullmatch(UUID_REGEX, value) is not None


PATH_VALUE_CHECKS = {"slug": lambda value: re.fullmatch(SLUG_PATTERN, value) is not None}


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
    cookie, bearer = schemes["sessionCookie"], schemes["bearerToken"]
    assert (cookie["type"], cookie["in"], cookie["name"]) == ("apiKey", "cookie", COOKIE_NAME)
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")


# --- the document names exactly the routes the app serves ----------------------------------

def flask_operations(app: Flask) -> set[tuple[str, str]]:
    """(METHOD, path) of every route the app serves, each path parameter written `{}`.

    HEAD and the OPTIONS answer Flask adds to every route are left out; a route that declares
    OPTIONS itself (a CORS preflight) is kept."""
    operations = set()
    for rule in app.url_map.iter_rules():
        # The demo pages of development mode are HTML for people, not part of the API.
        if rule.endpoint == "static" or rule.endpoint.startswith("demo_pages."):
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
#
# The schema is loaded once, at import, so that pytest gets one test per operation, and
# schemathesis builds part of the cases (its "coverage" phase) while pytest collects, before
# any test has made an app, a user or a client. So a case carries placeholders for the
# credentials, and the running test's real ones, ids and cursors replace them when the case is
# sent (the `before_call` hook below).

SESSION_PLACEHOLDER = "session-cookie-of-the-running-test"
BEARER_PLACEHOLDER = "Bearer token-of-the-running-test"
VISITOR_PLACEHOLDER = "visitor-token-of-the-running-test"


class AppUnderTest:
    """A WSGI app that forwards to the running test's app, and what the test created in it."""

    def __init__(self):
        self.reset()

    def reset(self, app=None):
        self.app = app
        self.session_cookie = self.bearer_token = self.visitor_token = None
        self.path_ids = {}  # path parameter name -> the id of one of the user's resources
        self.cursors = None  # list path -> a `next_cursor` the server issued for it
        self.message_id = None  # a message of the conversation in path_ids

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)

    def fill_in(self, case):
        """Put the running test's credentials, ids and cursors into `case`."""
        if case.cookies.get(COOKIE_NAME) == SESSION_PLACEHOLDER:
            case.cookies[COOKIE_NAME] = self.session_cookie
        if case.headers.get("Authorization") == BEARER_PLACEHOLDER:
            case.headers["Authorization"] = f"Bearer {self.bearer_token}"
        if case.headers.get("X-Visitor-Token") == VISITOR_PLACEHOLDER:
            case.headers["X-Visitor-Token"] = self.visitor_token
        for name, value in case.path_parameters.items():
            # Only schema-valid values: an invalid one must stay invalid.
            valid = is_id if name.endswith("_id") else PATH_VALUE_CHECKS.get(name,
                                                                             is_public_api_key)
            if name in self.path_ids and isinstance(value, str) and valid(value):
                case.path_parameters[name] = self.path_ids[name]
        body = case.body if isinstance(case.body, dict) else {}
        message_id = body.get("message_id")
        if (self.message_id is not None and isinstance(message_id, (int, float))
                and not isinstance(message_id, bool) and message_id == int(message_id)
                and 1 <= message_id < 2**63):
            # A schema-valid id that is not a message of the conversation is rightly a 422
            # (tests/test_events.py): one of its messages, then.
            body["message_id"] = self.message_id
        if case.operation.path.endswith("/events") and "Last-Event-ID" in case.headers:
            # Those that resume are read as streams (EVENT_STREAM_SECONDS is short here).
            case.headers["Accept"] = "text/event-stream"
        wait = str(case.query.get("wait", ""))
        if wait.isascii() and wait.isdigit() and 1 < int(wait) <= 25:
            # A long-poll runs its full `wait` when no message comes; one second is enough to
            # take the waiting path (tests/test_long_poll.py covers the rest).
            case.query["wait"] = 1
        if case.operation.path.endswith("/business-hours") and case.meta \
                and case.meta.generation.mode.is_positive and isinstance(case.body, dict):
            make_business_hours_consistent(case.body)
        if "cursor" in case.query and str(case.query.get("q", "")).strip():
            # The cursor of a search page belongs to its query; another one is a 422.
            del case.query["cursor"]
        if self.cursors is not None and "cursor" in case.query:
            # Any string is a schema-valid cursor, but one the server did not issue for the
            # list is rightly a 422 (tests/test_validation.py), which schemathesis would
            # report as valid data rejected. So: an issued cursor, or none.
            cursor = self.cursors.get(case.operation.path)
            if cursor is None:
                del case.query["cursor"]
            else:
                case.query["cursor"] = cursor


def make_business_hours_consistent(body: dict) -> None:
    """Turn a schema-valid body into one the server must accept.

    JSON Schema cannot say that an interval starts before it ends, that a day's intervals do
    not overlap, or which zone names exist; so a schema-valid case gets a known zone and each
    day's times, sorted and de-duplicated, paired up in order (tests/test_business_hours.py
    covers the refusals)."""
    if isinstance(body.get("timezone"), str):
        body["timezone"] = "Europe/Berlin"
    schedule = body.get("schedule")
    if not isinstance(schedule, dict):
        return
    for day, intervals in schedule.items():
        times = sorted({clock for interval in intervals for clock in interval})
        if times and times[0] == "24:00":
            times = []
        schedule[day] = [times[i:i + 2] for i in range(0, len(times) - 1, 2)]


TARGET = AppUnderTest()
DOCUMENT = api_document()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
SCHEMA.app = TARGET


@schemathesis.hook
def before_call(context, case, **kwargs):
    TARGET.fill_in(case)


FUZZ_SETTINGS = settings(
    max_examples=30,
    derandomize=True,  # the same cases on every run, so CI is repeatable
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


def security(operation) -> list:
    return operation.definition.raw.get("security", DOCUMENT["security"])


def is_visitor_operation(operation) -> bool:
    return security(operation) == [{"visitorToken": []}]


def needs_sign_in(operation) -> bool:
    return bool(security(operation)) and not is_visitor_operation(operation)


def names_resources(operation) -> bool:
    return "{" in operation.path


@pytest.fixture
def target(app):
    # Room for every case to reach the route's logic; the limits have tests of their own.
    app.config.update(CONVERSATION_LIMIT_PER_IP=(1000, 3600),
                      VISITOR_MESSAGE_LIMIT_PER_IP=(1000, 60),
                      IDENTIFY_LIMIT_PER_IP=(1000, 60),
                      ARTICLE_SEARCH_LIMIT_PER_IP=(1000, 60),
                      # An event stream ends after a second instead of minutes.
                      EVENT_STREAM_SECONDS=1)
    TARGET.reset(app)
    yield TARGET
    TARGET.reset()


# A webhook URL must resolve to public addresses only, which no schema can say, and no name
# resolves to one here (DNS answers nothing outside, which also keeps the run from reaching a
# real host). So a schema-valid URL may be refused, but quickly, and with `url` as the only
# field at fault.
WEBHOOK_URL_OPERATIONS = {"createWebhook", "updateWebhook"}


def call_and_validate(case, excluded_checks=()):
    excluded_checks = list(excluded_checks)
    names_url = isinstance(case.body, dict) and "url" in case.body
    if case.operation.definition.raw.get("operationId") in WEBHOOK_URL_OPERATIONS and names_url:
        excluded_checks.append(positive_data_acceptance)
    response = case.call_and_validate(excluded_checks=excluded_checks)
    if (positive_data_acceptance in excluded_checks and response.status_code == 422
            and case.meta is not None and case.meta.generation.mode.is_positive):
        assert set(response.json()["error"]["fields"]) == {"url"}, response.text
    return response


@SCHEMA.parametrize()
@FUZZ_SETTINGS
def test_api_anonymously(case, target):
    case.call_and_validate()


# --- signed in with the session cookie -------------------------------------------------------

class SignedInUser:
    """Sends the session cookie of the user the `signed_in` fixture registered."""

    def get(self, case, context):
        return SESSION_PLACEHOLDER

    def set(self, case, data, context):
        case.cookies = {**(case.cookies or {}), COOKIE_NAME: data}


@pytest.fixture
def signed_in(target, client, auth):
    auth.register()
    target.session_cookie = client.get_cookie(COOKIE_NAME).value
    target.cursors = {}
    return target


# Operations that take no sign-in answer the same with it, and are fuzzed anonymously above.
@SCHEMA.auth.apply(SignedInUser, refresh_interval=None)
@SCHEMA.include(lambda ctx: needs_sign_in(ctx.operation)).parametrize()
@FUZZ_SETTINGS
def test_api_signed_in(case, signed_in):
    call_and_validate(case)


# --- as the owner of real resources, with a bearer token, so that ids get past 404 -----------

class Owner:
    """Sends the owner's bearer token, and the visitor token of the owner's conversation."""

    def get(self, case, context):
        return BEARER_PLACEHOLDER, VISITOR_PLACEHOLDER

    def set(self, case, data, context):
        bearer, visitor_token = data
        case.headers = {**(case.headers or {}), "Authorization": bearer,
                        "X-Visitor-Token": visitor_token}


def add_webhook_with_deliveries(app, database_url, client_id) -> tuple[str, str]:
    """(webhook id, delivery id): a webhook of the client with a delivery of each of its events.

    Stored directly: the fuzzed app refuses every URL that does not resolve to a public
    address, and there is none here (nor should the run reach one)."""
    with psycopg.connect(database_url) as conn:
        webhook_id = conn.execute(
            "INSERT INTO webhooks (client_id, url, secret) VALUES (%s, %s, %s) RETURNING id",
            (client_id, "https://hooks.example/chat", new_secret())).fetchone()[0]
    with app.extensions["db_pool"].connection() as conn:
        WebhookDeliveryRepository(conn).fan_out()
    with psycopg.connect(database_url) as conn:
        delivery_id = conn.execute("SELECT id FROM webhook_deliveries WHERE webhook_id = %s LIMIT 1",
                                   (webhook_id,)).fetchone()[0]
    return str(webhook_id), str(delivery_id)


@pytest.fixture
def owner(target, app, client, auth, database_url):
    """A user with two clients, three conversations of two contacts and two published articles
    on the first, a second session and a second token, a webhook with deliveries, and the second
    page's cursor of each paginated list."""
    user = auth.register()
    app.test_client().post("/api/auth/login", json={"username": user["username"],
                                                    "password": PASSWORD})
    created = client.post("/api/clients", json={"name": "Shop"}).get_json()
    client.post("/api/clients", json={"name": "Blog", "allowed_domains": ["blog.example"]})
    conversations = f"/api/clients/{created['id']}/conversations"
    for visitor_name in ("Bob", "Ann"):
        started = client.post(f"/api/public/widgets/{created['public_api_key']}/conversations",
                              json={"message": "Hello", "visitor_name": visitor_name}).get_json()
    reply = client.post(f"{conversations}/{started['conversation']['id']}/messages",
                        json={"body": "Hi Ann, how can we help?"}).get_json()
    target.message_id = reply["id"]
    # Ann's second conversation, with her (her contact's) token.
    visitor_conversations = f"/api/public/widgets/{created['public_api_key']}/conversations"
    client.post(visitor_conversations, json={"message": "Me again"},
                headers={"X-Visitor-Token": started["visitor_token"]})
    webhook_id, delivery_id = add_webhook_with_deliveries(app, database_url, created["id"])
    deliveries = f"/api/clients/{created['id']}/webhooks/{webhook_id}/deliveries"
    articles = f"/api/clients/{created['id']}/articles"
    for title in ("Returns", "Shipping"):
        article = client.post(articles, json={"title": title, "status": "published",
                                              "body_markdown": f"All about **{title}**."})
    article = article.get_json()
    target.cursors = {
        "/api/clients": client.get("/api/clients?limit=1").get_json()["next_cursor"],
        "/api/clients/{client_id}/conversations":
            client.get(f"{conversations}?limit=1").get_json()["next_cursor"],
        "/api/clients/{client_id}/contacts":
            client.get(f"/api/clients/{created['id']}/contacts?limit=1").get_json()["next_cursor"],
        "/api/public/widgets/{public_api_key}/conversations":
            client.get(f"{visitor_conversations}?limit=1",
                       headers={"X-Visitor-Token": started["visitor_token"]}
                       ).get_json()["next_cursor"],
        "/api/clients/{client_id}/webhooks/{webhook_id}/deliveries":
            client.get(f"{deliveries}?limit=1").get_json()["next_cursor"],
        "/api/clients/{client_id}/articles":
            client.get(f"{articles}?limit=1").get_json()["next_cursor"],
    }
    assert all(target.cursors.values())
    spare_token = client.post("/api/auth/tokens", json={"name": "spare"}).get_json()
    target.bearer_token = client.post("/api/auth/tokens", json={"name": "fuzz"}).get_json()["token"]
    target.visitor_token = started["visitor_token"]
    other_session = next(session for session in client.get("/api/auth/sessions").get_json()["items"]
                         if not session["current"])
    target.path_ids = {
        "client_id": created["id"],
        "public_api_key": created["public_api_key"],
        "conversation_id": started["conversation"]["id"],
        "contact_id": started["conversation"]["contact_id"],
        "session_id": other_session["id"],
        "token_id": spare_token["id"],
        "webhook_id": webhook_id,
        "delivery_id": delivery_id,
        "article_id": article["id"],
        "slug": article["slug"],
    }
    return target


@SCHEMA.auth.apply(Owner, refresh_interval=None)
@SCHEMA.include(lambda ctx: needs_sign_in(ctx.operation) or names_resources(ctx.operation)) \
    .parametrize()
@FUZZ_SETTINGS
def test_api_as_owner(case, owner):
    if not is_visitor_operation(case.operation):
        call_and_validate(case)
        return
    # A visitor with a missing or wrong token gets 404, not the 401 or 403 that schemathesis'
    # `ignored_auth` and `missing_required_header` checks expect, so that a conversation's
    # existence is not revealed; the same probes are made here, expecting 404.
    response = case.call_and_validate(excluded_checks=[ignored_auth, missing_required_header])
    if 200 <= response.status_code < 300:
        for token in (None, "not-the-token"):
            headers = {k: v for k, v in case.headers.items() if k.lower() != "x-visitor-token"}
            if token:
                headers["X-Visitor-Token"] = token
            probe = case.derive(headers=headers)
            assert probe.call().status_code == 404, (case.method, case.formatted_path, token)
