"""The team side of contacts: search, one contact with its conversations, export and erasure."""

from flask import Blueprint
from flask_login import current_user, login_required

from .. import chat
from ..db import transaction
from ..errors import not_found
from ..pagination import page, page_params
from ..repositories.contacts import ContactRepository
from ..repositories.conversations import ConversationRepository
from ..repositories.messages import MessageRepository
from ..repositories.visitor_tokens import VisitorTokenRepository
from ..repositories.events import EventRepository
from ..serialize import contact_json, conversation_json, iso_utc, message_json
from ..validation import query_value, text

bp = Blueprint("contacts", __name__, url_prefix="/api/clients")

# Three characters at least: the trigram index finds nothing shorter, and every contact of a
# client would be read.
SEARCH = text(3, 200)
CONVERSATIONS_PER_CONTACT = 100
# Every conversation of a contact goes into its export, whatever their number.
ALL = 2**31 - 1


def _contact(conn, client_id, contact_id):
    contact = ContactRepository(conn).get_for_owner(current_user.id, client_id, contact_id)
    if contact is None:
        raise not_found("contact")
    return contact


@bp.get("/<id:client_id>/contacts")
@login_required
def list_contacts(client_id):
    search = query_value("q", SEARCH)
    limit, after = page_params("contacts")
    with transaction() as conn:
        rows = ContactRepository(conn).list_for_owner(current_user.id, client_id, limit + 1,
                                                      search=search, after=after)
    if rows is None:
        raise not_found("client")
    return page(rows, limit, contact_json, "contacts", "last_seen_at")


@bp.get("/<id:client_id>/contacts/<id:contact_id>")
@login_required
def get_contact(client_id, contact_id):
    with transaction() as conn:
        contact = _contact(conn, client_id, contact_id)
        conversations = ConversationRepository(conn).list_for_contact(
            contact["client_id"], contact["id"], CONVERSATIONS_PER_CONTACT)
    return {**contact_json(contact),
            "conversations": [conversation_json(row) for row in conversations]}


@bp.get("/<id:client_id>/contacts/<id:contact_id>/export")
@login_required
def export_contact(client_id, contact_id):
    """Everything stored about the contact (a data subject access request), as a download."""
    with transaction() as conn:
        contact = _contact(conn, client_id, contact_id)
        conversations = ConversationRepository(conn).list_for_contact(
            contact["client_id"], contact["id"], ALL)
        messages = MessageRepository(conn).list_for_conversations(
            [row["id"] for row in conversations])
        tokens = VisitorTokenRepository(conn).list_for_contact(contact["client_id"],
                                                               contact["id"])
    by_conversation = {}
    for message in messages:
        by_conversation.setdefault(message["conversation_id"], []).append(message_json(message))
    document = {
        "contact": contact_json(contact),
        "conversations": [{**conversation_json(row),
                           "messages": by_conversation.get(row["id"], [])}
                          for row in conversations],
        "visitor_tokens": [{"created_at": iso_utc(row["created_at"])} for row in tokens],
    }
    return document, 200, {
        "Content-Disposition": f'attachment; filename="contact-{contact["id"]}.json"'}


@bp.delete("/<id:client_id>/contacts/<id:contact_id>")
@login_required
def erase_contact(client_id, contact_id):
    """Erase the contact with its conversations, messages, events, visitor tokens and typing
    counters, at once; what stays is an event saying that it was erased, with its id only."""
    with transaction() as conn:
        conversation_ids = ConversationRepository(conn).ids_for_contact(client_id, contact_id)
        if not ContactRepository(conn).delete_for_owner(current_user.id, client_id,
                                                        contact_id):
            raise not_found("contact")
        chat.forget_typing(conn, conversation_ids)
        events = EventRepository(conn)
        events.delete_mentioning_contact(client_id, contact_id)
        events.append(client_id, "contact.erased", {"contact_id": contact_id})
    return "", 204
