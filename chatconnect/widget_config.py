"""A client's public widget configuration, as the widget route serves it: the ready body and
its ETag per public key, with the allowed domains, cached in each process (chatconnect/caches.py).

Triggers on every table the configuration is built from (clients, client_widgets, widget_styles,
business_hours, and any table added later with `SELECT widget_config_follows('table')` in
schema.sql) notify `chatconnect_widget_config` with the client's id and its old and new public keys. Unknown keys
are cached too, as None, and forgotten when a row takes that key."""

import hashlib
import json
from dataclasses import dataclass

from flask import current_app

from . import business_hours
from .caches import NotifiedCache, process_cache
from .db import single_statement
from .repositories.clients import ClientRepository
from .widget_style import public_style_json

CHANNEL = "chatconnect_widget_config"
EXTENSION = "widget_config_cache"


@dataclass(frozen=True, slots=True)
class WidgetConfig:
    client_id: str
    active: bool
    body: bytes | None = None
    etag: str | None = None
    allowed_domains: tuple = ()


def _etag(public_api_key: str, body: str) -> str:
    # The key is part of the tag so that rotating it invalidates cached copies; a suspended
    # client has no tag at all (404).
    return '"' + hashlib.sha256(f"{public_api_key}\n{body}".encode()).hexdigest()[:32] + '"'


def load(public_api_key: str) -> WidgetConfig | None:
    """The configuration from the database: one query, outside a transaction."""
    with single_statement() as conn:
        row = ClientRepository(conn).get_public_widget_by_key(public_api_key)
    if row is None:
        return None
    if row["status"] != "active":
        return WidgetConfig(row["client_id"], active=False)
    body = json.dumps({
        "widget_name": row["widget_name"],
        "primary_color": row["primary_color"],
        "position": row["position"],
        "welcome_message": row["welcome_message"],
        "style": public_style_json(row),
        "offline_message": business_hours.offline_message(row),
    }, separators=(",", ":"))
    return WidgetConfig(row["client_id"], True, body.encode(), _etag(public_api_key, body),
                        tuple(row["allowed_domains"]))


def _group(config: WidgetConfig | None):
    return config.client_id if config is not None else None


def cache(app=None) -> NotifiedCache:
    """This process's cache of `app` (the current app by default), attached to its hub."""
    app = app or current_app._get_current_object()
    return process_cache(app, EXTENSION, "widgets", app.config["WIDGET_CACHE_SIZE"], _group,
                         CHANNEL)


def get(public_api_key: str) -> WidgetConfig | None:
    return cache().get(public_api_key, load)


def forget_client(client_id: str) -> None:
    """Drop the client's entries here and now, after a change this process made: the
    notification reaches the other processes (and this one again) a moment later."""
    widget_cache = current_app.extensions.get(EXTENSION)
    if widget_cache is not None:
        widget_cache.forget(client_id)
