"""The visitor side of conversations, called by the widget from customer sites.

Public routes: no cookie and no token, an origin check against the client's allowed domains,
CORS echo, explicit preflights. The visitor proves who they are with the `X-Visitor-Token`
returned when their first conversation started (or by identify): the token is the contact's,
so it opens every conversation of the contact. Anything wrong with it is a plain 404."""

import logging
import secrets

from flask import Blueprint, Response, current_app, request

from .. import chat, identity, ratelimit
from ..chat import MESSAGE_BODY, message_id, message_list, message_query, messages_after
from ..db import transaction
from ..errors import ApiError, not_found
from ..origins import add_cors_headers, check_public_origin
from ..pagination import page, page_params
from ..realtime.streams import (EVENTS_PER_LIST, event_list, event_query, event_stream,
                                wants_stream)
from ..repositories.contacts import ContactRepository
from ..repositories.conversations import ConversationRepository
from ..repositories.events import EventRepository
from ..repositories.identity_signatures import IdentitySignatureRepository
from ..repositories.visitor_tokens import VisitorTokenRepository
from ..serialize import (VISITOR_EVENT_TYPES, contact_json, conversation_json, message_json,
                         visitor_event_json)
from ..tokens import hash_secret
from ..validation import integer, is_public_api_key, known_query, nullable, parse_body, text

log = logging.getLogger(__name__)

bp = Blueprint("visitor", __name__, url_prefix="/api/public")
bp.after_request(add_cors_headers)

# JSON Schema's (ECMAScript's) \s, spelled out: Python's differs at the edges.
WHITESPACE = r"\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
EMAIL_PART = rf"[^@{WHITESPACE}\x00]+"
VISITOR_NAME = nullable(text(1, 100))
VISITOR_EMAIL = nullable(text(1, 254, pattern=rf"{EMAIL_PART}@{EMAIL_PART}\.{EMAIL_PART}",
                              pattern_message="must be an email address like name@example.com"))
NO_AUTOMATIC_OPTIONS = {"provide_automatic_options": False}
IDENTIFY_CHECKS = {
    "user_id": text(1, 200),
    # Unix seconds; far outside the window is as refused as just outside it (401).
    "timestamp": integer(0, 2**53),
    "signature": text(64, 64, pattern=r"[0-9a-f]{64}",
                      pattern_message="must be 64 lowercase hexadecimal digits"),
    "name": VISITOR_NAME,
    "email": VISITOR_EMAIL,
}
# Wrong, expired and replayed signatures get the same answer.
IDENTIFY_REFUSED = "the identity could not be verified"
# Expired replay-store rows each identify deletes, so that the store stays at about ten
# minutes of identifies without a job of its own.
PURGE_PER_IDENTIFY = 20


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


def _token_contact(conn, client, lock=False):
    """The contact of the request's X-Visitor-Token at this client, or None."""
    token = request.headers.get("X-Visitor-Token")
    if not token:
        return None
    return ContactRepository(conn).get_by_visitor_token(client["id"], hash_secret(token), lock)


def _new_visitor_token(conn, client, contact) -> str:
    token = secrets.token_urlsafe(32)
    VisitorTokenRepository(conn).create(client["id"], contact["id"], hash_secret(token))
    return token


@bp.post("/widgets/<public_api_key>/conversations", **NO_AUTOMATIC_OPTIONS)
def create_conversation(public_api_key):
    """A new conversation of the token's contact; without a token (or with one that opens
    nothing any more), of a new anonymous contact with a new token."""
    with transaction() as conn:
        client = _active_client(conn, public_api_key)
        body = parse_body({"message": MESSAGE_BODY, "visitor_name": VISITOR_NAME,
                           "visitor_email": VISITOR_EMAIL}, required=("message",))
        ratelimit.enforce(conn, f"conversations:ip:{request.remote_addr}",
                          current_app.config["CONVERSATION_LIMIT_PER_IP"])
        contacts = ContactRepository(conn)
        contact = _token_contact(conn, client)
        if client["identity_required"] and (contact is None or not contact["verified"]):
            raise ApiError(401, "unauthorized",
                           "this site starts conversations with signed-in visitors only")
        if contact is None:
            contact = contacts.create_anonymous(client["id"], body.get("visitor_name"),
                                                body.get("visitor_email"))
            visitor_token = _new_visitor_token(conn, client, contact)
        else:
            contacts.touch(client["id"], contact["id"])
            visitor_token = request.headers["X-Visitor-Token"]
        conversation, message = chat.start_conversation(
            conn, client["id"], contact["id"], body.get("visitor_name"),
            body.get("visitor_email"), body["message"])
    return {"conversation": conversation_json(conversation), "visitor_token": visitor_token,
            "messages": [message_json(message)]}, 201


@bp.get("/widgets/<public_api_key>/conversations", **NO_AUTOMATIC_OPTIONS)
def list_contact_conversations(public_api_key):
    """The conversations of the token's contact, most recent activity first."""
    with transaction() as conn:
        client = _active_client(conn, public_api_key)
        known_query("limit", "cursor")
        contact = _token_contact(conn, client)
        if contact is None:
            raise not_found("contact")
        limit, after = page_params("contact-conversations")
        rows = ConversationRepository(conn).list_for_contact(client["id"], contact["id"],
                                                             limit + 1, after)
    return page(rows, limit, conversation_json, "contact-conversations", "last_message_at")


def _signature_accepted(conn, client, body) -> bool:
    """Right secret, within the window, and never accepted before (then recorded)."""
    if client["identity_secret_encrypted"] is None:
        return False
    try:
        secret = identity.secret_box().open(client["id"], client["identity_secret_encrypted"])
    except identity.UndecryptableSecret as error:
        log.error("%s", error)
        return False
    if not identity.signature_is_valid(secret, body["user_id"], body["timestamp"],
                                       body["signature"], identity.now()):
        return False
    signatures = IdentitySignatureRepository(conn)
    signatures.purge_expired(PURGE_PER_IDENTIFY)
    return signatures.accept_once(client["id"], body["signature"],
                                  body["timestamp"] + identity.REPLAY_KEEP_SECONDS)


@bp.post("/widgets/<public_api_key>/identify", **NO_AUTOMATIC_OPTIONS)
def identify(public_api_key):
    """The verified contact of `user_id`, with a new visitor token for this browser.

    The token sent with the request is replaced: when it was an anonymous contact's, that
    contact's conversations move to the verified contact and the anonymous one is gone."""
    with transaction() as conn:
        client = _active_client(conn, public_api_key)
        body = parse_body(IDENTIFY_CHECKS, required=("user_id", "timestamp", "signature"))
        ratelimit.enforce(conn, f"identify:ip:{request.remote_addr}",
                          current_app.config["IDENTIFY_LIMIT_PER_IP"])
        # A refusal still commits: the attempt counts against the limit.
        accepted = _signature_accepted(conn, client, body)
        if accepted:
            contact, visitor_token = _identify(conn, client, body)
    if not accepted:
        raise ApiError(401, "unauthorized", IDENTIFY_REFUSED)
    return {"contact": contact_json(contact), "visitor_token": visitor_token}


def _identify(conn, client, body):
    contacts = ContactRepository(conn)
    previous = _token_contact(conn, client, lock=True)
    contact = contacts.upsert_verified(client["id"], body["user_id"], body.get("name"),
                                       body.get("email"))
    if previous is not None and previous["id"] != contact["id"] and not previous["verified"]:
        chat.move_conversations(conn, client["id"], previous["id"], contact["id"])
        contact = contacts.adopt_details(client["id"], contact["id"], previous["id"])
        contacts.delete(client["id"], previous["id"])  # its token goes with it
    elif previous is not None:
        VisitorTokenRepository(conn).delete(client["id"],
                                            hash_secret(request.headers["X-Visitor-Token"]))
    return contact, _new_visitor_token(conn, client, contact)


@bp.route("/widgets/<public_api_key>/conversations", methods=["OPTIONS"])
@bp.route("/widgets/<public_api_key>/identify", methods=["OPTIONS"])
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
        ContactRepository(conn).touch(conversation["client_id"], conversation["contact_id"])
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
