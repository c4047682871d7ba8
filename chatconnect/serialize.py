"""The JSON form of the resources that more than one blueprint answers with."""

from datetime import UTC, datetime


def iso_utc(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z suffix; naive values are UTC already."""
    if value is None:
        return None
    # Formatting a naive value is several times faster than an aware one, and a list of 100
    # rows calls this for every row.
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


def conversation_json(row) -> dict:
    return {
        "id": str(row["id"]),
        "client_id": row["client_id"],
        "status": row["status"],
        "visitor_name": row["visitor_name"],
        "visitor_email": row["visitor_email"],
        "tags": list(row["tags"]),
        "created_at": iso_utc(row["created_at"]),
        "last_message_at": iso_utc(row["last_message_at"]),
        "visitor_last_seen_message_id": row["visitor_last_seen_message_id"],
        "agent_last_seen_message_id": row["agent_last_seen_message_id"],
    }


def message_json(row) -> dict:
    return {
        "id": row["id"],
        "conversation_id": str(row["conversation_id"]),
        "sender": row["sender"],
        "body": row["body"],
        "created_at": iso_utc(row["created_at"]),
    }


def event_json(row) -> dict:
    return {
        "id": row["id"],
        "type": row["type"],
        "client_id": row["client_id"],
        "conversation_id": None if row["conversation_id"] is None else str(row["conversation_id"]),
        "data": row["data"],
        "created_at": iso_utc(row["created_at"]),
    }


# What a visitor's feed carries: these stored types of their own conversation only, and of the
# conversation only what the widget needs: not the team's tags, nor the name and email (a
# contact's conversations may be read from more than one device).
VISITOR_EVENT_TYPES = ["conversation.created", "conversation.updated", "message.created",
                       "conversation.seen"]
VISITOR_CONVERSATION_FIELDS = ("id", "client_id", "status", "created_at", "last_message_at",
                               "visitor_last_seen_message_id", "agent_last_seen_message_id")


def visitor_event_json(row) -> dict:
    event = event_json(row)
    if row["type"] in ("conversation.created", "conversation.updated"):
        event["data"] = {name: event["data"].get(name) for name in VISITOR_CONVERSATION_FIELDS}
    return event


def article_json(row) -> dict:
    """A knowledge base article as the team sees it."""
    return {
        "id": str(row["id"]),
        "client_id": row["client_id"],
        "title": row["title"],
        "slug": row["slug"],
        "body_markdown": row["body_markdown"],
        "body_html": row["body_html"],
        "status": row["status"],
        "locale": row["locale"],
        "category": row["category"],
        "views": row["views"],
        "created_at": iso_utc(row["created_at"]),
        "updated_at": iso_utc(row["updated_at"]),
    }
