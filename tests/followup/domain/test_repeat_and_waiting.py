"""Pure decisions of the repeating last level and of a parked lead's waiting clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.followup.domain.clock import Schedule, Step, after_firing, fire, repetition
from services.followup.domain.waiting import reengage_on_working_time, waiting_due
from shared.business_hours import Schedule as Hours

DUE = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
EVERY = 600
CHAIN = [
    Step(1, "remind_owner", 0),
    Step(2, "notify_manager", 900),
    Step(3, "notify_manager", 1800, repeat_every_seconds=EVERY),
]
L3 = DUE + timedelta(seconds=1800)


def test_the_repeating_last_level_fires_again_every_n_seconds_numbered() -> None:
    # the level's first firing is repetition 0, then every EVERY seconds 1, 2, ...
    first = fire(due_at=DUE, chain=CHAIN, level=3, fire_at=L3, now=L3)
    assert first.repetition == 0 and first.status == "open"
    assert first.then == Schedule(3, L3 + timedelta(seconds=EVERY))
    again = fire(due_at=DUE, chain=CHAIN, level=3, fire_at=first.then.next_fire_at, now=L3)  # type: ignore[arg-type]
    assert again.repetition == 1
    assert again.then == Schedule(3, L3 + timedelta(seconds=2 * EVERY))


def test_a_late_tick_fires_the_repetition_once_and_skips_the_missed_ones() -> None:
    now = L3 + timedelta(seconds=EVERY * 5 + 7)  # followup was down for five repetitions
    late = fire(due_at=DUE, chain=CHAIN, level=3, fire_at=L3 + timedelta(seconds=EVERY), now=now)
    assert late.repetition == 1
    assert late.then == Schedule(3, L3 + timedelta(seconds=EVERY * 6))
    assert repetition(DUE, CHAIN, 3, L3 + timedelta(seconds=EVERY * 6)) == 6


def test_a_chain_without_repeat_is_exhausted_after_its_last_level() -> None:
    plain = [Step(s.level, s.action, s.after_seconds) for s in CHAIN]
    assert after_firing(DUE, plain, 3, fire_at=L3, now=L3) == Schedule(None, None)
    assert fire(due_at=DUE, chain=plain, level=3, fire_at=L3, now=L3).status == "exhausted"
    # only the last level repeats: level 2 goes on to level 3 as before
    assert after_firing(DUE, CHAIN, 2) == Schedule(3, L3)


BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = Hours({d: ((time(9), time(17)),) for d in range(5)}, BERLIN)
LATE = Hours({d: ((time(13), time(21)),) for d in range(5)}, BERLIN)


def test_a_wall_clock_wait_lapses_after_the_window() -> None:
    parked = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)  # Friday 17:00 Berlin
    assert waiting_due(
        parked_at=parked, wait_seconds=600, clock="wall", schedules=[OFFICE]
    ) == parked + timedelta(seconds=600)


def test_a_business_wait_counts_in_the_team_rep_who_reaches_it_first() -> None:
    parked = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)  # Friday 16:30 Berlin
    # OFFICE has 30 min left on Friday, then Monday 09:00; LATE has until 21:00 Friday
    assert waiting_due(
        parked_at=parked, wait_seconds=3600, clock="business", schedules=[OFFICE, LATE]
    ) == datetime(2026, 12, 4, 16, 30, tzinfo=UTC)
    assert waiting_due(
        parked_at=parked, wait_seconds=3600, clock="business", schedules=[OFFICE]
    ) == datetime(2026, 12, 7, 8, 30, tzinfo=UTC)
    # a team followup does not know waits on the wall clock
    assert waiting_due(
        parked_at=parked, wait_seconds=3600, clock="business", schedules=[]
    ) == parked + timedelta(hours=1)


def test_a_reengagement_on_a_day_off_moves_to_the_owners_next_working_time() -> None:
    saturday = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    assert reengage_on_working_time(saturday, OFFICE) == datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    tuesday = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
    assert reengage_on_working_time(tuesday, OFFICE) == tuesday
    assert reengage_on_working_time(saturday, None) == saturday  # owner not in the policy
