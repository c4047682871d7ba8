"""A client's webhooks and their delivery logs (the deliveries are made by `chatconnect worker`)."""

import re
from urllib.parse import urlsplit

from flask import Blueprint, current_app
from flask_login import current_user, login_required

from ..db import transaction
from ..errors import ApiError, not_found
from ..pagination import page, page_params
from ..repositories.clients import ClientRepository
from ..repositories.webhook_deliveries import WebhookDeliveryRepository
from ..repositories.webhooks import MAX_WEBHOOKS_PER_CLIENT, TooManyWebhooks, WebhookRepository
from ..serialize import iso_utc
from ..validation import Invalid, boolean, list_of, one_of, parse_body
from ..webhooks.addresses import Refused, resolve, url_host_port
from ..webhooks.signing import new_secret

bp = Blueprint("webhooks", __name__, url_prefix="/api/clients/<id:client_id>/webhooks")

EVENT_TYPES = ("conversation.created", "conversation.updated", "message.created",
               "conversation.seen")
MAX_URL_LENGTH = 2048
PRINTABLE_ASCII = re.compile(r"[!-~]+")


def webhook_url(value):
    """An https URL whose host resolves to public addresses only (see webhooks/addresses.py);
    with WEBHOOK_ALLOW_PRIVATE_NETWORKS, http and any address too."""
    if not isinstance(value, str):
        raise Invalid("must be a string")
    if len(value) > MAX_URL_LENGTH:
        raise Invalid(f"must be at most {MAX_URL_LENGTH} characters")
    if not PRINTABLE_ASCII.fullmatch(value):
        raise Invalid("must be a URL of printable ASCII characters (write other hosts in "
                      "punycode and percent-encode the path)")
    allow_private = current_app.config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"]
    schemes = ("https", "http") if allow_private else ("https",)
    scheme = value.split(":", 1)[0].lower()
    if scheme not in schemes:
        raise Invalid("must be an https:// URL" if not allow_private
                      else "must be an http:// or https:// URL")
    try:
        parts = urlsplit(value)
        _, host, port = url_host_port(value)
    except (Refused, ValueError):
        raise Invalid("must be a URL with a host, like https://example.com/hooks") from None
    if parts.username is not None or parts.password is not None:
        raise Invalid("must not contain a user name or password")
    if "#" in value:
        raise Invalid("must not contain a fragment (#)")
    try:
        resolve(host, port, allow_private)
    except Refused as refused:
        raise Invalid(str(refused)) from None
    return value


WEBHOOK_CHECKS = {
    "url": webhook_url,
    "events": list_of(one_of(*EVENT_TYPES), len(EVENT_TYPES)),
    "active": boolean,
}


def webhook_json(row, secret: str | None = None) -> dict:
    body = {
        "id": row["id"],
        "url": row["url"],
        "events": row["events"],
        "active": row["active"],
        "created_at": iso_utc(row["created_at"]),
    }
    if secret is not None:
        body["secret"] = secret
    return body


def delivery_json(row) -> dict:
    return {
        "id": row["id"],
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "attempt": row["attempt"],
        "status": row["status"],
        "response_status": row["response_status"],
        "duration_ms": row["duration_ms"],
        "error": row["error"],
        "created_at": iso_utc(row["created_at"]),
        "next_attempt_at": iso_utc(row["next_attempt_at"]),
    }


def _found(row, what="webhook"):
    if row is None:
        raise not_found(what)
    return row


@bp.get("")
@login_required
def list_webhooks(client_id):
    with transaction() as conn:
        client_row = ClientRepository(conn).get_for_owner(client_id, current_user.id)
        rows = WebhookRepository(conn).list_for_owner(client_id, current_user.id)
    _found(client_row, "client")
    return {"items": [webhook_json(row) for row in rows], "next_cursor": None}


@bp.post("")
@login_required
def create_webhook(client_id):
    body = parse_body(WEBHOOK_CHECKS, required=("url",))
    secret = new_secret()
    try:
        with transaction() as conn:
            webhook = WebhookRepository(conn).create(
                client_id, current_user.id, body["url"], secret, body.get("events", []),
                body.get("active", True))
    except TooManyWebhooks:
        raise ApiError(409, "conflict",
                       f"a client has at most {MAX_WEBHOOKS_PER_CLIENT} webhooks") from None
    return webhook_json(_found(webhook, "client"), secret), 201


@bp.get("/<id:webhook_id>")
@login_required
def get_webhook(client_id, webhook_id):
    with transaction() as conn:
        webhook = WebhookRepository(conn).get_for_owner(webhook_id, client_id, current_user.id)
    return webhook_json(_found(webhook))


@bp.patch("/<id:webhook_id>")
@login_required
def update_webhook(client_id, webhook_id):
    changes = parse_body(WEBHOOK_CHECKS)
    with transaction() as conn:
        webhook = WebhookRepository(conn).update(webhook_id, client_id, current_user.id, changes)
    return webhook_json(_found(webhook))


@bp.delete("/<id:webhook_id>")
@login_required
def delete_webhook(client_id, webhook_id):
    with transaction() as conn:
        deleted = WebhookRepository(conn).delete(webhook_id, client_id, current_user.id)
    if not deleted:
        raise not_found("webhook")
    return "", 204


@bp.get("/<id:webhook_id>/deliveries")
@login_required
def list_deliveries(client_id, webhook_id):
    limit, before = page_params("webhook_deliveries")
    with transaction() as conn:
        webhook = WebhookRepository(conn).get_for_owner(webhook_id, client_id, current_user.id)
        rows = [] if webhook is None else WebhookDeliveryRepository(conn).list_for_webhook(
            webhook_id, client_id, limit + 1, before)
    _found(webhook)
    return page(rows, limit, delivery_json, "webhook_deliveries", "created_at")


@bp.post("/<id:webhook_id>/deliveries/<id:delivery_id>/redeliver")
@login_required
def redeliver(client_id, webhook_id, delivery_id):
    with transaction() as conn:
        webhook = WebhookRepository(conn).get_for_owner(webhook_id, client_id, current_user.id)
        delivery = None if webhook is None else WebhookDeliveryRepository(conn).redeliver(
            delivery_id, webhook_id, client_id)
    return delivery_json(_found(delivery, "delivery")), 202
