"""Reassignment through the router's consumers: escalation `reassign` and a rejected lead."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.router import handlers
from services.router.service import RouterService
from shared.events import (
    LeadActivity,
    LeadAssigned,
    LeadEscalated,
    Person,
    derived_id,
    make_event,
    utcnow,
)
from tests.router.conftest import RouterKit

pytestmark = pytest.mark.integration


async def _dispatch(kit: RouterKit, service: RouterService, type_: str, data: Any) -> None:
    event = make_event(
        type=type_, source="/test", subject=data.lead_id, data=data, id=derived_id(data, type_)
    )
    async with kit.sessions() as session, session.begin():
        await handlers.build(service)(session, event)


def _escalation(lead_id: str, seq: int, owner: str) -> LeadEscalated:
    now = utcnow()
    return LeadEscalated(
        lead_id=lead_id,
        assignment_seq=seq,
        level=3,
        action="reassign",
        owner=Person(id=owner, name=owner, email=f"{owner}@example.com"),
        team_id="direct",
        due_at=now - timedelta(minutes=30),
        seconds_overdue=1800.0,
        escalated_at=now,
    )


def _rejection(lead_id: str, actor: str, reason: str | None = None) -> LeadActivity:
    return LeadActivity(lead_id=lead_id, type="rejected", at=utcnow(), actor=actor, reason=reason)


async def _assigned(kit: RouterKit, lead_id: str) -> list[LeadAssigned]:
    return [
        LeadAssigned.model_validate(e["data"])
        for e in await kit.events(lead_id)
        if e["type"] == "lead.assigned"
    ]


async def test_escalation_reassigns_to_another_rep_and_stale_ones_are_ignored(
    kit: RouterKit,
) -> None:
    service = kit.service()
    lead = kit.lead()
    assert await kit.receive(service, lead) == "assigned"
    [first] = await kit.assignments(lead.lead_id)
    old = first["owner_id"]
    assert await kit.open_leads(old) == 1

    await _dispatch(kit, service, "lead.escalated", _escalation(lead.lead_id, 1, old))
    rows = await kit.assignments(lead.lead_id)
    assert [r["seq"] for r in rows] == [1, 2]
    new = rows[1]["owner_id"]
    assert new != old and rows[1]["previous_owner_id"] == old
    assert rows[1]["due_at"] > first["due_at"]  # a fresh SLA from the reassignment
    assert (await kit.open_leads(old), await kit.open_leads(new)) == (0, 1)

    second = (await _assigned(kit, lead.lead_id))[-1]
    assert second.assignment_seq == 2 and second.owner.id == new
    assert second.previous_owner is not None and second.previous_owner.id == old
    assert second.reason == "SLA escalation level 3"
    assert any(c.rep_id == old and c.reason == "previous owner" for c in second.considered)

    # the first assignment's escalation arriving late (or again): ignored
    await _dispatch(kit, service, "lead.escalated", _escalation(lead.lead_id, 1, old))
    assert len(await kit.assignments(lead.lead_id)) == 2
    assert len(await _assigned(kit, lead.lead_id)) == 2
    decisions = await kit.rows(
        "SELECT kind FROM router.decisions WHERE lead_id = CAST(:l AS uuid) ORDER BY id",
        l=lead.lead_id,
    )
    assert [d["kind"] for d in decisions] == ["assigned", "reassigned"]


async def test_rejected_lead_goes_to_another_rep_and_a_late_rejection_is_ignored(
    kit: RouterKit,
) -> None:
    service = kit.service()
    lead = kit.lead()
    assert await kit.receive(service, lead) == "assigned"
    old = (await kit.assignments(lead.lead_id))[0]["owner_id"]

    await _dispatch(kit, service, "lead.activity", _rejection(lead.lead_id, old, "not my region"))
    rows = await kit.assignments(lead.lead_id)
    assert [r["seq"] for r in rows] == [1, 2]
    new = rows[1]["owner_id"]
    assert new != old
    event = (await _assigned(kit, lead.lead_id))[-1]
    assert event.previous_owner is not None and event.previous_owner.id == old
    assert event.reason == "rejected by owner: not my region"
    assert (await kit.open_leads(old), await kit.open_leads(new)) == (0, 1)

    # the earlier owner rejecting again (a retry from their tool) does not move it from `new`
    await _dispatch(kit, service, "lead.activity", _rejection(lead.lead_id, old))
    assert len(await kit.assignments(lead.lead_id)) == 2


async def test_reassignment_without_another_eligible_rep_keeps_the_owner(kit: RouterKit) -> None:
    def alone(data: dict[str, Any]) -> None:
        data["teams"] = [data["teams"][0]]
        data["teams"][0]["reps"] = data["teams"][0]["reps"][:1]
        data["fallback_team"] = "direct"
        data["rules"] = [data["rules"][0], data["rules"][-1]]
        data["accounts"] = []

    service = kit.service(kit.policy(alone))
    lead = kit.lead()
    assert await kit.receive(service, lead) == "assigned"
    await _dispatch(kit, service, "lead.escalated", _escalation(lead.lead_id, 1, kit.rep("a")))
    assert [r["owner_id"] for r in await kit.assignments(lead.lead_id)] == [kit.rep("a")]
    assert await kit.open_leads(kit.rep("a")) == 1
    kinds = await kit.rows(
        "SELECT kind FROM router.decisions WHERE lead_id = CAST(:l AS uuid) ORDER BY id",
        l=lead.lead_id,
    )
    assert [k["kind"] for k in kinds] == ["assigned", "reassign_failed"]
    async with kit.sessions() as session, session.begin():  # its retry would outlive the test
        await service.close(session, lead_id=lead.lead_id, status="converted", at=utcnow())


async def test_outcome_activity_closes_the_lead_and_frees_capacity(kit: RouterKit) -> None:
    service = kit.service()
    lead = kit.lead()
    assert await kit.receive(service, lead) == "assigned"
    owner = (await kit.assignments(lead.lead_id))[0]["owner_id"]
    won = LeadActivity(lead_id=lead.lead_id, type="converted", at=utcnow(), actor=owner)
    await _dispatch(kit, service, "lead.activity", won)
    assert await kit.open_leads(owner) == 0
    # a closed lead is not reassigned by a late escalation
    await _dispatch(kit, service, "lead.escalated", _escalation(lead.lead_id, 1, owner))
    assert len(await kit.assignments(lead.lead_id)) == 1
