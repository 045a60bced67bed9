"""Followup's batch handler gives exactly the one-at-a-time outcome: the same mixed sequence of
events (an activity before its assignment, assignments, a reassignment, a contact, a rejection)
is handled once as one batch and once event by event, on two sets of leads, and every row the
service writes is compared. Real PostgreSQL, rolled back after the test."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup import handlers
from services.followup.service import FollowupService
from shared.events import CloudEvent, make_event
from tests.followup.conftest import EPOCH, activity, assigned, new_lead

pytestmark = pytest.mark.integration


def sequence(a: str, b: str) -> list[CloudEvent]:
    """A mixed fetch: A's activity arrives before A's assignment, B is contacted, A is
    reassigned (seq 2) and then rejected by its new owner."""

    def ev(type_: str, data: Any) -> CloudEvent:
        return make_event(type=type_, source="test", subject=data.lead_id, data=data)

    return [
        ev("lead.activity", activity(a, "contacted", EPOCH + timedelta(minutes=1))),
        ev("lead.assigned", assigned(a)),
        ev("lead.assigned", assigned(b, owner="rep-b")),
        ev("lead.activity", activity(b, "contacted", EPOCH + timedelta(minutes=5), actor="rep-b")),
        ev("lead.assigned", assigned(a, seq=2, at=EPOCH + timedelta(hours=2), owner="rep-c")),
        ev("lead.activity", activity(a, "rejected", EPOCH + timedelta(hours=3), actor="rep-c")),
    ]


async def state(db: AsyncSession, leads: dict[str, str]) -> dict[str, Any]:
    """Everything followup keeps for these leads, with lead ids replaced by their role."""
    out: dict[str, Any] = {}
    queries = {
        "clocks": "SELECT lead_id::text, assignment_seq, status, next_level, next_fire_at, "
        "contacted_at, closed_at, owner->>'id' FROM followup.clocks "
        "WHERE lead_id::text = ANY(:ids)",
        "windows": "SELECT lead_id::text, assignment_seq, tier, started_at, due_at, "
        "touched_at FROM followup.windows WHERE lead_id::text = ANY(:ids)",
        "activities": "SELECT lead_id::text, type, at, actor, state, other_owner "
        "FROM followup.activities WHERE lead_id::text = ANY(:ids)",
        "outbox": "SELECT key, topic FROM followup.outbox WHERE key = ANY(:ids)",
    }
    for name, sql in queries.items():
        rows = (await db.execute(text(sql), {"ids": list(leads)})).all()
        out[name] = sorted(
            tuple(leads.get(str(v), v) if i == 0 else v for i, v in enumerate(r)) for r in rows
        )
    return out


def runs(c: str, d: str, e: str, f: str) -> list[CloudEvent]:
    """Assignments back to back, so the batch starts them together: C twice in a row (the
    second run must see the first), D's newer assignment before its older one (stale), E's
    activity recorded before E is assigned next to F, and C's first assignment redelivered."""

    def ev(type_: str, data: Any) -> CloudEvent:
        return make_event(type=type_, source="test", subject=data.lead_id, data=data)

    later = EPOCH + timedelta(hours=1)
    return [
        ev("lead.activity", activity(e, "contacted", EPOCH + timedelta(minutes=1))),
        ev("lead.assigned", assigned(c)),
        ev("lead.assigned", assigned(c, seq=2, at=later, owner="rep-c")),
        ev("lead.assigned", assigned(d, seq=2, at=later, owner="rep-c")),
        ev("lead.assigned", assigned(d)),
        ev("lead.assigned", assigned(e)),
        ev("lead.assigned", assigned(f, owner="rep-b")),
        ev("lead.assigned", assigned(c)),
    ]


@pytest.mark.parametrize(
    ("make", "wakes"), [(sequence, 3), (runs, 5)], ids=["interleaved", "back-to-back"]
)
async def test_a_batch_equals_one_event_at_a_time(
    service: FollowupService,
    db: AsyncSession,
    make: Callable[..., list[CloudEvent]],
    wakes: int,
) -> None:
    woken: dict[str, list[datetime | None]] = {"one": [], "many": []}
    one = handlers.build(service, woken["one"].append)
    many = handlers.build_many(service, woken["many"].append)

    arity = len(inspect.signature(make).parameters)
    roles = "ABCD"[:arity]
    first, second = [new_lead() for _ in roles], [new_lead() for _ in roles]
    for event in make(*first):
        await one(db, event)
    await many(db, make(*second))

    by_one = await state(db, dict(zip(first, roles, strict=True)))
    by_many = await state(db, dict(zip(second, roles, strict=True)))
    assert by_one["clocks"], "the sequence started no clock: the test would prove nothing"
    assert by_one["activities"], "no activity was recorded: the test would prove nothing"
    assert by_many == by_one
    assert woken["many"] == woken["one"]
    assert len(woken["one"]) == wakes  # one per clock started; stale assignments start none
    if make is runs:  # and the shared outcome is the right one
        clocks = {r[0]: r for r in by_one["clocks"]}  # role, seq, status, …, contacted_at, …
        assert (clocks["A"][1], clocks["A"][7]) == (2, "rep-c")  # C: the newer assignment
        assert (clocks["B"][1], clocks["B"][7]) == (2, "rep-c")  # D: the stale one ignored
        assert clocks["C"][5] is not None  # E: its earlier contact applied to its clock
        assert clocks["D"][5] is None
