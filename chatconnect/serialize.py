"""Formatting shared by every resource."""

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


def contact_json(row) -> dict:
    return {
        "id": str(row["id"]),
        "client_id": row["client_id"],
        "external_id": row["external_id"],
        "name": row["name"],
        "email": row["email"],
        "verified": row["verified"],
        "created_at": iso_utc(row["created_at"]),
        "last_seen_at": iso_utc(row["last_seen_at"]),
    }
