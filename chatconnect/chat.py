"""Conversations as both sides change them. Each change is stored together with the event
that announces it, in the caller's transaction, so the event feed never misses one."""

from .db import transaction
from .realtime.hub import wait_for_rows
from .repositories.conversations import ConversationRepository
from .repositories.events import EventRepository
from .repositories.messages import MessageRepository
from .serialize import conversation_json, message_json
from .validation import query_integer, text

MESSAGE_BODY = text(1, 5000)
MESSAGES_PER_LIST = 100
MAX_WAIT_SECONDS = 25
MAX_MESSAGE_ID = 2**63 - 1


def start_conversation(conn, client_id, visitor_name, visitor_email, visitor_token_hash,
                       first_message: str):
    """(the new conversation, its first message), announced as two events."""
    conversation = ConversationRepository(conn).create(
        client_id, visitor_name, visitor_email, visitor_token_hash)
    message = MessageRepository(conn).create(conversation["id"], "visitor", first_message)
    events = EventRepository(conn)
    events.append(client_id, "conversation.created", conversation_json(conversation),
                  conversation["id"])
    events.append(client_id, "message.created", message_json(message), conversation["id"])
    return conversation, message


def post_visitor_message(conn, client_id, conversation_id, body: str):
    """The visitor's new message, or None when the conversation is closed."""
    if not ConversationRepository(conn).record_visitor_message(conversation_id):
        return None
    message = MessageRepository(conn).create(conversation_id, "visitor", body)
    EventRepository(conn).append(client_id, "message.created", message_json(message),
                                 conversation_id)
    return message


def post_agent_message(conn, owner_id, client_id, conversation_id, body: str):
    """The team's new message, reopening a closed conversation; None when the conversation
    is not the owner's."""
    conversation = ConversationRepository(conn).record_agent_message(
        owner_id, client_id, conversation_id)
    if conversation is None:
        return None
    events = EventRepository(conn)
    if conversation["reopened"]:
        events.append(client_id, "conversation.updated", conversation_json(conversation),
                      conversation_id)
    message = MessageRepository(conn).create(conversation_id, "agent", body)
    events.append(client_id, "message.created", message_json(message), conversation_id)
    return message


def update_conversation(conn, owner_id, client_id, conversation_id, changes: dict):
    """Apply `changes` (status, tags); the conversation, or None when not the owner's."""
    conversations = ConversationRepository(conn)
    if not changes:
        return conversations.get_for_owner(owner_id, client_id, conversation_id)
    conversation = conversations.update_for_owner(owner_id, client_id, conversation_id,
                                                  **changes)
    if conversation is not None and conversation["changed"]:
        EventRepository(conn).append(client_id, "conversation.updated",
                                     conversation_json(conversation), conversation_id)
    return conversation


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
        rows = wait_for_rows(fetch, wait, "chatconnect_events", conversation_id=conversation_id)
    more = len(rows) > MESSAGES_PER_LIST
    rows = rows[:MESSAGES_PER_LIST]
    return {"items": [message_json(row) for row in rows],
            "next_cursor": str(rows[-1]["id"]) if more else None}
