"""Time off in business-hours arithmetic: public and company holidays, out-of-office periods,
across a DST change, a year boundary and time off that starts in the middle of a window."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
import yaml

from shared.business_hours import DaysOff, Schedule, TimeOff, WorkingHours
from shared.policy import PublicHolidays, Rep, parse_policy
from tests.shared.test_policy import broken, example_data  # noqa: F401

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
OFFICE: WorkingHours = {d: [(time(9), time(17, 30))] for d in range(5)}


def at(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[misc,arg-type]


def test_easter_holidays_around_the_dst_change_are_skipped() -> None:
    # 2027: Good Friday 26 March, clocks go forward on Easter Sunday 28 March, Easter Monday 29
    de = Schedule(
        OFFICE, BERLIN, TimeOff(days=DaysOff(calendars=[holidays.country_holidays("DE")]))
    )
    plain = Schedule(OFFICE, BERLIN)
    start = at(BERLIN, 2027, 3, 25, 17, 0)  # Thursday, 30 min of office time left
    assert plain.add_business_seconds(start, 3600) == at(BERLIN, 2027, 3, 26, 9, 30)
    due = de.add_business_seconds(start, 3600)
    assert due == at(BERLIN, 2027, 3, 30, 9, 30)  # Tuesday, summer time
    assert due == datetime(2027, 3, 30, 7, 30, tzinfo=UTC)
    assert not de.is_working_time(at(BERLIN, 2027, 3, 29, 11, 0))
    assert de.business_seconds_between(start, due) == 3600
    assert de.next_working_time(at(BERLIN, 2027, 3, 26, 10, 0)) == at(BERLIN, 2027, 3, 30, 9, 0)


def test_company_and_public_holidays_across_the_year_boundary() -> None:
    off = TimeOff(
        days=DaysOff(dates=[date(2026, 12, 31)], calendars=[holidays.country_holidays("US")])
    )
    ny = Schedule(OFFICE, NEW_YORK, off)
    start = at(NEW_YORK, 2026, 12, 30, 17, 0)  # Wednesday
    # Thursday 31 Dec: company holiday; Friday 1 Jan: New Year's Day; then the weekend
    assert ny.add_business_seconds(start, 3600) == at(NEW_YORK, 2027, 1, 4, 9, 30)
    assert ny.business_seconds_between(start, at(NEW_YORK, 2027, 1, 4, 17, 30)) == 1800 + 30600


def test_time_off_starting_mid_window_cuts_the_window_there() -> None:
    # out of office from Monday 13:00 to Wednesday: a 2 h clock started Monday at noon
    away = (at(BERLIN, 2026, 11, 16, 13, 0), at(BERLIN, 2026, 11, 18, 0, 0))
    schedule = Schedule(OFFICE, BERLIN, TimeOff(periods=(away,)))
    start = at(BERLIN, 2026, 11, 16, 12, 0)
    assert schedule.add_business_seconds(start, 7200) == at(BERLIN, 2026, 11, 18, 10, 0)
    assert schedule.is_working_time(at(BERLIN, 2026, 11, 16, 12, 59))
    assert not schedule.is_working_time(at(BERLIN, 2026, 11, 16, 13, 0))
    # a public holiday inside the SLA window: the clock stops at the day's start, resumes after
    xmas = Schedule(OFFICE, BERLIN, TimeOff(days=DaysOff(dates=[date(2026, 12, 24)])))
    assert xmas.add_business_seconds(at(BERLIN, 2026, 12, 23, 17, 0), 3600) == at(
        BERLIN, 2026, 12, 25, 9, 30
    )


def test_a_month_away_comes_back_and_endless_time_off_is_an_error() -> None:
    away = (at(BERLIN, 2026, 7, 1, 0, 0), at(BERLIN, 2026, 8, 3, 0, 0))
    summer = Schedule(OFFICE, BERLIN, TimeOff(periods=(away,)))
    assert summer.add_business_seconds(at(BERLIN, 2026, 6, 30, 17, 30), 60) == at(
        BERLIN, 2026, 8, 3, 9, 1
    )

    class Always:
        def __contains__(self, day: object) -> bool:
            return True

    never = Schedule(OFFICE, BERLIN, TimeOff(days=DaysOff(calendars=[Always()])))
    with pytest.raises(ValueError, match="every day is time off"):
        never.add_business_seconds(at(BERLIN, 2026, 6, 30, 17, 30), 60)


# --- from the policy --------------------------------------------------------------------------


def _rep(**extra: Any) -> Rep:
    return Rep.model_validate(
        {
            "id": "rep-x",
            "name": "X",
            "email": "x@example.com",
            "timezone": "Europe/Berlin",
            "working_hours": {d: ["09:00", "17:30"] for d in ("mon", "tue", "wed", "thu", "fri")},
            "capacity": 5,
            **extra,
        }
    )


def test_a_reps_schedule_has_their_public_holidays_and_out_of_office() -> None:
    bavaria = _rep(
        holidays={"country": "DE", "subdivision": "BY"},
        out_of_office=[{"from": "2027-01-11T00:00:00+01:00", "until": "2027-01-12T00:00:00+01:00"}],
    )
    berlin = _rep(holidays={"country": "DE", "subdivision": "BE"})
    epiphany = at(BERLIN, 2027, 1, 6, 10, 0)  # a holiday in Bavaria, not in Berlin
    assert not bavaria.schedule().is_working_time(epiphany)
    assert berlin.schedule().is_working_time(epiphany)
    assert not bavaria.schedule().is_working_time(at(BERLIN, 2027, 1, 11, 10, 0))
    assert bavaria.schedule() is bavaria.schedule()  # built once


def test_company_holidays_reach_every_reps_schedule(example_data: dict[str, Any]) -> None:  # noqa: F811
    data = {**example_data, "company_holidays": ["2026-11-20"]}
    policy = parse_policy(yaml.safe_dump(data, sort_keys=False))
    for team in policy.teams:
        for rep in team.reps:
            friday = datetime.combine(date(2026, 11, 20), time(12), rep.zone)
            assert not rep.schedule().is_working_time(friday), rep.id


def test_holiday_fields_errors_name_the_field(example_data: dict[str, Any]) -> None:  # noqa: F811
    def country(d: dict[str, Any]) -> None:
        d["teams"][0]["reps"][0]["holidays"] = {"country": "XX"}

    def subdivision(d: dict[str, Any]) -> None:
        d["teams"][0]["reps"][0]["holidays"] = {"country": "DE", "subdivision": "ZZ"}

    def company(d: dict[str, Any]) -> None:
        d["company_holidays"] = ["2026-13-01"]

    assert broken(example_data, country) == (
        "teams[0].reps[0].holidays.country: no public holidays known for 'XX'"
    )
    assert broken(example_data, subdivision) == (
        "teams[0].reps[0].holidays.subdivision: 'ZZ' is not a subdivision of DE"
    )
    assert broken(example_data, company).startswith("company_holidays[0]: ")
    assert PublicHolidays(country="US", subdivision="CA").calendar().get(date(2027, 7, 5))
