"""Business hours: the schedule's rules, and open_now / next_open_at across daylight saving."""

from datetime import UTC, datetime

import pytest

from chatconnect.business_hours import (DAYS, check_schedule, check_timezone, next_open_at,
                                        open_now)
from chatconnect.validation import Invalid

WEEKDAYS_9_TO_5 = {**{day: [["09:00", "17:00"]] for day in DAYS[:5]}, "sat": [], "sun": []}
BERLIN = "Europe/Berlin"  # CET (+01:00) in winter, CEST (+02:00) in summer
NEW_YORK = "America/New_York"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize("now, expected", [
    # Winter: 09:00 in Berlin is 08:00 UTC.
    (utc(2026, 1, 12, 7, 59), False),
    (utc(2026, 1, 12, 8, 0), True),
    (utc(2026, 1, 12, 15, 59), True),
    (utc(2026, 1, 12, 16, 0), False),
    # Summer: 09:00 in Berlin is 07:00 UTC.
    (utc(2026, 7, 13, 6, 59), False),
    (utc(2026, 7, 13, 7, 0), True),
    (utc(2026, 7, 13, 14, 59), True),
    (utc(2026, 7, 13, 15, 0), False),
    # Saturday.
    (utc(2026, 7, 11, 10, 0), False),
])
def test_open_now_follows_the_local_clock_in_winter_and_summer(now, expected):
    assert open_now(BERLIN, WEEKDAYS_9_TO_5, now) is expected


def test_no_time_zone_is_always_open():
    assert open_now(None, {day: [] for day in DAYS}, utc(2026, 1, 1, 3, 0)) is True
    assert next_open_at(None, {day: [] for day in DAYS}, utc(2026, 1, 1, 3, 0)) is None


def test_next_open_at_across_the_spring_change():
    # Clocks go forward on Sunday 29 March 2026 in Berlin: Friday 17:00 CET (16:00 UTC) closes,
    # Monday 09:00 CEST is 07:00 UTC, not 08:00.
    assert next_open_at(BERLIN, WEEKDAYS_9_TO_5, utc(2026, 3, 27, 16, 0)) == utc(2026, 3, 30, 7, 0)
    assert open_now(BERLIN, WEEKDAYS_9_TO_5, utc(2026, 3, 30, 7, 0)) is True
    assert open_now(BERLIN, WEEKDAYS_9_TO_5, utc(2026, 3, 30, 6, 59)) is False


def test_next_open_at_across_the_autumn_change():
    # Clocks go back on Sunday 25 October 2026 in Berlin: Monday 09:00 CET is 08:00 UTC.
    assert next_open_at(BERLIN, WEEKDAYS_9_TO_5, utc(2026, 10, 23, 15, 0)) == utc(2026, 10, 26, 8, 0)
    # In New York the change is a week later (1 November 2026): 09:00 EST is 14:00 UTC.
    assert next_open_at(NEW_YORK, WEEKDAYS_9_TO_5, utc(2026, 10, 31, 12, 0)) \
        == utc(2026, 11, 2, 14, 0)


def test_next_open_at_is_none_while_open_or_when_never_open():
    assert next_open_at(BERLIN, WEEKDAYS_9_TO_5, utc(2026, 1, 12, 9, 0)) is None
    assert next_open_at(BERLIN, {day: [] for day in DAYS}, utc(2026, 1, 12, 9, 0)) is None


def test_later_the_same_day_and_after_midnight():
    split = {**{day: [] for day in DAYS}, "mon": [["08:00", "12:00"], ["22:00", "24:00"]],
             "tue": [["00:00", "02:00"]]}
    # Monday 13:00 CET: the evening interval, 22:00 CET = 21:00 UTC.
    assert next_open_at(BERLIN, split, utc(2026, 1, 12, 12, 0)) == utc(2026, 1, 12, 21, 0)
    # Open through midnight, into Tuesday.
    assert open_now(BERLIN, split, utc(2026, 1, 12, 22, 59)) is True
    assert open_now(BERLIN, split, utc(2026, 1, 12, 23, 30)) is True
    assert open_now(BERLIN, split, utc(2026, 1, 13, 1, 0)) is False


def test_an_opening_in_the_skipped_hour_opens_when_the_clocks_jump():
    # 29 March 2026 in Berlin: 02:00 CET jumps to 03:00 CEST at 01:00 UTC.
    night = {**{day: [] for day in DAYS}, "sun": [["02:30", "05:00"]]}
    assert next_open_at(BERLIN, night, utc(2026, 3, 28, 12, 0)) == utc(2026, 3, 29, 1, 0)
    # An interval wholly inside the skipped hour does not open that night: the next Sunday.
    lost = {**{day: [] for day in DAYS}, "sun": [["02:10", "02:40"]]}
    assert next_open_at(BERLIN, lost, utc(2026, 3, 28, 12, 0)) == utc(2026, 4, 5, 0, 10)


def test_the_repeated_hour_is_lived_twice():
    # 25 October 2026 in Berlin: 03:00 CEST goes back to 02:00 CET at 01:00 UTC, so 02:30
    # happens at 00:30 UTC and again at 01:30 UTC.
    night = {**{day: [] for day in DAYS}, "sun": [["02:30", "02:45"]]}
    assert next_open_at(BERLIN, night, utc(2026, 10, 24, 12, 0)) == utc(2026, 10, 25, 0, 30)
    assert next_open_at(BERLIN, night, utc(2026, 10, 25, 0, 50)) == utc(2026, 10, 25, 1, 30)


def test_schedule_is_completed_and_sorted():
    assert check_schedule({"mon": [["13:00", "17:00"], ["09:00", "12:00"]]}) == {
        "mon": [["09:00", "12:00"], ["13:00", "17:00"]], "tue": [], "wed": [], "thu": [],
        "fri": [], "sat": [], "sun": []}
    # Touching intervals do not overlap.
    check_schedule({"fri": [["09:00", "12:00"], ["12:00", "24:00"]]})


@pytest.mark.parametrize("schedule, message", [
    ([], "must be an object"),
    ({"monday": []}, "'monday' is not a day"),
    ({"mon": "09:00-17:00"}, "mon: must be a list"),
    ({"mon": [["09:00"]]}, "must be a pair"),
    ({"mon": [["9:00", "17:00"]]}, "must be a pair"),
    ({"mon": [["09:00", "24:30"]]}, "must be a pair"),
    ({"mon": [[9, 17]]}, "must be a pair"),
    ({"mon": [["17:00", "09:00"]]}, "must start before it ends"),
    ({"mon": [["09:00", "09:00"]]}, "must start before it ends"),
    ({"mon": [["24:00", "24:00"]]}, "must start before it ends"),
    ({"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}, "overlap"),
    ({"tue": [["00:00", "01:00"], ["02:00", "03:00"], ["04:00", "05:00"], ["06:00", "07:00"],
              ["08:00", "09:00"]]}, "tue: at most 4 intervals"),
])
def test_bad_schedules_are_refused_with_a_reason(schedule, message):
    with pytest.raises(Invalid, match=message):
        check_schedule(schedule)


@pytest.mark.parametrize("name", ["Mars/Olympus", "europe/berlin", "", 5, None, "../etc/passwd"])
def test_unknown_time_zones_are_refused(name):
    with pytest.raises(Invalid):
        check_timezone(name)
