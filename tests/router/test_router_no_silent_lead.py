"""No silent lead: a parked lead is announced (`lead.parked`), a rejection nobody else can take
is parked instead of staying with the rep who rejected it, and a failed reassignment is
retried until someone can take the lead."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.router import handlers
from services.router.service import RouterService
from shared.events import (
    LeadParked,
    derived_id,
    make_event,
    utcnow,
)
from tests.router.conftest import RouterKit

pytestmark = pytest.mark.integration


def _only(kit: RouterKit, *names: str, capacity: int = 1) -> Any:
    """Every rep inactive except ``names`` (capacity ``capacity``)."""

    def change(data: dict[str, Any]) -> None:
        for team in data["teams"]:
            for rep in team["reps"]:
                rep["active"] = rep["id"] in {kit.rep(n) for n in names}
                rep["capacity"] = capacity

    return change


async def _dispatch(kit: RouterKit, service: RouterService, type_: str, data: Any) -> None:
    event = make_event(
        type=type_, source="/test", subject=data.lead_id, data=data, id=derived_id(data, type_)
    )
    async with kit.sessions() as session, session.begin():
        await handlers.build(service)(session, event)


async def _types(kit: RouterKit, lead_id: str) -> list[str]:
    return [e["type"] for e in await kit.events(lead_id)]


async def _status(kit: RouterKit, lead_id: str) -> tuple[str, str | None, int]:
    [row] = await kit.rows(
        "SELECT status, owner_id, assignment_seq FROM router.leads "
        "WHERE lead_id = CAST(:l AS uuid)",
        l=lead_id,
    )
    return row["status"], row["owner_id"], row["assignment_seq"]


async def test_a_lead_nobody_can_take_is_announced_once_then_assigned(kit: RouterKit) -> None:
    service = kit.service(kit.policy(_only(kit, "a")))
    first = kit.lead()
    assert await kit.receive(service, first) == "assigned"
    # Received long ago, so it is first in the parked queue whatever other tests left there.
    waiting = kit.lead(received_at=datetime(2023, 3, 1, tzinfo=UTC))
    assert await kit.receive(service, waiting) == "unassigned"
    assert await kit.receive(service, waiting) == "duplicate"  # a redelivery announces nothing

    [event] = await kit.events(waiting.lead_id)
    assert event["type"] == "lead.parked"
    assert event["id"] == derived_id(waiting.lead_id, "parked", 0)
    parked = LeadParked.model_validate(event["data"])
    assert parked.team.id == "direct" and parked.manager is not None
    assert parked.manager.email == "mia@example.com"
    tier = service.policy.sla_for_tier(parked.tier)
    assert (parked.wait_seconds, parked.clock) == (tier.window_seconds, tier.clock)
    why = {c.rep_id: c.reason for c in parked.considered}
    assert why[kit.rep("a")] == "at capacity (1/1 open leads)"
    assert why[kit.rep("b")] == "inactive" and why[kit.rep("r")] == "inactive"
    assert parked.reason.endswith("no eligible rep")

    async with kit.sessions() as session, session.begin():
        await service.retry_parked(session, now=utcnow())
    assert await _types(kit, waiting.lead_id) == ["lead.parked"]  # still nobody: no new event

    async with kit.sessions() as session, session.begin():
        await service.close(session, lead_id=first.lead_id, status="converted", at=utcnow())
    async with kit.sessions() as session, session.begin():
        assert await service.retry_parked(session, now=utcnow()) >= 1
    assert await _types(kit, waiting.lead_id) == ["lead.parked", "lead.assigned"]
    assert await _status(kit, waiting.lead_id) == ("assigned", kit.rep("a"), 1)
