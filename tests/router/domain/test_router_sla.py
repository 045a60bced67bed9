"""SLA deadlines on the wall clock and in the owner's business hours (weekend, DST change)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services.router.domain.sla import due_at
from shared.policy import Policy, Rep, SlaTier

WALL_DAY = SlaTier(window_seconds=86_400, clock="wall")
BUSINESS_HOUR = SlaTier(window_seconds=3_600, clock="business")


@pytest.fixture
def anna(policy: Policy) -> Rep:
    found = policy.rep("rep-anna")  # Europe/Berlin, Mon-Fri 09:00-17:30
    assert found is not None
    return found[1]


def test_wall_clock_ignores_working_hours(anna: Rep) -> None:
    friday_evening = datetime(2026, 12, 4, 20, 0, tzinfo=timezone(timedelta(hours=1)))
    due = due_at(friday_evening, WALL_DAY, anna)
    assert due == datetime(2026, 12, 5, 19, 0, tzinfo=UTC)
    assert due.utcoffset() == timedelta(0)


def test_business_clock_inside_hours(anna: Rep) -> None:
    wednesday = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # 11:00 Berlin
    assert due_at(wednesday, BUSINESS_HOUR, anna) == datetime(2026, 12, 2, 11, 0, tzinfo=UTC)


def test_business_clock_skips_the_weekend(anna: Rep) -> None:
    friday = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)  # 17:00 Berlin, 30 min left that day
    assert due_at(friday, BUSINESS_HOUR, anna) == datetime(2026, 12, 7, 8, 30, tzinfo=UTC)


def test_business_clock_across_dst_end(anna: Rep) -> None:
    # Friday 23 Oct 2026 17:00 CEST (+02:00); clocks go back on Sunday 25 Oct.
    friday = datetime(2026, 10, 23, 15, 0, tzinfo=UTC)
    # Monday 26 Oct 09:30 CET (+01:00) = 08:30 UTC.
    assert due_at(friday, BUSINESS_HOUR, anna) == datetime(2026, 10, 26, 8, 30, tzinfo=UTC)


def test_business_clock_uses_the_owners_zone(
    make_policy: Callable[..., Policy],
) -> None:
    def change(data: dict[str, Any]) -> None:
        data["teams"][1]["reps"][0]["working_hours"] = {"mon": ["09:00", "17:00"]}

    found = make_policy(change).rep("rep-carl")  # America/New_York, Mondays only
    assert found is not None
    wednesday = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    # Next Monday 7 Dec 09:00 EST (-05:00) = 14:00 UTC, plus one hour.
    assert due_at(wednesday, BUSINESS_HOUR, found[1]) == datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


def test_naive_time_is_refused(anna: Rep) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due_at(datetime(2026, 12, 2, 10, 0), WALL_DAY, anna)


def test_business_clock_skips_the_owners_time_off(
    make_policy: Callable[..., Policy],
) -> None:
    # Anna works Mon-Fri 09:00-17:30 Berlin; she has DE-BE public holidays, a company holiday
    # and an out-of-office day: a lead is never due while she cannot work on it.
    def change(data: dict[str, Any]) -> None:
        data["company_holidays"] = ["2027-03-24"]
        anna = data["teams"][0]["reps"][0]
        anna["holidays"] = {"country": "DE", "subdivision": "BE"}
        anna["out_of_office"] = [
            {"from": "2027-03-25T00:00:00+01:00", "until": "2027-03-26T00:00:00+01:00"}
        ]

    found = make_policy(change).rep("rep-anna")
    assert found is not None
    # Tuesday 23 Mar 2027 17:00 CET: 30 min left that day; Wednesday 24 is a company holiday,
    # Thursday 25 out of office, Friday 26 Good Friday, Monday 29 Easter Monday (now CEST).
    tuesday = datetime(2027, 3, 23, 16, 0, tzinfo=UTC)
    # Tuesday 30 Mar 09:30 CEST = 07:30 UTC.
    assert due_at(tuesday, BUSINESS_HOUR, found[1]) == datetime(2027, 3, 30, 7, 30, tzinfo=UTC)
