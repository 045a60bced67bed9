"""A lead nobody can take is parked, not lost: it is routed once a rep frees up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from shared.events import utcnow

pytestmark = pytest.mark.integration


async def test_parked_lead_is_routed_when_capacity_frees(kit: Any) -> None:
    def one_seat(data: dict[str, Any]) -> None:
        for team in data["teams"]:
            for rep in team["reps"]:
                rep["active"] = rep["id"] == kit.rep("a")
                rep["capacity"] = 1

    registry = CollectorRegistry()
    service = kit.service(kit.policy(one_seat), registry)
    first = kit.lead()
    assert await kit.receive(service, first) == "assigned"
    # Received long ago, so it is first in the parked queue whatever other tests left there.
    waiting = kit.lead(received_at=datetime(2023, 3, 1, tzinfo=UTC))
    assert await kit.receive(service, waiting) == "unassigned"

    async with kit.sessions() as session, session.begin():
        await service.retry_parked(session, now=utcnow())
    assert await kit.assignments(waiting.lead_id) == []
    decisions = await kit.rows(
        "SELECT kind FROM router.decisions WHERE lead_id = CAST(:l AS uuid)", l=waiting.lead_id
    )
    assert [d["kind"] for d in decisions] == ["unassigned"], "a failed retry must leave no trace"

    async with kit.sessions() as session, session.begin():
        await service.close(session, lead_id=first.lead_id, status="converted", at=utcnow())
    async with kit.sessions() as session, session.begin():
        moved = await service.retry_parked(session, now=utcnow())
    assert moved >= 1
    [assignment] = await kit.assignments(waiting.lead_id)
    assert assignment["owner_id"] == kit.rep("a") and assignment["seq"] == 1
    events = await kit.events(waiting.lead_id)
    assert [e["type"] for e in events] == ["lead.parked", "lead.assigned"]  # one park episode
    assert await kit.open_leads(kit.rep("a")) == 1
    [row] = await kit.rows(
        "SELECT status FROM router.leads WHERE lead_id = CAST(:l AS uuid)", l=waiting.lead_id
    )
    assert row["status"] == "assigned"
