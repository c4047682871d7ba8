"""The event feed as both sides read it: a long-polled list, or a Server-Sent Events stream.

Neither holds a database connection while it waits: each look at the events table is a short
transaction of its own, and between looks the request sleeps on a hub subscription. Events are
read by id, and ids become visible in increasing order (see schema.sql), so a reader that
resumes after the last id it saw gets everything after it, across reconnects of either side."""

import json
import logging
import re
import time

import psycopg
from flask import Response, current_app, request, stream_with_context
from psycopg_pool import PoolTimeout

from ..db import transaction
from ..errors import validation_error
from ..repositories.events import EventRepository
from ..validation import query_integer
from .hub import get_hub, wait_for_rows
from .presence import TOUCH_SECONDS
from .waits import bounded_wait, hold_wait

EVENTS_PER_LIST = 100
MAX_EVENT_ID = 2**63 - 1
MAX_WAIT_SECONDS = 25
STREAM_CHANNELS = ("chatconnect_events", "chatconnect_typing")
RETRY_MILLISECONDS = 2000
EVENT_STREAM = "text/event-stream"

log = logging.getLogger(__name__)


def wants_stream() -> bool:
    return request.accept_mimetypes.best_match(["application/json", EVENT_STREAM]) == EVENT_STREAM


def event_query() -> tuple[int | None, int]:
    """(after, wait) of an event list or stream. `Last-Event-ID` (sent by a reconnecting
    EventSource) wins over `after`; None means no position was given."""
    after = query_integer("after", None, 0, MAX_EVENT_ID)
    wait = query_integer("wait", 0, 0, MAX_WAIT_SECONDS)
    last_event_id = request.headers.get("Last-Event-ID")
    if last_event_id is not None:
        last_event_id = last_event_id.strip()
        if not re.fullmatch(r"[0-9]{1,19}", last_event_id) or int(last_event_id) > MAX_EVENT_ID:
            raise validation_error({"Last-Event-ID": "must be the id of an event"})
        after = int(last_event_id)
    return after, wait


def event_list(fetch, after: int | None, wait: int, serialize, **match) -> dict:
    """The list answer (from the oldest event kept when `after` is None); with no rows yet,
    first long-poll up to `wait` seconds. fetch(after) returns up to EVENTS_PER_LIST + 1 rows
    in a transaction of its own."""
    after = after or 0
    rows = fetch(after)
    if not rows and wait:
        with bounded_wait():
            rows = wait_for_rows(lambda: fetch(after), wait, "chatconnect_events", **match)
    more = len(rows) > EVENTS_PER_LIST
    rows = rows[:EVENTS_PER_LIST]
    return {"items": [serialize(row) for row in rows],
            "next_cursor": str(rows[-1]["id"]) if more else None}


def _frame(event: dict) -> str:
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    if event["id"] is None:
        return f"event: {event['type']}\ndata: {data}\n\n"
    return f"id: {event['id']}\nevent: {event['type']}\ndata: {data}\n\n"


def typing_json(payload: dict) -> dict:
    return {"id": None, "type": "typing", "client_id": payload["client_id"],
            "conversation_id": payload["conversation_id"], "data": {"by": payload["by"]},
            "created_at": None}


def event_stream(fetch, after: int | None, serialize, wants_typing, on_alive=None, **match):
    """A Server-Sent Events response: the stored events after `after` (from the newest one
    when None), then every new one and every typing payload that `wants_typing(payload)`,
    until EVENT_STREAM_SECONDS have passed. `on_alive()` is called when the stream opens, at
    least every TOUCH_SECONDS while it is open, and when it ends."""
    config = current_app.config
    lifetime, keepalive = config["EVENT_STREAM_SECONDS"], config["EVENT_STREAM_KEEPALIVE_SECONDS"]
    release = hold_wait()
    try:
        if after is None:
            with transaction() as conn:
                after = EventRepository(conn).latest_id()
        hub = get_hub()
    except BaseException:
        release()
        raise

    def generate():
        cursor = after
        ends = time.monotonic() + lifetime
        # Subscribed before the first look, so that nothing committed after it is missed.
        with hub.subscribe(STREAM_CHANNELS, **match) as subscription:
            try:
                if on_alive:
                    on_alive()
                last_alive = last_write = time.monotonic()
                # A bare id sets the browser's Last-Event-ID without an event: a stream that
                # ends before its first event still resumes from here.
                yield f"retry: {RETRY_MILLISECONDS}\nid: {cursor}\n\n"
                while True:
                    subscription.event.clear()
                    rows = fetch(cursor)
                    chunks = []
                    for row in rows[:EVENTS_PER_LIST]:
                        chunks.append(_frame(serialize(row)))
                        cursor = row["id"]
                    while subscription.payloads:
                        payload = subscription.payloads.popleft()
                        if payload.get("type") == "typing" and wants_typing(payload):
                            chunks.append(_frame(typing_json(payload)))
                    now = time.monotonic()
                    if chunks:
                        yield "".join(chunks)
                        last_write = now
                    if len(rows) > EVENTS_PER_LIST:
                        continue
                    if on_alive and now - last_alive >= TOUCH_SECONDS:
                        on_alive()
                        last_alive = now
                    if now >= ends:
                        return
                    subscription.event.wait(
                        min(last_write + keepalive, last_alive + TOUCH_SECONDS, ends) - now)
                    if time.monotonic() - last_write >= keepalive:
                        yield ": keep-alive\n\n"
                        last_write = time.monotonic()
            except (PoolTimeout, psycopg.OperationalError) as error:
                # The client reconnects after `retry` and resumes from its last id.
                log.warning("event stream ended: %s", str(error).strip() or type(error).__name__)
            finally:
                if on_alive:
                    on_alive()

    response = Response(stream_with_context(generate()), mimetype=EVENT_STREAM, headers={
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",  # nginx passes each event on at once
    })
    response.call_on_close(release)
    return response
