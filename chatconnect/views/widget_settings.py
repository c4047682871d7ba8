"""The signed-in owner's widget style and business hours of a client."""

from flask import Blueprint
from flask_login import current_user, login_required

from .. import widget_config
from ..business_hours import (BUSINESS_HOURS_CHECKS, CLOSED_ALL_WEEK, DEFAULT_OFFLINE_MESSAGE,
                              business_hours_json)
from ..db import transaction
from ..errors import not_found
from ..repositories.business_hours import BusinessHoursRepository
from ..repositories.widget_styles import WidgetStyleRepository
from ..validation import parse_body
from ..widget_style import STYLE_CHECKS, style_json

bp = Blueprint("widget_settings", __name__, url_prefix="/api/clients")


def _found(row):
    if row is None:
        raise not_found("client")
    return row


@bp.get("/<id:client_id>/widget/style")
@login_required
def get_style(client_id):
    with transaction() as conn:
        style = WidgetStyleRepository(conn).get_for_owner(client_id, current_user.id)
    return style_json(_found(style))


@bp.patch("/<id:client_id>/widget/style")
@login_required
def update_style(client_id):
    changes = parse_body(STYLE_CHECKS)
    with transaction() as conn:
        style = WidgetStyleRepository(conn).update(client_id, current_user.id, changes)
    widget_config.forget_client(client_id)
    return style_json(_found(style))


@bp.get("/<id:client_id>/business-hours")
@login_required
def get_business_hours(client_id):
    with transaction() as conn:
        hours = BusinessHoursRepository(conn).get_for_owner(client_id, current_user.id)
    return business_hours_json(_found(hours))


@bp.put("/<id:client_id>/business-hours")
@login_required
def replace_business_hours(client_id):
    """The whole resource: a field left out takes its default (no time zone: always open;
    every day closed; the default offline message)."""
    body = parse_body(BUSINESS_HOURS_CHECKS)
    with transaction() as conn:
        hours = BusinessHoursRepository(conn).replace(
            client_id, current_user.id, body.get("timezone"),
            body.get("schedule", CLOSED_ALL_WEEK),
            body.get("offline_message", DEFAULT_OFFLINE_MESSAGE))
    widget_config.forget_client(client_id)
    return business_hours_json(_found(hours))
