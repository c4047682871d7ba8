"""The signed-in owner's clients (tenants) and their widget settings."""

from flask import Blueprint, Response
from flask_login import current_user, login_required

from .. import identity
from .. import widget_config
from ..db import single_statement, transaction
from ..errors import not_found
from ..origins import normalize_domain_pattern
from ..pagination import cursor_after, page_json, page_params
from ..repositories.clients import ClientRepository
from ..repositories.widget_styles import WidgetStyleRepository
from ..repositories.widgets import WidgetRepository
from ..serialize import iso_utc
from ..validation import boolean, integer, list_of, nullable, one_of, parse_body, text

bp = Blueprint("clients", __name__, url_prefix="/api/clients")

CLIENT_CHECKS = {
    "name": text(1, 100),
    "allowed_domains": list_of(normalize_domain_pattern, 100),
    "status": one_of("active", "suspended"),
    "identity_required": boolean,
    "retention_days": nullable(integer(1, 3650)),
}
WIDGET_CHECKS = {
    "primary_color": text(pattern=r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})",
                          pattern_message="must be a colour written #rgb or #rrggbb"),
    "position": one_of("bottom-right", "bottom-left"),
    "welcome_message": text(1, 500),
    "widget_name": text(1, 50),
}


def client_json(row) -> dict:
    return {
        "id": row["id"],
        "name": row["name"],
        "public_api_key": row["public_api_key"],
        "allowed_domains": row["allowed_domains"],
        "status": row["status"],
        "created_at": iso_utc(row["created_at"]),
        "identity_required": row["identity_required"],
        "retention_days": row["retention_days"],
    }


def widget_json(row) -> dict:
    return {
        "client_id": row["client_id"],
        "primary_color": row["primary_color"],
        "position": row["position"],
        "welcome_message": row["welcome_message"],
        "widget_name": row["widget_name"],
        "updated_at": iso_utc(row["updated_at"]),
    }


def _found(row):
    if row is None:
        raise not_found("client")
    return row


@bp.get("")
@login_required
def list_clients():
    limit, after = page_params("clients")
    with single_statement() as conn:
        row = ClientRepository(conn).page_json_for_owner(current_user.id, limit, after)
    next_cursor = (cursor_after("clients", row["last_created_at"], row["last_id"])
                   if row["more"] else None)
    return Response(page_json(row["items"], next_cursor), mimetype="application/json")


@bp.post("")
@login_required
def create_client():
    body = parse_body({"name": CLIENT_CHECKS["name"],
                       "allowed_domains": CLIENT_CHECKS["allowed_domains"]}, required=("name",))
    with transaction() as conn:
        client = ClientRepository(conn).create(current_user.id, body["name"],
                                               body.get("allowed_domains", []))
        WidgetRepository(conn).create(client["id"])
        WidgetStyleRepository(conn).create(client["id"])
    return client_json(client), 201


@bp.get("/<id:client_id>")
@login_required
def get_client(client_id):
    with transaction() as conn:
        client = ClientRepository(conn).get_for_owner(client_id, current_user.id)
    return client_json(_found(client))


@bp.patch("/<id:client_id>")
@login_required
def update_client(client_id):
    changes = parse_body(CLIENT_CHECKS)
    with transaction() as conn:
        client = ClientRepository(conn).update(client_id, current_user.id, changes)
    widget_config.forget_client(client_id)
    return client_json(_found(client))


@bp.delete("/<id:client_id>")
@login_required
def delete_client(client_id):
    with transaction() as conn:
        deleted = ClientRepository(conn).delete(client_id, current_user.id)
    widget_config.forget_client(client_id)
    if not deleted:
        raise not_found("client")
    return "", 204


@bp.post("/<id:client_id>/rotate-key")
@login_required
def rotate_client_key(client_id):
    with transaction() as conn:
        client = ClientRepository(conn).rotate_key(client_id, current_user.id)
    widget_config.forget_client(client_id)
    return client_json(_found(client))


@bp.get("/<id:client_id>/widget")
@login_required
def get_widget(client_id):
    with transaction() as conn:
        widget = WidgetRepository(conn).get_for_owner(client_id, current_user.id)
    return widget_json(_found(widget))


@bp.patch("/<id:client_id>/widget")
@login_required
def update_widget(client_id):
    changes = parse_body(WIDGET_CHECKS)
    with transaction() as conn:
        widget = WidgetRepository(conn).update(client_id, current_user.id, changes)
    widget_config.forget_client(client_id)
    return widget_json(_found(widget))


@bp.post("/<id:client_id>/identity-secret")
@login_required
def rotate_identity_secret(client_id):
    """A new identity secret, shown only in this answer; the previous one stops working."""
    secret = identity.new_identity_secret()
    sealed = identity.secret_box().seal(client_id, secret)
    with transaction() as conn:
        found = ClientRepository(conn).set_identity_secret(client_id, current_user.id, sealed)
    if not found:
        raise not_found("client")
    return {"identity_secret": secret}
