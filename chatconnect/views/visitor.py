"""The visitor side of conversations, called by the widget from customer sites.

Public routes: no cookie and no token, an origin check against the client's allowed domains,
CORS echo, explicit preflights. The visitor proves who they are with the `X-Visitor-Token`
returned when the conversation started; anything wrong with it is a plain 404."""

import secrets

from flask import Blueprint, Response, current_app, request

from .. import chat, ratelimit
from ..chat import MESSAGE_BODY, message_id, message_list, message_query, messages_after
from ..db import transaction
from ..errors import ApiError, not_found
from ..origins import add_cors_headers, check_public_origin
from ..repositories.conversations import ConversationRepository
from ..realtime.streams import (EVENTS_PER_LIST, event_list, event_query, event_stream,
                                wants_stream)
from ..repositories.events import EventRepository
from ..serialize import VISITOR_EVENT_TYPES, conversation_json, message_json, visitor_event_json
from ..tokens import hash_secret
from ..validation import is_public_api_key, nullable, parse_body, text


bp = Blueprint("visitor", __name__, url_prefix="/api/public")
bp.after_request(add_cors_headers)

# JSON Schema's (ECMAScript's) \s, spelled out: Python's differs at the edges.
WHITESPACE = r"\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
EMAIL_PART = rf"[^@{WHITESPACE}\x00]+"
VISITOR_NAME = nullable(text(1, 100))
VISITOR_EMAIL = nullable(text(1, 254, pattern=rf"{EMAIL_PART}@{EMAIL_PART}\.{EMAIL_PART}",
                              pattern_message="must be an email address like name@example.com"))
NO_AUTOMATIC_OPTIONS = {"provide_automatic_options": False}


def _active_client(conn, public_api_key: str):
    if not is_public_api_key(public_api_key):
        raise not_found("widget")
    client = ConversationRepository(conn).active_client_by_public_key(public_api_key)
    if client is None:
        raise not_found("widget")
    check_public_origin(client["allowed_domains"])
    return client


def _visitor_conversation(conn, conversation_id: str):
    """The conversation of the request's visitor token, after the origin check."""
    token = request.headers.get("X-Visitor-Token")
    if not token:
        raise not_found("conversation")
    conversation = ConversationRepository(conn).get_for_visitor(conversation_id,
                                                                hash_secret(token))
    if conversation is None:
        raise not_found("conversation")
    check_public_origin(conversation["allowed_domains"])
    return conversation


@bp.post("/widgets/<public_api_key>/conversations", **NO_AUTOMATIC_OPTIONS)
def create_conversation(public_api_key):
    visitor_token = secrets.token_urlsafe(32)
    with transaction() as conn:
        client = _active_client(conn, public_api_key)
        body = parse_body({"message": MESSAGE_BODY, "visitor_name": VISITOR_NAME,
                           "visitor_email": VISITOR_EMAIL}, required=("message",))
        ratelimit.enforce(conn, f"conversations:ip:{request.remote_addr}",
                          current_app.config["CONVERSATION_LIMIT_PER_IP"])
        conversation, message = chat.start_conversation(
            conn, client["id"], body.get("visitor_name"), body.get("visitor_email"),
            hash_secret(visitor_token), body["message"])
    return {"conversation": conversation_json(conversation), "visitor_token": visitor_token,
            "messages": [message_json(message)]}, 201


@bp.route("/widgets/<public_api_key>/conversations", methods=["OPTIONS"])
def preflight_conversations(public_api_key):
    with transaction() as conn:
        _active_client(conn, public_api_key)
    return "", 204


@bp.get("/conversations/<id:conversation_id>/messages", **NO_AUTOMATIC_OPTIONS)
def list_visitor_messages(conversation_id):
    with transaction() as conn:
        conversation = _visitor_conversation(conn, conversation_id)
        after, wait = message_query()
        rows = messages_after(conn, conversation["id"], after)
    return message_list(conversation["id"], after, wait, rows)


@bp.post("/conversations/<id:conversation_id>/messages", **NO_AUTOMATIC_OPTIONS)
def create_visitor_message(conversation_id):
    with transaction() as conn:
        conversation = _visitor_conversation(conn, conversation_id)
        body = parse_body({"body": MESSAGE_BODY}, required=("body",))
        ratelimit.enforce(conn, f"visitor-messages:ip:{request.remote_addr}",
                          current_app.config["VISITOR_MESSAGE_LIMIT_PER_IP"])
        message = chat.post_visitor_message(conn, conversation["client_id"], conversation["id"],
                                            body["body"])
        if message is None:
            raise ApiError(409, "conflict", "this conversation is closed")
    return message_json(message), 201


@bp.get("/conversations/<id:conversation_id>/events", **NO_AUTOMATIC_OPTIONS)
def list_visitor_events(conversation_id):
    with transaction() as conn:
        conversation = _visitor_conversation(conn, conversation_id)
    after, wait = event_query()
    client_id, conversation_id = conversation["client_id"], conversation["id"]

    def fetch(after):
        with transaction() as conn:
            return EventRepository(conn).list_for_conversation(
                client_id, conversation_id, after, EVENTS_PER_LIST + 1, VISITOR_EVENT_TYPES)

    if wants_stream():
        return event_stream(fetch, after, visitor_event_json,
                            lambda payload: payload["by"] == "agent",
                            conversation_id=conversation_id)
    return event_list(fetch, after, wait, visitor_event_json,
                      conversation_id=conversation_id)


@bp.post("/conversations/<id:conversation_id>/typing", **NO_AUTOMATIC_OPTIONS)
def visitor_typing(conversation_id):
    with transaction() as conn:
        conversation = _visitor_conversation(conn, conversation_id)
        chat.send_typing(conn, conversation["owner_id"], conversation["client_id"],
                         conversation["id"], "visitor")
    return Response(status=204)


@bp.post("/conversations/<id:conversation_id>/seen", **NO_AUTOMATIC_OPTIONS)
def visitor_seen(conversation_id):
    with transaction() as conn:
        conversation = _visitor_conversation(conn, conversation_id)
        body = parse_body({"message_id": message_id}, required=("message_id",))
        chat.mark_seen(conn, conversation["client_id"], conversation["id"], "visitor",
                       body["message_id"])
    return Response(status=204)


# Preflights carry no visitor token: they learn only which origins may ask.
@bp.route("/conversations/<id:conversation_id>/messages", methods=["OPTIONS"])
@bp.route("/conversations/<id:conversation_id>/events", methods=["OPTIONS"],
          endpoint="preflight_events")
@bp.route("/conversations/<id:conversation_id>/typing", methods=["OPTIONS"],
          endpoint="preflight_typing")
@bp.route("/conversations/<id:conversation_id>/seen", methods=["OPTIONS"],
          endpoint="preflight_seen")
def preflight_messages(conversation_id):
    with transaction() as conn:
        allowed_domains = ConversationRepository(conn).allowed_domains_for_preflight(
            conversation_id)
    if allowed_domains is None:
        raise not_found("conversation")
    check_public_origin(allowed_domains)
    return "", 204
