"""The team's event feed: everything of the signed-in owner (optionally one client), as a
long-polled list or a Server-Sent Events stream."""

from flask import Blueprint
from flask_login import current_user, login_required

from ..db import transaction
from ..errors import not_found
from ..realtime import presence
from ..realtime.streams import (EVENTS_PER_LIST, event_list, event_query, event_stream,
                                wants_stream)
from ..repositories.clients import ClientRepository
from ..repositories.events import EventRepository
from ..serialize import event_json
from ..validation import UUID_REGEX, query_value, text

bp = Blueprint("events", __name__, url_prefix="/api")

CLIENT_ID = text(36, 36, pattern=UUID_REGEX, pattern_message="must be the id of a client")


@bp.get("/events")
@login_required
def list_events():
    client_id = query_value("client_id", CLIENT_ID)
    client_id = client_id.lower() if client_id else None
    after, wait = event_query()
    owner_id = current_user.id
    if client_id is not None:
        with transaction() as conn:
            if ClientRepository(conn).get_for_owner(client_id, owner_id) is None:
                raise not_found("client")

    def fetch(after):
        with transaction() as conn:
            return EventRepository(conn).list_for_owner(owner_id, after, EVENTS_PER_LIST + 1,
                                                        client_id)

    if wants_stream():
        def wants_typing(payload):
            return payload["by"] == "visitor" and client_id in (None, payload["client_id"])
        return event_stream(fetch, after, event_json, wants_typing,
                            on_alive=lambda: presence.touch(owner_id), owner_id=owner_id)
    presence.touch(owner_id)
    return event_list(fetch, after, wait, event_json, owner_id=owner_id)
