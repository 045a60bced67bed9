"""The set-based tick: a fixed number of statements however many clocks fire, every level
fired once with one outbox row (its derived id), and a re-fire publishes nothing twice.

Runs inside the rolled-back `db` transaction; times are at the module epoch (far in the past),
so only this test's clocks are ever due.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.service import FollowupService
from shared.events import CloudEvent, LeadEscalated, Person, derived_id, make_event
from tests.followup.conftest import EPOCH, WINDOW, assigned, new_lead

pytestmark = pytest.mark.integration

MANY = 1_500
DUE = EPOCH + timedelta(seconds=WINDOW)
L2 = DUE + timedelta(seconds=900)  # the example policy's level 2
NOW = DUE + timedelta(seconds=5)  # level 1 is due for clocks assigned at EPOCH, level 2 is not
EARLIER = b'{"published": "by an earlier tick"}'


@contextmanager
def counting_statements(engine: Engine) -> Iterator[list[str]]:
    """Every statement sent to the database while inside (an executemany counts once)."""
    seen: list[str] = []

    def on_execute(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


def _at(i: int) -> timedelta:
    """Lead i is assigned (and due) i ms after the first: a distinct firing order."""
    return timedelta(milliseconds=i)


async def _assign(service: FollowupService, db: AsyncSession, n: int, *, day: int = 0) -> list[str]:
    leads = [new_lead() for _ in range(n)]
    for i, lead in enumerate(leads):
        at = EPOCH + timedelta(days=day) + _at(i)
        assert await service.on_assigned(db, event=assigned(lead, at=at)) is not None
    return leads


async def _escalated_outbox(db: AsyncSession, leads: list[str]) -> list[tuple[str, str, Any]]:
    rows = await db.execute(
        text(
            "SELECT event_id, topic, payload FROM followup.outbox WHERE key = ANY(:ids) ORDER BY id"
        ),
        {"ids": leads},
    )
    return [(r[0], r[1], orjson.loads(r[2])) for r in rows]


async def _clock_states(db: AsyncSession, leads: list[str]) -> list[tuple[str, int, Any]]:
    """(status, next level, next fire time) of each lead's clock, in the order of `leads`."""
    rows = await db.execute(
        text(
            "SELECT lead_id::text, status, next_level, next_fire_at FROM followup.clocks "
            "WHERE lead_id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": leads},
    )
    by_lead = {r[0]: (r[1], r[2], r[3]) for r in rows}
    return [by_lead[lead] for lead in leads]


def _at_level_2(n: int) -> list[tuple[str, int, Any]]:
    return [("open", 2, L2 + _at(i)) for i in range(n)]


def _expected_event(lead: str) -> CloudEvent:
    """The level-1 event as the per-clock ticker built it (same id, same payload)."""
    a = assigned(lead)
    return make_event(
        type="lead.escalated",
        source="/baton/followup",
        subject=lead,
        data=LeadEscalated(
            lead_id=lead,
            assignment_seq=1,
            level=1,
            action="remind_owner",
            owner=Person.model_validate(a.owner.model_dump(mode="json")),
            manager=a.manager,
            team_id="emea",
            due_at=DUE,
            seconds_overdue=5.0,
            escalated_at=NOW,
        ),
        id=derived_id(lead, "escalated", 1, 1),
        time=NOW,
    )


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_a_tick_of_1500_clocks_is_a_few_statements_and_fires_each_once(
    service: FollowupService, db: AsyncSession, registry: CollectorRegistry
) -> None:
    engine = (await db.connection()).sync_engine
    # A small tick first (a day earlier, so the big batch is not due yet), to compare with.
    few = await _assign(service, db, 10, day=-1)
    with counting_statements(engine) as small:
        assert await service.tick(db, now=NOW - timedelta(days=1), limit=2_000) == 10
    for _ in range(2):  # walk them to the end of the chain, so they are not due at NOW
        assert await service.tick(db, now=NOW - timedelta(hours=23)) == 10

    leads = await _assign(service, db, MANY)
    with counting_statements(engine) as large:
        assert await service.tick(db, now=NOW, limit=2_000) == MANY

    # claim clocks, fire (escalations + outbox + clock updates), claim re-engagements,
    # claim stale activities: the same statements for 10 clocks as for 1,500.
    assert len(large) == len(small) <= 5, large
    assert sum("followup.escalations" in s for s in large) == 1

    rows = await db.execute(
        text(
            "SELECT lead_id::text, assignment_seq, level, action, fired_at, seconds_late "
            "FROM followup.escalations WHERE lead_id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": leads},
    )
    escalations = {(r[0], r[1], r[2]): (r[3], r[4], r[5]) for r in rows}
    assert escalations == {
        (lead, 1, 1): ("remind_owner", NOW, (NOW - DUE - _at(i)).total_seconds())
        for i, lead in enumerate(leads)
    }

    outbox = await _escalated_outbox(db, leads)
    assert len(outbox) == MANY
    assert {event_id for event_id, _, _ in outbox} == {
        derived_id(lead, "escalated", 1, 1) for lead in leads
    }
    assert {topic for _, topic, _ in outbox} == {"test.leads.escalated"}
    assert [p["subject"] for _, _, p in outbox] == leads  # in firing (next_fire_at) order
    expected = _expected_event(leads[0])
    assert outbox[0][2] == orjson.loads(expected.to_bytes())

    assert await _clock_states(db, leads) == _at_level_2(MANY)
    assert _sample(
        registry, "baton_escalations_total", level="1", action="remind_owner", team="emea"
    ) == MANY + len(few)
    assert _sample(registry, "baton_escalation_lateness_seconds_count") == MANY + 3 * len(few)

    # Nothing more is due at NOW: a tick claims nothing and writes nothing.
    with counting_statements(engine) as idle:
        assert await service.tick(db, now=NOW) == 0
    assert not any("followup.escalations" in s for s in idle)


async def test_a_re_fire_writes_no_second_outbox_row_and_still_advances_the_clock(
    service: FollowupService, db: AsyncSession, registry: CollectorRegistry
) -> None:
    leads = await _assign(service, db, 300)
    # Level 1 already recorded for the first 100 (a tick that fired them, and whose clock
    # update is what we replay); the first 50 of those also have their outbox row already.
    refired, published = leads[:100], leads[:50]
    await db.execute(
        text(
            "INSERT INTO followup.escalations (lead_id, assignment_seq, level, action, team_id, "
            "due_at, fired_at, seconds_late) SELECT l, 1, 1, 'remind_owner', 'emea', :due, "
            ":due, 0 FROM unnest(CAST(:ids AS uuid[])) AS l"
        ),
        {"ids": refired, "due": DUE},
    )
    await db.execute(
        text(
            "INSERT INTO followup.outbox (event_id, topic, key, payload) "
            "SELECT i, 'test.leads.escalated', k, CAST(:marker AS bytea) "
            "FROM unnest(CAST(:ev AS text[]), CAST(:ids AS text[])) AS u (i, k)"
        ),
        {
            "ids": published,
            "ev": [derived_id(lead, "escalated", 1, 1) for lead in published],
            "marker": EARLIER,
        },
    )

    assert await service.tick(db, now=NOW) == 200

    outbox = await _escalated_outbox(db, leads)
    ids = [event_id for event_id, _, _ in outbox]
    assert len(ids) == len(set(ids)) == 250  # 50 from before + 200 new, none for the other 50
    assert set(ids) == {derived_id(lead, "escalated", 1, 1) for lead in published + leads[100:]}
    earlier = await db.execute(
        text("SELECT count(*) FROM followup.outbox WHERE key = ANY(:ids) AND payload = :marker"),
        {"ids": published, "marker": EARLIER},
    )
    assert earlier.scalar() == 50  # untouched
    fired_at = await db.execute(
        text(
            "SELECT fired_at, count(*) FROM followup.escalations "
            "WHERE lead_id = ANY(CAST(:ids AS uuid[])) GROUP BY fired_at ORDER BY fired_at"
        ),
        {"ids": leads},
    )
    assert [tuple(r) for r in fired_at] == [(DUE, 100), (NOW, 200)]
    assert await _clock_states(db, leads) == _at_level_2(300)
    assert _sample(registry, "baton_escalation_lateness_seconds_count") == 200

    # The same tick again (a redelivery of the whole batch): nothing is due, nothing is written.
    assert await service.tick(db, now=NOW) == 0
    assert len(await _escalated_outbox(db, leads)) == 250


async def test_a_full_tick_says_so_and_the_rest_fires_next_time(
    service: FollowupService, db: AsyncSession
) -> None:
    leads = await _assign(service, db, 15)
    first = await service.run_tick(db, now=NOW, limit=10)
    assert (first.fired, first.full) == (10, True)
    second = await service.run_tick(db, now=NOW, limit=10)
    assert (second.fired, second.full) == (5, False)
    assert len(await _escalated_outbox(db, leads)) == 15
