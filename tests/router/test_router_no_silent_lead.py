"""No silent lead: a parked lead is announced (`lead.parked`), a rejection nobody else can take
is parked instead of staying with the rep who rejected it, and a failed reassignment is
retried until someone can take the lead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from services.router import handlers, recovery
from services.router.service import RouterService
from shared.events import (
    LeadActivity,
    LeadEscalated,
    LeadParked,
    Person,
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


def _rejection(lead_id: str, actor: str) -> LeadActivity:
    return LeadActivity(
        lead_id=lead_id, type="rejected", at=utcnow(), actor=actor, reason="not_icp"
    )


def _reassign_escalation(lead_id: str, seq: int, owner: str) -> LeadEscalated:
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


async def _retry(kit: RouterKit, service: RouterService) -> int:
    async with kit.sessions() as session, session.begin():
        return await recovery.retry_reassignments(service, session, now=utcnow())


async def _pending(kit: RouterKit, lead_id: str) -> list[Any]:
    return await kit.rows(
        "SELECT seq, exclude_rep FROM router.pending_reassignments "
        "WHERE lead_id = CAST(:l AS uuid)",
        l=lead_id,
    )


async def test_a_rejection_nobody_else_can_take_is_parked_then_reassigned(
    kit: RouterKit,
) -> None:
    """Retries are global (other tests' pending leads are retried too): each policy below
    leaves the reps whose loads are checked unable to take anyone else's lead."""
    a, registry = kit.rep("a"), CollectorRegistry()
    service = kit.service(kit.policy(_only(kit, "a", capacity=10)), registry)
    lead = kit.lead()
    assert await kit.receive(service, lead) == "assigned"
    await _dispatch(kit, service, "lead.activity", _rejection(lead.lead_id, a))

    assert await _status(kit, lead.lead_id) == ("parked", None, 1)  # not left with rep a
    assert await kit.open_leads(a) == 0
    events = await kit.events(lead.lead_id)
    assert [e["type"] for e in events] == ["lead.assigned", "lead.parked"]
    assert events[1]["id"] == derived_id(lead.lead_id, "parked", 1)
    parked = LeadParked.model_validate(events[1]["data"])
    assert parked.reason.startswith("rejected by owner: not_icp")
    assert {c.rep_id: c.reason for c in parked.considered}[a] == "previous owner"
    assert [dict(p) for p in await _pending(kit, lead.lead_id)] == [{"seq": 1, "exclude_rep": a}]

    service.holder.policy = kit.policy(_only(kit))  # nobody at all
    await _retry(kit, service)
    assert (registry.get_sample_value("baton_reassignments_pending") or 0) >= 1
    assert (registry.get_sample_value("baton_leads_parked") or 0) >= 1
    assert await _status(kit, lead.lead_id) == ("parked", None, 1)  # still nobody: no trace
    assert len(await kit.events(lead.lead_id)) == 2

    service.holder.policy = kit.policy(_only(kit, "b", capacity=1000))  # rep b is back
    assert await _retry(kit, service) >= 1
    assert await _status(kit, lead.lead_id) == ("assigned", kit.rep("b"), 2)
    assert await _pending(kit, lead.lead_id) == []
    last = (await kit.events(lead.lead_id))[-1]
    assert last["type"] == "lead.assigned" and last["data"]["assignment_seq"] == 2
    assert last["data"]["previous_owner"]["id"] == a
    assert await kit.open_leads(a) == 0


async def test_a_failed_escalation_reassignment_stays_with_its_owner_and_is_retried(
    kit: RouterKit,
) -> None:
    a, c = kit.rep("a"), kit.rep("c")
    service = kit.service(kit.policy(_only(kit, "a")))  # rep a full with this one lead
    lead = kit.lead()
    assert await kit.receive(service, lead) == "assigned"
    await _dispatch(kit, service, "lead.escalated", _reassign_escalation(lead.lead_id, 1, a))
    assert await _status(kit, lead.lead_id) == ("assigned", a, 1)  # someone still has it
    assert await kit.open_leads(a) == 1
    assert len(await _pending(kit, lead.lead_id)) == 1

    def c_is_back(data: dict[str, Any]) -> None:
        _only(kit, "a", "c")(data)
        for team in data["teams"]:
            for rep in team["reps"]:
                rep["capacity"] = 1000 if rep["id"] == c else 1

    service.holder.policy = kit.policy(c_is_back)
    assert await _retry(kit, service) >= 1
    assert await _status(kit, lead.lead_id) == ("assigned", c, 2)
    [_, second] = await kit.assignments(lead.lead_id)
    assert second["previous_owner_id"] == a
    last = (await kit.events(lead.lead_id))[-1]
    assert last["type"] == "lead.assigned" and last["data"]["reason"] == "SLA escalation level 3"
    assert await kit.open_leads(a) == 0  # older pending leads went first, while a was full
    assert await _pending(kit, lead.lead_id) == []


async def test_a_parked_lead_closed_meanwhile_is_not_reassigned(kit: RouterKit) -> None:
    a = kit.rep("a")
    service = kit.service(kit.policy(_only(kit, "a", capacity=10)))
    lead = kit.lead()
    assert await kit.receive(service, lead) == "assigned"
    await _dispatch(kit, service, "lead.activity", _rejection(lead.lead_id, a))
    async with kit.sessions() as session, session.begin():
        await service.close(
            session, lead_id=lead.lead_id, status="closed_disqualified", at=utcnow()
        )
    service.holder.policy = kit.policy(_only(kit, "a", "b", capacity=10))
    await _retry(kit, service)
    assert await _status(kit, lead.lead_id) == ("closed_disqualified", None, 1)
    assert await _pending(kit, lead.lead_id) == []
    assert await kit.open_leads(a) == 0


async def test_a_new_touch_on_a_parked_lead_is_merged_into_it(kit: RouterKit) -> None:
    """One contact, one owner: the touch waits with the parked lead, not routed on its own."""
    a = kit.rep("a")
    service = kit.service(kit.policy(_only(kit, "a", capacity=10)))
    lead = kit.lead()
    assert await kit.receive(service, lead) == "assigned"
    await _dispatch(kit, service, "lead.activity", _rejection(lead.lead_id, a))
    assert await _status(kit, lead.lead_id) == ("parked", None, 1)

    touch = kit.lead(email=lead.contact.email)
    assert await kit.receive(service, touch) == "merged"  # rep a could take it: not routed
    [merged] = await kit.events(touch.lead_id)
    assert merged["type"] == "lead.merged" and merged["data"]["into_lead_id"] == lead.lead_id
    assert merged["data"]["owner"] is None  # nobody has it yet
    assert await kit.open_leads(a) == 0
    async with kit.sessions() as session, session.begin():  # leave no parked lead behind
        await service.close(session, lead_id=lead.lead_id, status="converted", at=utcnow())
