"""Business hours: a weekly schedule in the client's IANA time zone, and when it is open.

The schedule is wall-clock time where the client is: `09:00`–`17:00` means nine to five on
the clocks of that zone, in winter and in summer alike. On the night the clocks go forward,
an interval that starts in the skipped hour opens when the clock jumps (and one that lies
wholly inside it does not open that night); on the night they go back, the repeated hour is
lived twice, and so is any interval edge inside it."""

import re
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from .validation import Invalid, nullable, text

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_INTERVALS_PER_DAY = 4
# "24:00" may end a day, so that an evening runs until midnight.
CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])|24:00")
DEFAULT_OFFLINE_MESSAGE = ("We're away right now. Leave a message and we'll get back to you "
                           "as soon as we're back.")
# A week, and a week more for an interval the clocks skipped.
LOOKAHEAD_DAYS = 15


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(value) -> str:
    """An IANA zone name such as `Europe/Berlin`, as written."""
    if not isinstance(value, str) or value not in _zone_names():
        raise Invalid("must be an IANA time zone name such as Europe/Berlin or America/New_York")
    return value


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def check_schedule(value) -> dict[str, list[list[str]]]:
    """`{mon: [["09:00", "17:00"], …], …}`: every day of the week, missing days closed."""
    if not isinstance(value, dict):
        raise Invalid("must be an object with the days mon … sun")
    unknown = [day for day in value if day not in DAYS]
    if unknown:
        raise Invalid(f"{unknown[0]!r} is not a day; use {', '.join(DAYS)}")
    schedule = {}
    for day in DAYS:
        intervals = value.get(day, [])
        if not isinstance(intervals, list):
            raise Invalid(f"{day}: must be a list of [start, end] pairs")
        if len(intervals) > MAX_INTERVALS_PER_DAY:
            raise Invalid(f"{day}: at most {MAX_INTERVALS_PER_DAY} intervals a day")
        for interval in intervals:
            if (not isinstance(interval, list) or len(interval) != 2
                    or not all(isinstance(clock, str) and CLOCK.fullmatch(clock)
                               for clock in interval)):
                raise Invalid(f"{day}: {str(interval)[:60]} must be a pair of times "
                              "[\"HH:MM\", \"HH:MM\"]")
            start, end = interval
            if start == "24:00" or _minutes(start) >= _minutes(end):
                raise Invalid(f"{day}: {start}–{end} must start before it ends")
        ordered = sorted(intervals, key=lambda interval: _minutes(interval[0]))
        for before, after in zip(ordered, ordered[1:]):
            if _minutes(after[0]) < _minutes(before[1]):
                raise Invalid(f"{day}: {before[0]}–{before[1]} and {after[0]}–{after[1]} overlap")
        schedule[day] = [list(interval) for interval in ordered]
    return schedule


BUSINESS_HOURS_CHECKS = {
    "timezone": nullable(check_timezone),
    "schedule": check_schedule,
    "offline_message": text(1, 500),
}
CLOSED_ALL_WEEK = {day: [] for day in DAYS}


def _local(zone: ZoneInfo, day: date, minutes: int, fold: int) -> datetime:
    if minutes == 24 * 60:
        day, minutes = day + timedelta(days=1), 0
    return datetime.combine(day, time(minutes // 60, minutes % 60), zone).replace(fold=fold)


def open_now(timezone: str | None, schedule: dict, now: datetime) -> bool:
    """Is the schedule open at the aware instant `now`? No time zone: always open."""
    if timezone is None:
        return True
    local = now.astimezone(ZoneInfo(timezone))
    minute = local.hour * 60 + local.minute
    return any(_minutes(start) <= minute < _minutes(end)
               for start, end in schedule.get(DAYS[local.weekday()], []))


def _jump_instant(zone: ZoneInfo, wall: datetime) -> datetime:
    """The UTC instant the clocks jump past `wall`, a time that does not exist in `zone`.

    fold=1 reads it with the offset after the jump (an earlier instant), fold=0 with the one
    before (a later one); the jump lies between, found to the second."""
    low = wall.replace(fold=1).astimezone(UTC)
    high = wall.replace(fold=0).astimezone(UTC)
    after = high.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return high


def next_open_at(timezone: str | None, schedule: dict, now: datetime) -> datetime | None:
    """The first instant after `now` when the schedule opens, in UTC; None when it is open
    now, always open (no time zone) or never open."""
    if timezone is None or open_now(timezone, schedule, now):
        return None
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    candidates = []
    for offset in range(LOOKAHEAD_DAYS):
        day = today + timedelta(days=offset)
        for start, _ in schedule.get(DAYS[day.weekday()], []):
            for fold in (0, 1):
                wall = _local(zone, day, _minutes(start), fold)
                instant = wall.astimezone(UTC)
                if instant.astimezone(zone).replace(tzinfo=None) != wall.replace(tzinfo=None):
                    instant = _jump_instant(zone, wall)
                # Only an instant when the schedule really is open (not one whose interval
                # the clocks skipped).
                if instant > now and open_now(timezone, schedule, instant):
                    candidates.append(instant)
        if candidates:
            return min(candidates)
    return None


def status(row, now: datetime) -> dict:
    """`open_now` and `next_open_at` (aware UTC or None) of a row holding `timezone` and
    `schedule`; a client that never set business hours has None in both: always open."""
    timezone, schedule = row["timezone"], row["schedule"] or CLOSED_ALL_WEEK
    return {"open_now": open_now(timezone, schedule, now),
            "next_open_at": next_open_at(timezone, schedule, now)}


def offline_message(row) -> str:
    return row["offline_message"] or DEFAULT_OFFLINE_MESSAGE


def business_hours_json(row) -> dict:
    """The business hours of a row holding `timezone`, `schedule` and `offline_message`, all
    None for a client that never set them."""
    return {"timezone": row["timezone"], "schedule": row["schedule"] or CLOSED_ALL_WEEK,
            "offline_message": offline_message(row)}
