"""Followup service on the real PostgreSQL: clocks, activities, escalations, nurture, DLQ.

Every test drives the service and the tick with an explicit `now` (no sleeping) inside a
transaction that is rolled back afterwards.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup import store
from services.followup.service import FollowupService, InvalidActivity
from shared.errors import LeadNotFound
from shared.events import LeadActivity
from tests.followup.conftest import (
    EPOCH,
    WINDOW,
    activity,
    assigned,
    clock_status,
    escalation_levels,
    new_lead,
    outbox_events,
    record,
)

pytestmark = pytest.mark.integration

DUE = EPOCH + timedelta(seconds=WINDOW)
# The example policy's chain: level 1 at the deadline, 2 after 900 s, 3 after 1800 s.
L1, L2, L3 = DUE, DUE + timedelta(seconds=900), DUE + timedelta(seconds=1800)
LATER = timedelta(seconds=5)


async def tick_until(service: FollowupService, db: AsyncSession, now: object) -> None:
    """Tick at `now` until nothing more is due (a late tick catches up level by level)."""
    for _ in range(10):
        if not await service.tick(db, now=now):  # type: ignore[arg-type]
            return


async def test_contacted_before_the_deadline_never_escalates(
    service: FollowupService, db: AsyncSession
) -> None:
    lead = new_lead()
    assert await service.on_assigned(db, event=assigned(lead)) is not None
    assert await record(service, db, activity(lead, "contacted", EPOCH + timedelta(minutes=10)))
    await tick_until(service, db, L3 + timedelta(days=1))
    assert await escalation_levels(db, lead) == []
    assert await outbox_events(db, lead, "lead.escalated") == []
    assert await clock_status(db, lead) == ("met", 1)


async def test_untouched_lead_walks_levels_1_2_3_each_once(
    service: FollowupService, db: AsyncSession
) -> None:
    lead = new_lead()
    await service.on_assigned(db, event=assigned(lead))
    await tick_until(service, db, L1 - timedelta(seconds=1))
    assert await escalation_levels(db, lead) == []
    await tick_until(service, db, L1 + LATER)
    assert await escalation_levels(db, lead) == [(1, 1)]
    await tick_until(service, db, L2 + LATER)
    assert await escalation_levels(db, lead) == [(1, 1), (1, 2)]
    await tick_until(service, db, L3 + LATER)
    await tick_until(service, db, L3 + timedelta(days=3))
    assert await escalation_levels(db, lead) == [(1, 1), (1, 2), (1, 3)]
    events = await outbox_events(db, lead, "lead.escalated")
    assert [(e["data"]["level"], e["data"]["action"]) for _, e in events] == [
        (1, "remind_owner"),
        (2, "notify_manager"),
        (3, "reassign"),
    ]
    assert events[1][1]["data"]["seconds_overdue"] == 905
    assert {t for t, _ in events} == {"test.leads.escalated"}
    assert await clock_status(db, lead) == ("exhausted", 1)


async def test_a_late_tick_catches_up_every_level_once(
    service: FollowupService, db: AsyncSession
) -> None:
    lead = new_lead()
    await service.on_assigned(db, event=assigned(lead))
    await tick_until(service, db, L3 + timedelta(hours=5))  # followup was down for hours
    assert await escalation_levels(db, lead) == [(1, 1), (1, 2), (1, 3)]


async def test_reassignment_starts_a_fresh_clock_that_escalates_afresh(
    service: FollowupService, db: AsyncSession
) -> None:
    lead = new_lead()
    await service.on_assigned(db, event=assigned(lead))
    await tick_until(service, db, L3 + LATER)
    t2 = L3 + timedelta(seconds=10)
    assert (
        await service.on_assigned(db, event=assigned(lead, seq=2, at=t2, owner="rep-b")) is not None
    )
    assert await clock_status(db, lead) == ("open", 2)
    due2 = t2 + timedelta(seconds=WINDOW)
    await tick_until(service, db, due2 - timedelta(seconds=1))
    assert await escalation_levels(db, lead) == [(1, 1), (1, 2), (1, 3)]
    await tick_until(service, db, due2 + timedelta(seconds=1800) + LATER)
    assert await escalation_levels(db, lead) == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]
    second = [e for _, e in await outbox_events(db, lead, "lead.escalated")][3:]
    assert {e["data"]["owner"]["id"] for e in second} == {"rep-b"}
    assert len({e["id"] for _, e in await outbox_events(db, lead)}) == 6


async def test_stale_or_repeated_assignment_is_ignored(
    service: FollowupService, db: AsyncSession
) -> None:
    lead = new_lead()
    t2 = EPOCH + timedelta(minutes=30)
    assert (
        await service.on_assigned(db, event=assigned(lead, seq=2, at=t2, owner="rep-b")) is not None
    )
    assert await service.on_assigned(db, event=assigned(lead, seq=1, owner="rep-a")) is None
    assert await service.on_assigned(db, event=assigned(lead, seq=2, at=t2, owner="rep-b")) is None
    clock = await store.get_clock(db, lead)
    assert clock is not None
    assert (clock.assignment_seq, clock.owner["id"], clock.started_at) == (2, "rep-b", t2)
    await tick_until(service, db, L3 + timedelta(hours=2))
    assert {seq for seq, _ in await escalation_levels(db, lead)} == {2}


async def test_an_upper_case_lead_id_starts_its_clock(
    service: FollowupService, db: AsyncSession
) -> None:
    """PostgreSQL hands the uuid back in lower case; the clock still counts as started."""
    lead = new_lead()
    started = await service.on_assigned(db, event=assigned(lead.upper()))
    assert started is not None and started.next_fire_at == L1
    assert await service.on_assigned(db, event=assigned(lead)) is None  # the same assignment


async def _outcome(db: AsyncSession, lead: str) -> tuple[object, ...]:
    clock = await store.get_clock(db, lead)
    assert clock is not None
    acts = [(a["type"], a["other_owner"], a["state"]) for a in await store.activities_for(db, lead)]
    return (
        clock.status,
        clock.contacted_at,
        clock.next_level,
        acts,
        await escalation_levels(db, lead),
        [w["touched_at"] for w in await store.windows_for(db, lead)],
    )


async def test_activity_before_its_assignment_gives_the_in_order_outcome(
    service: FollowupService, db: AsyncSession
) -> None:
    contact_at = EPOCH + timedelta(minutes=7)
    in_order, out_of_order = new_lead(), new_lead()

    await service.on_assigned(db, event=assigned(in_order))
    await record(service, db, activity(in_order, "contacted", contact_at))

    assert await record(service, db, activity(out_of_order, "contacted", contact_at))
    pending = await store.activities_for(db, out_of_order)
    assert [a["state"] for a in pending] == ["pending"]
    await service.on_assigned(db, event=assigned(out_of_order))

    await tick_until(service, db, L3 + LATER)
    a, b = await _outcome(db, in_order), await _outcome(db, out_of_order)
    assert a == b
    assert a[0] == "met" and a[1] == contact_at and a[4] == []


async def test_activity_for_the_next_owner_before_the_reassignment_arrives(
    service: FollowupService, db: AsyncSession
) -> None:
    """rep-b calls right after the reassignment, before followup consumed the lead.assigned."""
    lead = new_lead()
    await service.on_assigned(db, event=assigned(lead))
    await tick_until(service, db, L3 + LATER)
    t2 = L3 + timedelta(seconds=10)
    await record(service, db, activity(lead, "contacted", t2 + LATER, actor="rep-b"))
    assert (await store.activities_for(db, lead))[0]["other_owner"] is True
    await service.on_assigned(db, event=assigned(lead, seq=2, at=t2, owner="rep-b"))
    assert await clock_status(db, lead) == ("met", 2)
    assert (await store.activities_for(db, lead))[0]["other_owner"] is False
    await tick_until(service, db, t2 + timedelta(days=1))
    assert {seq for seq, _ in await escalation_levels(db, lead)} == {1}


async def test_old_owners_late_activity_does_not_stop_the_new_clock(
    service: FollowupService, db: AsyncSession
) -> None:
    lead = new_lead()
    t2 = EPOCH + timedelta(minutes=30)
    await service.on_assigned(db, event=assigned(lead, seq=2, at=t2, owner="rep-b"))
    await record(service, db, activity(lead, "contacted", t2 - timedelta(minutes=1)))
    assert await clock_status(db, lead) == ("open", 2)


async def test_the_same_activity_twice_has_one_effect(
    service: FollowupService, db: AsyncSession, registry: object
) -> None:
    lead = new_lead()
    await service.on_assigned(db, event=assigned(lead))
    act = activity(lead, "not_ready", EPOCH + timedelta(minutes=3), reengage_at=DUE)
    assert await record(service, db, act)
    assert not await record(service, db, act)
    assert len(await store.activities_for(db, lead)) == 1
    await tick_until(service, db, DUE + LATER)
    assert len(await outbox_events(db, lead, "lead.reengage")) == 1


async def test_http_path_twice_publishes_the_activity_once(
    service: FollowupService, db: AsyncSession
) -> None:
    lead = new_lead()
    await service.on_assigned(db, event=assigned(lead))
    claims: list[str] = []

    async def claim(session: AsyncSession, *, event_id: str, topic: str) -> bool:
        claims.append(event_id)
        return True

    act = activity(lead, "contacted", EPOCH + timedelta(minutes=1))
    first = await service.submit_activity(db, activity=act, inbox_claim=claim)
    second = await service.submit_activity(db, activity=act, inbox_claim=claim)
    assert first == second == act.activity_id and claims == [act.activity_id]
    published = await outbox_events(db, lead, "lead.activity")
    assert [(t, e["id"]) for t, e in published] == [("test.leads.activity", act.activity_id)]


async def test_http_path_for_an_unknown_lead_is_not_found(
    service: FollowupService, db: AsyncSession
) -> None:
    lead = new_lead()

    async def claim(session: AsyncSession, *, event_id: str, topic: str) -> bool:
        raise AssertionError("must not claim")

    with pytest.raises(LeadNotFound):
        await service.submit_activity(
            db, activity=activity(lead, "contacted", EPOCH), inbox_claim=claim
        )
    assert await store.activities_for(db, lead) == []


async def test_not_ready_reengages_once_at_its_time(
    service: FollowupService, db: AsyncSession
) -> None:
    lead = new_lead()
    when = EPOCH + timedelta(days=30)
    await service.on_assigned(db, event=assigned(lead))
    await record(service, db, activity(lead, "contacted", EPOCH + timedelta(minutes=2)))
    await record(
        service, db, activity(lead, "not_ready", EPOCH + timedelta(minutes=9), reengage_at=when)
    )
    assert await clock_status(db, lead) == ("met", 1)
    await tick_until(service, db, when - timedelta(seconds=1))
    assert await outbox_events(db, lead, "lead.reengage") == []
    await tick_until(service, db, when + timedelta(seconds=1))
    await tick_until(service, db, when + timedelta(days=2))
    events = await outbox_events(db, lead, "lead.reengage")
    assert len(events) == 1
    topic, event = events[0]
    assert topic == "test.leads.escalated"
    assert event["data"]["owner"]["id"] == "rep-a"
    assert event["data"]["reengage_at"].startswith("2001-01-31T09:00:00")


async def test_not_ready_on_an_open_clock_stops_escalation(
    service: FollowupService, db: AsyncSession
) -> None:
    lead = new_lead()
    await service.on_assigned(db, event=assigned(lead))
    await record(
        service, db, activity(lead, "not_ready", EPOCH, reengage_at=EPOCH + timedelta(days=1))
    )
    assert await clock_status(db, lead) == ("nurture", 1)
    await tick_until(service, db, L3 + LATER)
    assert await escalation_levels(db, lead) == []


async def test_converted_cancels_a_pending_reengagement(
    service: FollowupService, db: AsyncSession
) -> None:
    lead = new_lead()
    when = EPOCH + timedelta(days=30)
    await service.on_assigned(db, event=assigned(lead))
    await record(service, db, activity(lead, "not_ready", EPOCH, reengage_at=when))
    await record(service, db, activity(lead, "converted", EPOCH + timedelta(days=2)))
    await tick_until(service, db, when + LATER)
    assert await outbox_events(db, lead, "lead.reengage") == []


async def test_activity_by_someone_else_is_flagged(
    service: FollowupService, db: AsyncSession
) -> None:
    lead = new_lead()
    await service.on_assigned(db, event=assigned(lead, owner="rep-a"))
    await record(service, db, activity(lead, "accepted", EPOCH, actor="rep-a"))
    await record(service, db, activity(lead, "contacted", EPOCH + LATER, actor="rep-z"))
    flags = {a["actor"]: a["other_owner"] for a in await store.activities_for(db, lead)}
    assert flags == {"rep-a": False, "rep-z": True}


async def test_rejected_closes_the_clock_and_the_next_assignment_follows(
    service: FollowupService, db: AsyncSession
) -> None:
    lead = new_lead()
    await service.on_assigned(db, event=assigned(lead))
    await record(service, db, activity(lead, "rejected", EPOCH + timedelta(minutes=1)))
    assert await clock_status(db, lead) == ("rejected", 1)
    await tick_until(service, db, L3 + LATER)
    assert await escalation_levels(db, lead) == []
    t2 = EPOCH + timedelta(minutes=2)
    await service.on_assigned(db, event=assigned(lead, seq=2, at=t2, owner="rep-b"))
    assert await clock_status(db, lead) == ("open", 2)
    await tick_until(service, db, t2 + timedelta(seconds=WINDOW) + LATER)
    assert await escalation_levels(db, lead) == [(2, 1)]


async def test_unknown_lead_activity_is_dead_lettered_after_the_grace_period(
    service: FollowupService, db: AsyncSession
) -> None:
    lead = new_lead()
    act = activity(lead, "contacted", EPOCH)
    await record(service, db, act)
    recorded_at = await db.scalar(
        text("SELECT recorded_at FROM followup.activities WHERE activity_id = :a"),
        {"a": act.activity_id},
    )
    await service.tick(db, now=recorded_at + timedelta(minutes=59))
    assert await outbox_events(db, lead) == []
    await service.tick(db, now=recorded_at + timedelta(hours=1, seconds=1))
    await service.tick(db, now=recorded_at + timedelta(hours=3))
    events = await outbox_events(db, lead)
    assert len(events) == 1
    topic, event = events[0]
    assert topic == "test.leads.dlq" and event["type"] == "lead.activity"
    assert event["batonerrorreason"] == "unknown_lead" and "3600" in event["batonerror"]
    assert LeadActivity.model_validate(event["data"]).activity_id == act.activity_id
    assert [a["state"] for a in await store.activities_for(db, lead)] == ["dead_lettered"]


async def test_assignment_inside_the_grace_period_prevents_the_dead_letter(
    service: FollowupService, db: AsyncSession
) -> None:
    lead = new_lead()
    await record(service, db, activity(lead, "contacted", EPOCH))
    await service.on_assigned(db, event=assigned(lead))
    recorded_at = await db.scalar(
        text("SELECT max(recorded_at) FROM followup.activities WHERE lead_id = :l"), {"l": lead}
    )
    await service.tick(db, now=recorded_at + timedelta(hours=2))
    assert await outbox_events(db, lead, "lead.activity") == []
    assert await clock_status(db, lead) == ("met", 1)


async def test_not_ready_without_reengage_at_is_refused_on_every_path(
    service: FollowupService, db: AsyncSession
) -> None:
    """No lead silently disappears: a nurture without a date is an error (DLQ on Kafka)."""
    lead = new_lead()
    await service.on_assigned(db, event=assigned(lead))
    with pytest.raises(InvalidActivity):
        await record(service, db, activity(lead, "not_ready", EPOCH))
    assert await clock_status(db, lead) == ("open", 1)
