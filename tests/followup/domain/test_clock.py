"""Pure SLA clock decisions: schedule of the chain and what each activity does."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.followup.domain.clock import (
    ActivityOutcome,
    Schedule,
    Step,
    after_firing,
    apply_activity,
    belongs_to_clock,
    completion_ratio,
    first_fire,
)

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
DUE = T0 + timedelta(hours=1)
CHAIN = [
    Step(1, "remind_owner", 0),
    Step(2, "notify_manager", 1800),
    Step(3, "reassign", 3600),
]


def act(
    type_: str,
    at: datetime,
    *,
    status: str = "open",
    seq: int = 1,
    reengage_at: datetime | None = None,
) -> ActivityOutcome:
    return apply_activity(
        status=status,
        assignment_seq=seq,
        started_at=T0,
        due_at=DUE,
        activity_type=type_,
        at=at,
        reengage_at=reengage_at,
    )


def test_first_level_fires_at_the_deadline_plus_its_delay() -> None:
    assert first_fire(DUE, CHAIN) == Schedule(1, DUE)
    assert first_fire(DUE, [Step(1, "remind_owner", 60)]) == Schedule(
        1, DUE + timedelta(seconds=60)
    )


def test_first_fire_takes_the_lowest_level_whatever_the_order() -> None:
    assert first_fire(DUE, list(reversed(CHAIN))) == Schedule(1, DUE)


def test_empty_chain_never_fires() -> None:
    assert first_fire(DUE, []) == Schedule(None, None)
    assert after_firing(DUE, [], 1) == Schedule(None, None)


def test_chain_walks_each_level_once_then_is_exhausted() -> None:
    assert after_firing(DUE, CHAIN, 1) == Schedule(2, DUE + timedelta(seconds=1800))
    assert after_firing(DUE, CHAIN, 2) == Schedule(3, DUE + timedelta(seconds=3600))
    assert after_firing(DUE, CHAIN, 3) == Schedule(None, None)


def test_a_shorter_later_delay_never_schedules_before_the_level_just_fired() -> None:
    chain = [Step(1, "remind_owner", 600), Step(2, "notify_manager", 60)]
    assert after_firing(DUE, chain, 1) == Schedule(2, DUE + timedelta(seconds=600))


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=6))
def test_walking_any_chain_fires_every_level_once_in_order_never_earlier(
    delays: list[int],
) -> None:
    chain = [Step(i + 1, "remind_owner", d) for i, d in enumerate(delays)]
    sched = first_fire(DUE, chain)
    fired: list[int] = []
    last = DUE
    while sched.next_level is not None:
        assert sched.next_fire_at is not None and sched.next_fire_at >= last
        last = sched.next_fire_at
        fired.append(sched.next_level)
        sched = after_firing(DUE, chain, sched.next_level)
    assert fired == list(range(1, len(delays) + 1))


def test_contacted_inside_the_window_is_met_with_speed_to_lead() -> None:
    out = act("contacted", T0 + timedelta(minutes=5))
    assert out.status == "met" and out.met is True
    assert out.speed_to_lead_seconds == 300
    assert out.stops_clock


def test_contacted_exactly_at_the_deadline_is_still_met() -> None:
    assert act("contacted", DUE).status == "met"


def test_contacted_after_the_deadline_is_breached() -> None:
    out = act("contacted", DUE + timedelta(seconds=1))
    assert out.status == "breached" and out.met is False
    assert out.speed_to_lead_seconds == 3601


def test_second_contact_changes_nothing() -> None:
    out = act("contacted", T0 + timedelta(minutes=1), status="met")
    assert out.status is None and out.speed_to_lead_seconds is None


def test_accepted_is_recorded_but_keeps_the_clock_running() -> None:
    out = act("accepted", T0 + timedelta(minutes=1))
    assert out.status is None and not out.stops_clock


def test_rejected_closes_an_open_clock_for_reassignment() -> None:
    assert act("rejected", T0 + timedelta(minutes=1)).status == "rejected"
    assert act("rejected", T0, status="met").status is None


def test_outcomes_close_the_clock_and_cancel_nurture() -> None:
    for kind in ("converted", "disqualified"):
        out = act(kind, T0 + timedelta(minutes=1))
        assert out.status == "closed" and out.cancel_reengagement
        late = act(kind, T0 + timedelta(days=9), status="met")
        assert late.status is None and late.cancel_reengagement


def test_not_ready_moves_an_open_clock_to_nurture_with_the_reengage_time() -> None:
    when = T0 + timedelta(days=90)
    out = act("not_ready", T0 + timedelta(minutes=1), reengage_at=when)
    assert out.status == "nurture" and out.reengage_at == when


def test_not_ready_after_contact_still_schedules_reengagement() -> None:
    when = T0 + timedelta(days=90)
    out = act("not_ready", T0 + timedelta(days=1), status="met", reengage_at=when)
    assert out.status is None and out.reengage_at == when


def test_activity_from_before_a_reassignment_does_not_touch_the_new_clock() -> None:
    before = T0 - timedelta(minutes=1)
    assert not belongs_to_clock(assignment_seq=2, started_at=T0, at=before)
    assert act("contacted", before, seq=2).status is None
    assert act("not_ready", before, seq=2, reengage_at=DUE).reengage_at is None


def test_first_assignment_takes_activities_stamped_slightly_before_it() -> None:
    before = T0 - timedelta(seconds=2)
    assert belongs_to_clock(assignment_seq=1, started_at=T0, at=before)
    out = act("contacted", before)
    assert out.status == "met" and out.speed_to_lead_seconds == 0.0


def test_completion_ratio() -> None:
    assert completion_ratio(8, 10) == 0.8
    assert completion_ratio(0, 3) == 0.0
    assert math.isnan(completion_ratio(0, 0))
