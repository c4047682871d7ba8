"""ChatConnect: the JSON API behind an embeddable website chat."""

import os
from collections.abc import Mapping
from functools import lru_cache

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import auth, dashboard_cors, db, errors, logs, metrics, passwords, security
from .body_limit import ChunkedBodyLimit
from .config import ConfigError, load_settings
from .validation import IdConverter
from .views import auth as auth_views
from .views import (articles, clients, contacts, conversations, demo_pages, events, help_center,
                    ops, public, visitor, webhooks, widget_script, widget_settings)

MAX_BODY_BYTES = 64 * 1024


def _no_content_type_without_content(response):
    """Flask labels every response text/html; a 204 or 304 has no body to describe."""
    if response.status_code in (204, 304):
        response.headers.pop("Content-Type", None)
    return response


def create_app(config: Mapping[str, str] | None = None) -> Flask:
    """Build the app from the environment; `config` entries override environment variables."""
    try:
        settings = load_settings({**os.environ, **(config or {})})
    except ConfigError as error:
        raise SystemExit(f"chatconnect: configuration error: {error}") from None
    app = Flask(__name__)
    # Flask asks inspect whether each hook and view is a coroutine function, on every request
    # (eight times for the widget route); the answer never changes.
    app.ensure_sync = lru_cache(maxsize=1024)(app.ensure_sync)
    # Werkzeug answers "//" in a path (an empty id) with an HTML redirect to another resource;
    # without merging it is an unknown path, a JSON 404 like any other.
    app.url_map.merge_slashes = False
    app.url_map.converters["id"] = IdConverter
    app.config.update(settings, MAX_CONTENT_LENGTH=MAX_BODY_BYTES)
    app.json.sort_keys = False
    logs.init_app(app)
    app.wsgi_app = ChunkedBodyLimit(app.wsgi_app, MAX_BODY_BYTES)
    if settings["TRUSTED_PROXY_HOPS"]:
        hops = settings["TRUSTED_PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    errors.init_app(app)
    security.init_app(app)
    app.after_request(_no_content_type_without_content)
    db.init_app(app)
    metrics.init_app(app)
    auth.init_app(app)
    dashboard_cors.init_app(app)
    passwords.init_app(app)
    app.register_blueprint(ops.bp)
    app.register_blueprint(auth_views.bp)
    app.register_blueprint(clients.bp)
    app.register_blueprint(public.bp)
    app.register_blueprint(conversations.bp)
    app.register_blueprint(visitor.bp)
    app.register_blueprint(contacts.bp)
    app.register_blueprint(widget_settings.bp)
    app.register_blueprint(widget_script.bp)
    if settings["ENV"] == "development":
        app.register_blueprint(demo_pages.bp)  # production serves no demo
    app.register_blueprint(events.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(articles.bp)
    app.register_blueprint(help_center.bp)

    from . import cli
    cli.init_app(app)
    return app
