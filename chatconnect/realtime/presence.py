"""Whether a client's team is there: agents online, and business hours.

An owner is online while one of their sessions or tokens has an event stream or events
long-poll open, or had one within the last ONLINE_SECONDS. Streams and polls record when they
were last open in agent_presence (shared by every worker and host): at the start, at least
every TOUCH_SECONDS while open, and at the end. So a stream of a crashed worker stops counting
a minute later, with nothing to clean up."""

import logging
from datetime import UTC, datetime, timedelta

import psycopg
from flask import current_app
from psycopg_pool import PoolTimeout

from .. import business_hours
from ..db import transaction
from ..repositories.business_hours import BusinessHoursRepository
from ..repositories.agent_presence import AgentPresenceRepository

CLOCK = "clock"  # app.extensions[CLOCK]: a function returning the aware UTC time (tests move it)
ONLINE_SECONDS = 60
TOUCH_SECONDS = 15

log = logging.getLogger(__name__)


def now() -> datetime:
    clock = current_app.extensions.get(CLOCK)
    return clock() if clock else datetime.now(UTC)


def online_since() -> datetime:
    return now() - timedelta(seconds=ONLINE_SECONDS)


def touch(user_id: str) -> None:
    """Record that `user_id` has an event stream or long-poll open now. Best effort: a
    failure only makes the status read "offline" sooner."""
    try:
        with transaction() as conn:
            AgentPresenceRepository(conn).touch(user_id, now())
    except (PoolTimeout, psycopg.OperationalError) as error:
        log.warning("presence not recorded: %s", str(error).strip() or type(error).__name__)


def opening_status(conn, client_id: str, at: datetime) -> tuple[bool, datetime | None]:
    """(open_now, next_open_at) of the client at `at`, from its business hours (always open
    without them)."""
    status = business_hours.status(BusinessHoursRepository(conn).get_for_client(client_id), at)
    return status["open_now"], status["next_open_at"]
