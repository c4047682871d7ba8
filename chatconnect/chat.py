"""Conversations as both sides change them. Each change is stored together with the event
that announces it, in the caller's transaction, so the event feed never misses one."""

from .db import transaction
from .errors import validation_error
from .realtime.hub import wait_for_rows
from .realtime.waits import bounded_wait
from .repositories.conversations import ConversationRepository
from .repositories.events import EventRepository
from .repositories.messages import MessageRepository
from .repositories.rate_limits import RateLimitRepository
from .serialize import conversation_json, message_json
from .validation import Invalid, query_integer, text

MESSAGE_BODY = text(1, 5000)
MESSAGES_PER_LIST = 100
MAX_WAIT_SECONDS = 25
MAX_MESSAGE_ID = 2**63 - 1
TYPING_INTERVAL_SECONDS = 1
TYPING_KEY_PREFIX = "typing:"


def message_id(value) -> int:
    """A field check: the id of a message (whether of the conversation is checked later).
    JSON has one kind of number: 7.0 is the integer 7, as JSON Schema counts it."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_MESSAGE_ID:
        raise Invalid(f"must be a message id, a whole number from 1 to {MAX_MESSAGE_ID}")
    return value


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
    message = MessageRepository(conn).create(conversation_id, "agent", body)
    # Events last: appending holds the lock that orders event ids until the commit.
    events = EventRepository(conn)
    if conversation["reopened"]:
        events.append(client_id, "conversation.updated", conversation_json(conversation),
                      conversation_id)
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


def mark_seen(conn, client_id, conversation_id, by: str, seen_message_id: int) -> bool:
    """Move the `by` side's seen mark to the message, never backwards; a `conversation.seen`
    event announces a move. Whether it moved; a message of another conversation is a
    validation_error."""
    if not MessageRepository(conn).is_in_conversation(conversation_id, seen_message_id):
        raise validation_error({"message_id": "is not a message of this conversation"})
    if not ConversationRepository(conn).move_seen_mark(conversation_id, by, seen_message_id):
        return False
    EventRepository(conn).append(client_id, "conversation.seen",
                                 {"by": by, "message_id": seen_message_id}, conversation_id)
    return True


def send_typing(conn, owner_id, client_id, conversation_id, by: str) -> bool:
    """Tell the other side that `by` is typing, at most once a second per conversation and
    side, across all workers; more are dropped. Whether it was sent."""
    hits, _ = RateLimitRepository(conn).hit(f"{TYPING_KEY_PREFIX}{conversation_id}:{by}",
                                            TYPING_INTERVAL_SECONDS)
    if hits > 1:
        return False
    EventRepository(conn).announce_typing(owner_id, client_id, conversation_id, by)
    return True


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
        with bounded_wait():
            rows = wait_for_rows(fetch, wait, "chatconnect_events",
                                 conversation_id=conversation_id)
    more = len(rows) > MESSAGES_PER_LIST
    rows = rows[:MESSAGES_PER_LIST]
    return {"items": [message_json(row) for row in rows],
            "next_cursor": str(rows[-1]["id"]) if more else None}
