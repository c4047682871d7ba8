"""The team side of conversations: list, read, close or tag, reply, and long-poll for messages."""


from flask import Blueprint
from flask_login import current_user, login_required

from ..db import transaction
from ..errors import not_found
from ..listener import wait_for_rows
from ..pagination import page, page_params
from ..repositories.conversations import ConversationRepository
from ..repositories.messages import MessageRepository
from ..serialize import iso_utc
from ..validation import list_of, one_of, parse_body, query_integer, query_value, text

bp = Blueprint("conversations", __name__, url_prefix="/api/clients")

MESSAGE_BODY = text(1, 5000)
STATUS = one_of("open", "closed")
TAG = text(1, 40)
MAX_TAGS = 20
MESSAGES_PER_LIST = 100
MAX_WAIT_SECONDS = 25
MAX_MESSAGE_ID = 2**63 - 1


def conversation_json(row) -> dict:
    return {
        "id": str(row["id"]),
        "client_id": row["client_id"],
        "contact_id": str(row["contact_id"]),
        "status": row["status"],
        "visitor_name": row["visitor_name"],
        "visitor_email": row["visitor_email"],
        "tags": list(row["tags"]),
        "created_at": iso_utc(row["created_at"]),
        "last_message_at": iso_utc(row["last_message_at"]),
    }


def message_json(row) -> dict:
    return {
        "id": row["id"],
        "conversation_id": str(row["conversation_id"]),
        "sender": row["sender"],
        "body": row["body"],
        "created_at": iso_utc(row["created_at"]),
    }


def message_query() -> tuple[int, int]:
    """(after, wait) from the query string of a message list."""
    after = query_integer("after", 0, 0, MAX_MESSAGE_ID)
    wait = query_integer("wait", 0, 0, MAX_WAIT_SECONDS)
    return after, wait


def messages_after(conn, conversation_id, after: int) -> list:
    # One more than a list holds tells whether there is more.
    return MessageRepository(conn).list_after(conversation_id, after, MESSAGES_PER_LIST + 1)


def message_list(conversation_id, after: int, wait: int, rows: list) -> dict:
    """The message list answer; with no rows yet, first long-poll up to `wait` seconds."""
    if not rows and wait:
        def fetch():
            with transaction() as conn:
                return messages_after(conn, conversation_id, after)
        rows = wait_for_rows(str(conversation_id), wait, fetch)
    more = len(rows) > MESSAGES_PER_LIST
    rows = rows[:MESSAGES_PER_LIST]
    return {"items": [message_json(row) for row in rows],
            "next_cursor": str(rows[-1]["id"]) if more else None}


@bp.get("/<id:client_id>/conversations")
@login_required
def list_conversations(client_id):
    status = query_value("status", STATUS)
    tag = query_value("tag", TAG)
    limit, after = page_params("conversations")
    with transaction() as conn:
        rows = ConversationRepository(conn).list_for_owner(
            current_user.id, client_id, limit + 1, status=status, tag=tag, after=after)
    if rows is None:
        raise not_found("client")
    return page(rows, limit, conversation_json, "conversations", "last_message_at")


@bp.get("/<id:client_id>/conversations/<id:conversation_id>")
@login_required
def get_conversation(client_id, conversation_id):
    with transaction() as conn:
        conversation = ConversationRepository(conn).get_for_owner(
            current_user.id, client_id, conversation_id)
        if conversation is None:
            raise not_found("conversation")
        messages = MessageRepository(conn).list_latest(conversation["id"], MESSAGES_PER_LIST)
    return {**conversation_json(conversation), "messages": [message_json(m) for m in messages]}


@bp.patch("/<id:client_id>/conversations/<id:conversation_id>")
@login_required
def update_conversation(client_id, conversation_id):
    changes = parse_body({"status": STATUS, "tags": list_of(TAG, MAX_TAGS)})
    with transaction() as conn:
        conversations = ConversationRepository(conn)
        if changes:
            conversation = conversations.update_for_owner(
                current_user.id, client_id, conversation_id, **changes)
        else:
            conversation = conversations.get_for_owner(current_user.id, client_id, conversation_id)
    if conversation is None:
        raise not_found("conversation")
    return conversation_json(conversation)


@bp.post("/<id:client_id>/conversations/<id:conversation_id>/messages")
@login_required
def create_agent_message(client_id, conversation_id):
    body = parse_body({"body": MESSAGE_BODY}, required=("body",))
    with transaction() as conn:
        if not ConversationRepository(conn).record_agent_message(
                current_user.id, client_id, conversation_id):
            raise not_found("conversation")
        message = MessageRepository(conn).create(conversation_id, "agent", body["body"])
    return message_json(message), 201


@bp.get("/<id:client_id>/conversations/<id:conversation_id>/messages")
@login_required
def list_agent_messages(client_id, conversation_id):
    after, wait = message_query()
    with transaction() as conn:
        conversation = ConversationRepository(conn).get_for_owner(
            current_user.id, client_id, conversation_id)
        if conversation is None:
            raise not_found("conversation")
        rows = messages_after(conn, conversation["id"], after)
    return message_list(conversation["id"], after, wait, rows)
