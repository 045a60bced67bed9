"""An owner whose out-of-office period starts has their unworked leads reassigned at its
start, when the policy asks for it; contacted and closed leads stay; once per period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.router import handlers, out_of_office
from services.router.service import RouterService
from shared.events import LeadActivity, derived_id, make_event, utcnow
from tests.router.conftest import RouterKit

pytestmark = pytest.mark.integration


def _away(kit: RouterKit, *active: str, flag: bool = True) -> Any:
    start = utcnow() - timedelta(minutes=1)

    def change(data: dict[str, Any]) -> None:
        for team in data["teams"]:
            if team["id"] == "direct":
                team["reassign_on_out_of_office"] = flag
            for rep in team["reps"]:
                rep["active"] = rep["id"] in {kit.rep(n) for n in active}
                if rep["id"] == kit.rep("a"):
                    until = start + timedelta(days=3)
                    rep["out_of_office"] = [{"from": start, "until": until}]

    return change


async def _tick(kit: RouterKit, service: RouterService) -> int:
    async with kit.sessions() as session, session.begin():
        return await out_of_office.reassign_out_of_office(service, session, now=utcnow())


async def _owners(kit: RouterKit, lead_ids: list[str]) -> list[tuple[str | None, int]]:
    rows = await kit.rows(
        "SELECT lead_id::text AS id, owner_id, assignment_seq FROM router.leads "
        "WHERE lead_id = ANY(CAST(:ids AS uuid[]))",
        ids=lead_ids,
    )
    found = {r["id"]: (r["owner_id"], r["assignment_seq"]) for r in rows}
    return [found[i] for i in lead_ids]


async def _activity(kit: RouterKit, service: RouterService, lead_id: str, type_: str) -> None:
    data = LeadActivity(lead_id=lead_id, type=type_, at=utcnow(), actor=kit.rep("a"))
    event = make_event(
        type="lead.activity", source="/test", subject=lead_id, data=data, id=derived_id(data)
    )
    async with kit.sessions() as session, session.begin():
        await handlers.build(service)(session, event)


async def test_an_absence_starting_reassigns_the_owners_unworked_leads_once(
    kit: RouterKit,
) -> None:
    a, b = kit.rep("a"), kit.rep("b")
    service = kit.service(kit.policy(_away(kit, "a")))
    before = utcnow() - timedelta(hours=1)  # assigned before the absence started
    leads = [kit.lead() for _ in range(3)]
    for lead in leads:
        assert await kit.receive(service, lead, now=before) == "assigned"
    ids = [lead.lead_id for lead in leads]
    await _activity(kit, service, ids[1], "contacted")  # worked: stays with rep a
    await _activity(kit, service, ids[2], "converted")  # closed: nothing to reassign

    service.holder.policy = kit.policy(_away(kit, "a", "b"))
    assert await _tick(kit, service) == 1
    assert await _owners(kit, ids) == [(b, 2), (a, 1), (a, 1)]
    last = (await kit.events(ids[0]))[-1]
    assert last["type"] == "lead.assigned" and last["data"]["previous_owner"]["id"] == a
    assert last["data"]["reason"].startswith("owner out of office until ")
    assert (await kit.open_leads(a), await kit.open_leads(b)) == (1, 1)

    [handled] = await kit.rows("SELECT leads FROM router.ooo_handled WHERE rep_id = :r", r=a)
    assert handled["leads"] == 1
    assert await _tick(kit, service) == 0  # the same absence is acted on once
    assert await _owners(kit, ids) == [(b, 2), (a, 1), (a, 1)]


async def test_without_the_flag_an_absence_leaves_the_leads(kit: RouterKit) -> None:
    service = kit.service(kit.policy(_away(kit, "a", flag=False)))
    lead = kit.lead()
    assert await kit.receive(service, lead, now=utcnow() - timedelta(hours=1)) == "assigned"
    service.holder.policy = kit.policy(_away(kit, "a", "b", flag=False))
    assert await _tick(kit, service) == 0
    assert await _owners(kit, [lead.lead_id]) == [(kit.rep("a"), 1)]


async def test_an_absent_owners_lead_nobody_can_take_is_parked(kit: RouterKit) -> None:
    service = kit.service(kit.policy(_away(kit, "a")))
    lead = kit.lead()
    assert await kit.receive(service, lead, now=utcnow() - timedelta(hours=1)) == "assigned"
    assert await _tick(kit, service) == 0
    assert await _owners(kit, [lead.lead_id]) == [(None, 1)]
    assert [e["type"] for e in await kit.events(lead.lead_id)] == ["lead.assigned", "lead.parked"]
    assert await kit.open_leads(kit.rep("a")) == 0
    async with kit.sessions() as session, session.begin():  # leave no parked lead behind
        await service.close(session, lead_id=lead.lead_id, status="converted", at=utcnow())
