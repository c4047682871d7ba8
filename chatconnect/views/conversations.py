"""The team side of conversations: list, read, close or tag, reply, long-poll for messages,
say that the team is typing and mark messages seen."""


from flask import Blueprint, Response
from flask_login import current_user, login_required

from .. import chat
from ..chat import (MESSAGE_BODY, MESSAGES_PER_LIST, message_id, message_list, message_query,
                    messages_after)
from ..db import transaction
from ..errors import not_found
from ..pagination import page, page_params
from ..repositories.conversations import ConversationRepository
from ..repositories.messages import MessageRepository
from ..serialize import conversation_json, message_json
from ..validation import list_of, one_of, parse_body, query_value, text

bp = Blueprint("conversations", __name__, url_prefix="/api/clients")

STATUS = one_of("open", "closed")
TAG = text(1, 40)
MAX_TAGS = 20


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
        conversation = chat.update_conversation(conn, current_user.id, client_id,
                                                conversation_id, changes)
    if conversation is None:
        raise not_found("conversation")
    return conversation_json(conversation)


@bp.post("/<id:client_id>/conversations/<id:conversation_id>/messages")
@login_required
def create_agent_message(client_id, conversation_id):
    body = parse_body({"body": MESSAGE_BODY}, required=("body",))
    with transaction() as conn:
        message = chat.post_agent_message(conn, current_user.id, client_id, conversation_id,
                                          body["body"])
    if message is None:
        raise not_found("conversation")
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


def _owned_conversation(conn, client_id, conversation_id):
    conversation = ConversationRepository(conn).get_for_owner(current_user.id, client_id,
                                                              conversation_id)
    if conversation is None:
        raise not_found("conversation")
    return conversation


@bp.post("/<id:client_id>/conversations/<id:conversation_id>/typing")
@login_required
def agent_typing(client_id, conversation_id):
    with transaction() as conn:
        conversation = _owned_conversation(conn, client_id, conversation_id)
        chat.send_typing(conn, current_user.id, conversation["client_id"], conversation["id"],
                         "agent")
    return Response(status=204)


@bp.post("/<id:client_id>/conversations/<id:conversation_id>/seen")
@login_required
def agent_seen(client_id, conversation_id):
    body = parse_body({"message_id": message_id}, required=("message_id",))
    with transaction() as conn:
        conversation = _owned_conversation(conn, client_id, conversation_id)
        chat.mark_seen(conn, conversation["client_id"], conversation["id"], "agent",
                       body["message_id"])
    return Response(status=204)
