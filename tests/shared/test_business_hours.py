"""Business-hours arithmetic: weekends, boundaries, DST in Berlin and New York, inverse property."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.business_hours import (
    END_OF_DAY,
    Schedule,
    WorkingHours,
    add_business_seconds,
    business_seconds_between,
    is_working_time,
    next_working_time,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
OFFICE: WorkingHours = {d: [(time(9), time(17, 30))] for d in range(5)}
ALWAYS: WorkingHours = {d: [(time(0), END_OF_DAY)] for d in range(7)}
SPLIT: WorkingHours = {
    0: [(time(8), time(12)), (time(13), time(17))],
    2: [(time(10), time(11))],
    5: [(time(22), END_OF_DAY)],
}
DAY = 30600  # 8.5 h of office time


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[misc,arg-type]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc,arg-type]


# --- plain office hours (2026-11-16 is a Monday) --------------------------------------------------


def test_inside_window_adds_directly() -> None:
    due = add_business_seconds(local(BERLIN, 2026, 11, 16, 10, 0), 300, OFFICE, BERLIN)
    assert due == local(BERLIN, 2026, 11, 16, 10, 5)
    assert due.tzinfo is UTC


def test_overnight_continues_next_morning() -> None:
    due = add_business_seconds(local(BERLIN, 2026, 11, 17, 17, 0), 3600, OFFICE, BERLIN)
    assert due == local(BERLIN, 2026, 11, 18, 9, 30)


def test_weekend_is_skipped() -> None:
    due = add_business_seconds(local(BERLIN, 2026, 11, 20, 17, 0), 3600, OFFICE, BERLIN)
    assert due == local(BERLIN, 2026, 11, 23, 9, 30)


def test_start_on_weekend_starts_monday() -> None:
    due = add_business_seconds(local(BERLIN, 2026, 11, 21, 12, 0), 60, OFFICE, BERLIN)
    assert due == local(BERLIN, 2026, 11, 23, 9, 1)


def test_start_before_window() -> None:
    due = add_business_seconds(local(BERLIN, 2026, 11, 16, 7, 0), 600, OFFICE, BERLIN)
    assert due == local(BERLIN, 2026, 11, 16, 9, 10)


def test_start_after_window() -> None:
    due = add_business_seconds(local(BERLIN, 2026, 11, 16, 18, 0), 600, OFFICE, BERLIN)
    assert due == local(BERLIN, 2026, 11, 17, 9, 10)


def test_deadline_exactly_at_window_end_stays_there() -> None:
    due = add_business_seconds(local(BERLIN, 2026, 11, 16, 17, 0), 1800, OFFICE, BERLIN)
    assert due == local(BERLIN, 2026, 11, 16, 17, 30)


def test_start_exactly_at_window_end() -> None:
    due = add_business_seconds(local(BERLIN, 2026, 11, 16, 17, 30), 60, OFFICE, BERLIN)
    assert due == local(BERLIN, 2026, 11, 17, 9, 1)


def test_start_exactly_at_window_start() -> None:
    due = add_business_seconds(local(BERLIN, 2026, 11, 16, 9, 0), DAY, OFFICE, BERLIN)
    assert due == local(BERLIN, 2026, 11, 16, 17, 30)


def test_multi_day_span_crosses_weekend() -> None:
    start = local(BERLIN, 2026, 11, 18, 9, 0)  # Wednesday
    assert add_business_seconds(start, 3 * DAY, OFFICE, BERLIN) == local(
        BERLIN, 2026, 11, 20, 17, 30
    )
    assert add_business_seconds(start, 3 * DAY + 1, OFFICE, BERLIN) == local(
        BERLIN, 2026, 11, 23, 9, 0, 1
    )
    assert business_seconds_between(start, local(BERLIN, 2026, 11, 25, 9, 0), OFFICE, BERLIN) == (
        5 * DAY
    )


def test_zero_seconds_returns_start() -> None:
    start = local(BERLIN, 2026, 11, 21, 12, 0)
    assert add_business_seconds(start, 0, OFFICE, BERLIN) == start


def test_split_windows_and_lunch_break() -> None:
    due = add_business_seconds(local(BERLIN, 2026, 11, 16, 11, 30), 3600, SPLIT, BERLIN)
    assert due == local(BERLIN, 2026, 11, 16, 13, 30)
    # Monday 16:00 + 2 h: 1 h Monday, then Wednesday 10:00-11:00
    due = add_business_seconds(local(BERLIN, 2026, 11, 16, 16, 0), 7200, SPLIT, BERLIN)
    assert due == local(BERLIN, 2026, 11, 18, 11, 0)


def test_end_of_day_window_runs_to_midnight() -> None:
    sat = local(BERLIN, 2026, 11, 21, 23, 0)
    assert add_business_seconds(sat, 3600, SPLIT, BERLIN) == local(BERLIN, 2026, 11, 22, 0, 0)
    assert is_working_time(local(BERLIN, 2026, 11, 21, 23, 59, 59), SPLIT, BERLIN)
    assert not is_working_time(local(BERLIN, 2026, 11, 22, 0, 0), SPLIT, BERLIN)
    # Saturday 23:30 + 1 h: 30 min Saturday, next window Monday 08:00
    due = add_business_seconds(local(BERLIN, 2026, 11, 21, 23, 30), 3600, SPLIT, BERLIN)
    assert due == local(BERLIN, 2026, 11, 23, 8, 30)


def test_is_working_time_boundaries() -> None:
    assert is_working_time(local(BERLIN, 2026, 11, 16, 9, 0), OFFICE, BERLIN)
    assert not is_working_time(local(BERLIN, 2026, 11, 16, 8, 59, 59), OFFICE, BERLIN)
    assert not is_working_time(local(BERLIN, 2026, 11, 16, 17, 30), OFFICE, BERLIN)
    assert not is_working_time(local(BERLIN, 2026, 11, 21, 12, 0), OFFICE, BERLIN)
    # the same instant is working time in New York but not in Berlin
    instant = utc(2026, 11, 16, 18, 0)
    assert is_working_time(instant, OFFICE, NEW_YORK)
    assert not is_working_time(instant, OFFICE, BERLIN)


def test_next_working_time() -> None:
    friday_evening = local(BERLIN, 2026, 11, 20, 18, 0)
    assert next_working_time(friday_evening, OFFICE, BERLIN) == local(BERLIN, 2026, 11, 23, 9, 0)
    inside = local(BERLIN, 2026, 11, 20, 10, 0)
    assert next_working_time(inside, OFFICE, BERLIN) == inside


def test_between_is_zero_for_reversed_or_off_hours() -> None:
    a, b = local(BERLIN, 2026, 11, 16, 10), local(BERLIN, 2026, 11, 16, 11)
    assert business_seconds_between(b, a, OFFICE, BERLIN) == 0
    sat, sun = local(BERLIN, 2026, 11, 21, 8), local(BERLIN, 2026, 11, 22, 20)
    assert business_seconds_between(sat, sun, OFFICE, BERLIN) == 0


# --- DST ------------------------------------------------------------------------------------------


def test_berlin_spring_forward_office_hours() -> None:
    # Fri 27 Mar 2026 17:00 CET; DST starts Sun 29 Mar; Monday 09:30 is CEST (UTC+2)
    due = add_business_seconds(local(BERLIN, 2026, 3, 27, 17, 0), 3600, OFFICE, BERLIN)
    assert due == utc(2026, 3, 30, 7, 30)


def test_berlin_fall_back_office_hours() -> None:
    # Fri 23 Oct 2026 17:00 CEST; DST ends Sun 25 Oct; Monday 09:30 is CET (UTC+1)
    due = add_business_seconds(local(BERLIN, 2026, 10, 23, 17, 0), 3600, OFFICE, BERLIN)
    assert due == utc(2026, 10, 26, 8, 30)


def test_new_york_spring_forward_office_hours() -> None:
    # Fri 6 Mar 2026 17:00 EST; DST starts Sun 8 Mar; Monday 09:30 is EDT (UTC-4)
    due = add_business_seconds(local(NEW_YORK, 2026, 3, 6, 17, 0), 3600, OFFICE, NEW_YORK)
    assert due == utc(2026, 3, 9, 13, 30)


def test_new_york_fall_back_office_hours() -> None:
    # Fri 30 Oct 2026 17:00 EDT; DST ends Sun 1 Nov; Monday 09:30 is EST (UTC-5)
    due = add_business_seconds(local(NEW_YORK, 2026, 10, 30, 17, 0), 3600, OFFICE, NEW_YORK)
    assert due == utc(2026, 11, 2, 14, 30)


@pytest.mark.parametrize(
    ("tz", "day", "hours"),
    [
        (BERLIN, (2026, 3, 29), 23),
        (BERLIN, (2026, 10, 25), 25),
        (NEW_YORK, (2026, 3, 8), 23),
        (NEW_YORK, (2026, 11, 1), 25),
        (NEW_YORK, (2026, 11, 2), 24),
    ],
)
def test_whole_day_window_counts_real_seconds_on_dst_days(
    tz: ZoneInfo, day: tuple[int, int, int], hours: int
) -> None:
    start = local(tz, *day, 0, 0)
    end = datetime.combine(start.date() + timedelta(days=1), time(0), tzinfo=tz)
    assert business_seconds_between(start, end, ALWAYS, tz) == hours * 3600
    assert add_business_seconds(start, hours * 3600, ALWAYS, tz) == end


def test_always_hours_equal_wall_clock_across_spring_forward() -> None:
    start = local(BERLIN, 2026, 3, 28, 12, 0)
    due = add_business_seconds(start, 86400, ALWAYS, BERLIN)
    assert due == start.astimezone(UTC) + timedelta(days=1) == utc(2026, 3, 29, 11, 0)
    assert due.astimezone(BERLIN).hour == 13  # the wall clock skipped an hour


def test_window_starting_in_spring_forward_gap() -> None:
    # 02:30 does not exist on 29 Mar 2026 in Berlin: it shifts forward by the gap (03:30 CEST)
    hours: WorkingHours = {6: [(time(2, 30), time(4, 0))]}
    start, end = local(BERLIN, 2026, 3, 29, 0, 0), local(BERLIN, 2026, 3, 29, 12, 0)
    assert business_seconds_between(start, end, hours, BERLIN) == 1800
    assert add_business_seconds(start, 60, hours, BERLIN) == utc(2026, 3, 29, 1, 31)


def test_window_over_repeated_fall_back_hour_counts_it_twice() -> None:
    # 02:00-03:00 on 25 Oct 2026 in Berlin lasts two real hours (02:00 CEST .. 03:00 CET)
    hours: WorkingHours = {6: [(time(2, 0), time(3, 0))]}
    start, end = local(BERLIN, 2026, 10, 25, 0, 0), local(BERLIN, 2026, 10, 25, 12, 0)
    assert business_seconds_between(start, end, hours, BERLIN) == 7200
    assert add_business_seconds(start, 5400, hours, BERLIN) == utc(2026, 10, 25, 1, 30)


# --- errors and Schedule ------------------------------------------------------------------------


def test_empty_hours_raise() -> None:
    start = utc(2026, 11, 16, 10)
    with pytest.raises(ValueError, match="no working time"):
        add_business_seconds(start, 60, {}, BERLIN)
    with pytest.raises(ValueError, match="no working time"):
        add_business_seconds(start, 60, {0: []}, BERLIN)


def test_naive_and_negative_inputs_raise() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_seconds(datetime(2026, 11, 16, 10), 60, OFFICE, BERLIN)
    with pytest.raises(ValueError, match=">= 0"):
        add_business_seconds(utc(2026, 11, 16, 10), -1, OFFICE, BERLIN)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_working_time(datetime(2026, 11, 16, 10), OFFICE, BERLIN)


def test_schedule_binds_hours_and_zone() -> None:
    schedule = Schedule(OFFICE, NEW_YORK)
    start = local(NEW_YORK, 2026, 11, 20, 17, 0)
    due = schedule.add_business_seconds(start, 3600)
    assert due == local(NEW_YORK, 2026, 11, 23, 9, 30)
    assert schedule.business_seconds_between(start, due) == 3600
    assert schedule.is_working_time(start)
    assert schedule.has_working_time
    assert not Schedule({}, NEW_YORK).has_working_time


# --- properties -----------------------------------------------------------------------------------

starts = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
zones = st.sampled_from([BERLIN, NEW_YORK, LONDON])
schedules = st.sampled_from([OFFICE, ALWAYS, SPLIT])


@settings(max_examples=300, deadline=None)
@given(start=starts, seconds=st.integers(0, 20 * 86400), tz=zones, hours=schedules)
def test_between_inverts_add(
    start: datetime, seconds: int, tz: ZoneInfo, hours: WorkingHours
) -> None:
    due = add_business_seconds(start, seconds, hours, tz)
    assert due >= start
    assert business_seconds_between(start, due, hours, tz) == seconds


@settings(max_examples=200, deadline=None)
@given(start=starts, a=st.integers(0, 5 * 86400), b=st.integers(0, 5 * 86400), tz=zones)
def test_add_is_monotonic_and_additive(start: datetime, a: int, b: int, tz: ZoneInfo) -> None:
    lo, hi = sorted((a, b))
    first = add_business_seconds(start, lo, OFFICE, tz)
    assert first <= add_business_seconds(start, hi, OFFICE, tz)
    assert add_business_seconds(first, hi - lo, OFFICE, tz) == add_business_seconds(
        start, hi, OFFICE, tz
    )


@settings(max_examples=200, deadline=None)
@given(start=starts, seconds=st.integers(1, 10 * 86400), tz=zones, hours=schedules)
def test_deadline_lies_in_working_time_or_at_window_end(
    start: datetime, seconds: int, tz: ZoneInfo, hours: WorkingHours
) -> None:
    due = add_business_seconds(start, seconds, hours, tz)
    assert is_working_time(due - timedelta(microseconds=1), hours, tz)
