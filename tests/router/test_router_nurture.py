"""The nurture track on the real stack: a rule nurtures a cold lead, a second touch of the
same contact hands it to sales, and `lead.reengage` routes a nurtured or not-ready lead afresh
(through the consumer, its inbox and Kafka in the last test)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from services.router import handlers, recovery, views
from services.router.app import create_app
from services.router.service import RouterService
from shared.events import (
    Engagement,
    Lead,
    LeadActivity,
    LeadAssigned,
    LeadNurtured,
    LeadParked,
    LeadReengage,
    derived_id,
    make_event,
    utcnow,
)
from shared.kafka import make_producer
from shared.settings import Settings
from tests.conftest import EventReader
from tests.router.conftest import RouterKit

pytestmark = pytest.mark.integration

COLD = {"id": "cold", "when": {"field": "score", "op": "lt", "value": 40}, "nurture": True}


def nurturing(data: dict[str, Any]) -> None:
    """Below 40 points (stage lead) marketing keeps the lead; the rest goes to team direct."""
    data["rules"].insert(-1, COLD)
    data["nurture"] = {"reengage_after_days": 30}


async def _dispatch(kit: RouterKit, service: RouterService, type_: str, data: Any) -> None:
    event = make_event(
        type=type_, source="/test", subject=data.lead_id, data=data, id=derived_id(data, type_)
    )
    async with kit.sessions() as session, session.begin():
        await handlers.build(service)(session, event)


def _reengage(lead_id: str) -> LeadReengage:
    return LeadReengage(lead_id=lead_id, owner=None, reengage_at=utcnow())


async def _row(kit: RouterKit, lead_id: str) -> Any:
    [row] = await kit.rows(
        "SELECT status, owner_id, assignment_seq, score, stage, merged_into::text AS into, "
        "closed_at FROM router.leads WHERE lead_id = CAST(:l AS uuid)",
        l=lead_id,
    )
    return row


async def _kinds(kit: RouterKit, lead_id: str) -> list[str]:
    rows = await kit.rows(
        "SELECT kind FROM router.decisions WHERE lead_id = CAST(:l AS uuid) ORDER BY id",
        l=lead_id,
    )
    return [r["kind"] for r in rows]


async def test_a_nurtured_lead_goes_to_sales_when_a_new_touch_crosses_the_threshold(
    kit: RouterKit,
) -> None:
    registry = CollectorRegistry()
    service = kit.service(kit.policy(nurturing), registry=registry)
    first = kit.lead(company_size=800)  # 25 + 10 (business e-mail) = 35: cold
    assert await kit.receive(service, first) == "nurtured"
    row = await _row(kit, first.lead_id)
    assert (row["status"], row["owner_id"], row["assignment_seq"]) == ("nurtured", None, 0)
    assert not await kit.assignments(first.lead_id)
    [event] = await kit.events(first.lead_id)
    assert event["type"] == "lead.nurtured" and event["id"] == derived_id(
        first.lead_id, "nurtured", 1
    )
    nurtured = LeadNurtured.model_validate(event["data"])
    assert nurtured.score == 35 and nurtured.stage == "lead" and nurtured.routing.rule_id == "cold"
    assert nurtured.reengage_at - nurtured.nurtured_at == timedelta(days=30)

    # the same contact asks for a demo: 35 + 40 = 75 on everything now known
    touch = kit.lead(email=first.contact.email, engagement=Engagement(demo_request=True))
    assert await kit.receive(service, touch) == "handoff"
    assert await kit.receive(service, touch) == "duplicate"  # redelivery: nothing new
    row = await _row(kit, first.lead_id)
    assert (row["status"], row["assignment_seq"], row["score"], row["stage"]) == (
        "assigned", 1, 75, "sql",
    )  # fmt: skip
    owner = row["owner_id"]
    assert owner in {kit.rep("a"), kit.rep("b"), kit.rep("c")}
    assert await kit.open_leads(owner) == 1
    assert (await _row(kit, touch.lead_id))["into"] == first.lead_id
    events = await kit.events(first.lead_id)
    assert [e["type"] for e in events] == ["lead.nurtured", "lead.assigned"]
    assigned = LeadAssigned.model_validate(events[1]["data"])
    assert assigned.owner.id == owner and assigned.assignment_seq == 1
    assert assigned.reason == "handoff: score 75 (sql) reached sales on a new touch (rule default)"
    assert assigned.lead.engagement.demo_request and assigned.lead.company_size == 800
    [merged] = await kit.events(touch.lead_id)
    assert merged["type"] == "lead.merged" and merged["data"]["owner"] is None
    assert await _kinds(kit, first.lead_id) == ["nurtured", "handoff"]

    # a third touch now merges into the assigned lead as before, with its owner
    again = kit.lead(email=first.contact.email)
    assert await kit.receive(service, again) == "merged"
    [merged] = await kit.events(again.lead_id)
    assert merged["data"]["owner"]["id"] == owner

    def value(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    form = {"channel": "form", "source": "website-demo"}
    decided = "baton_leads_decided_total"
    assert value(decided, outcome="nurtured", stage="lead", **form) == 1
    assert value(decided, outcome="handoff", stage="sql", **form) == 1


async def test_reengage_routes_a_nurtured_lead_and_gives_a_not_ready_one_back_to_its_owner(
    kit: RouterKit,
) -> None:
    service = kit.service(kit.policy(nurturing))
    cold = kit.lead()
    assert await kit.receive(service, cold) == "nurtured"
    await _dispatch(kit, service, "lead.reengage", _reengage(cold.lead_id))
    [assignment] = await kit.assignments(cold.lead_id)
    assert assignment["seq"] == 1 and assignment["owner_id"]
    [event] = [e for e in await kit.events(cold.lead_id) if e["type"] == "lead.assigned"]
    assigned = LeadAssigned.model_validate(event["data"])
    assert assigned.reason == "reengaged" and assigned.assignment_seq == 1
    assert assigned.routing.rule_id == "default" and assigned.sla.due_at > utcnow()
    assert any(t.rule_id == "cold" and not t.matched for t in assigned.rules_tried)
    assert (await _row(kit, cold.lead_id))["status"] == "assigned"
    await _dispatch(kit, service, "lead.reengage", _reengage(cold.lead_id))  # once only
    assert len(await kit.assignments(cold.lead_id)) == 1
    assert await _kinds(kit, cold.lead_id) == ["nurtured", "reengaged"]

    hot = kit.lead(company_size=800, engagement=Engagement(demo_request=True))
    assert await kit.receive(service, hot) == "assigned"
    owner = (await kit.assignments(hot.lead_id))[0]["owner_id"]
    load = await kit.open_leads(owner)
    not_ready = LeadActivity(
        lead_id=hot.lead_id, type="not_ready", at=utcnow(), actor=owner,
        reengage_at=utcnow() + timedelta(days=60),
    )  # fmt: skip
    await _dispatch(kit, service, "lead.activity", not_ready)
    assert (await _row(kit, hot.lead_id))["status"] == "nurture"
    assert await kit.open_leads(owner) == load - 1
    await _dispatch(kit, service, "lead.reengage", _reengage(hot.lead_id))
    rows = await kit.assignments(hot.lead_id)
    assert [(r["seq"], r["owner_id"]) for r in rows] == [(1, owner), (2, owner)]
    assert rows[1]["due_at"] > rows[0]["due_at"]  # a fresh SLA
    row = await _row(kit, hot.lead_id)
    assert (row["status"], row["closed_at"]) == ("assigned", None)
    assert await kit.open_leads(owner) == load
    event = [e for e in await kit.events(hot.lead_id) if e["type"] == "lead.assigned"][-1]
    again = LeadAssigned.model_validate(event["data"])
    assert (again.reason, again.assignment_seq, again.owner.id) == ("reengaged", 2, owner)
    assert again.routing.strategy == "previous_owner"


async def test_over_kafka_a_touch_hands_off_and_a_redelivered_reengage_assigns_once(
    kafka_settings: Settings, kit: RouterKit, tmp_path: Path
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(kit.policy_data(nurturing), sort_keys=False))
    token = hashlib.sha256(b"unused").hexdigest()
    settings = kafka_settings.model_copy(
        update={"policy_path": path, "api_tokens": f"test:admin:{token}"}
    )
    topics = settings.topics
    cold, other = kit.lead(company_size=800), kit.lead()
    touch = kit.lead(email=cold.contact.email, engagement=Engagement(demo_request=True))
    app = create_app(settings)
    producer = make_producer(settings)
    await producer.start()

    async def send(topic: str, type_: str, data: Lead | LeadReengage, event_id: str) -> None:
        event = make_event(type=type_, source="/test", subject=data.lead_id, data=data, id=event_id)
        await producer.send_and_wait(topic, event.to_bytes(), key=data.lead_id.encode())

    def on(lead_id: str, type_: str) -> Any:
        return lambda e: e.subject == lead_id and e.type == type_

    try:
        async with app.router.lifespan_context(app), EventReader(
            settings, topics.leads_assigned
        ) as reader:  # fmt: skip
            for lead in (cold, other):
                await send(topics.leads_received, "lead.received", lead, lead.lead_id)
                await reader.wait_for(on(lead.lead_id, "lead.nurtured"))
            await send(topics.leads_received, "lead.received", touch, touch.lead_id)
            handed = await reader.wait_for(on(cold.lead_id, "lead.assigned"))
            assert handed.data["reason"].startswith("handoff: score 75 (sql)")
            reengage = _reengage(other.lead_id)
            redelivered = derived_id(other.lead_id, "reengage")
            for _ in range(2):  # the same event twice: the inbox drops the second
                await send(topics.leads_escalated, "lead.reengage", reengage, redelivered)
            back = await reader.wait_for(on(other.lead_id, "lead.assigned"))
            assert back.data["reason"] == "reengaged" and back.data["assignment_seq"] == 1
            await reader.drain(1.5)
    finally:
        await producer.stop()
    # The app's ticker retries parked and pending leads globally: another test's lead it
    # routes may show up on the topic too, so only this test's leads are counted.
    mine = {cold.lead_id, other.lead_id, touch.lead_id}
    assigned = [e for _, e, _ in reader.seen if e.type == "lead.assigned" and e.subject in mine]
    assert sorted(e.subject for e in assigned) == sorted([cold.lead_id, other.lead_id])
    assert len(await kit.assignments(other.lead_id)) == 1


async def test_a_touch_in_a_batch_is_decided_with_the_leads_around_it(kit: RouterKit) -> None:
    """One fetch holding a touch on a nurtured lead between new leads: the handoff's owner and
    round-robin turn count for the leads decided after it, as one at a time would."""
    service = kit.service(kit.policy(nurturing))
    cold = kit.lead(company_size=800)
    assert await kit.receive(service, cold) == "nurtured"
    hot = Engagement(demo_request=True)
    touch = kit.lead(email=cold.contact.email, engagement=hot)

    def elsewhere(i: int) -> str:  # another company: no account learned from the handoff
        return kit.email(domain=f"other{i}-{kit.tag}.com")

    after = [kit.lead(email=elsewhere(i), company_size=800, engagement=hot) for i in range(2)]
    async with kit.sessions() as session, session.begin():
        decided = await service.on_received_many(
            session, leads=[touch, *after, kit.lead(email=elsewhere(3))], now=utcnow()
        )
    assert decided == ["handoff", "assigned", "assigned", "nurtured"]
    owners = [(await kit.assignments(x.lead_id))[0]["owner_id"] for x in (cold, *after)]
    # weights 1, 2, 3 (smooth round robin from a fresh state): c, b, then a (tie, lowest id)
    assert owners == [kit.rep("c"), kit.rep("b"), kit.rep("a")]
    assert await kit.open_leads(kit.rep("c")) == 1


def _nobody(data: dict[str, Any]) -> None:
    nurturing(data)
    for team in data["teams"]:
        for rep in team["reps"]:
            rep["active"] = False


async def _retry(kit: RouterKit, service: RouterService) -> int:
    async with kit.sessions() as session, session.begin():
        return await recovery.retry_reassignments(service, session, now=utcnow())


async def _held(kit: RouterKit, rep_id: str) -> int:
    """The rep's open leads counted from the rows (the global retry may have given them
    another test's pending lead too): what their load counter must say."""
    [row] = await kit.rows(
        "SELECT count(*) AS n FROM router.leads WHERE owner_id = :r AND closed_at IS NULL "
        "AND status = 'assigned'",
        r=rep_id,
    )
    return int(row["n"])


async def test_a_reengagement_nobody_can_take_is_parked_then_assigned_to_sales(
    kit: RouterKit,
) -> None:
    """Never silent: the re-engaged lead is parked (`lead.parked`) and its reassignment
    retried; the retry hands it to sales although the nurture rule still matches it."""
    service = kit.service(kit.policy(nurturing))
    cold = kit.lead()
    assert await kit.receive(service, cold) == "nurtured"
    service.holder.policy = kit.policy(_nobody)
    await _dispatch(kit, service, "lead.reengage", _reengage(cold.lead_id))
    row = await _row(kit, cold.lead_id)
    assert (row["status"], row["owner_id"], row["assignment_seq"]) == ("parked", None, 0)
    events = await kit.events(cold.lead_id)
    assert [e["type"] for e in events] == ["lead.nurtured", "lead.parked"]
    assert events[1]["id"] == derived_id(cold.lead_id, "parked", "reengaged", 0)
    parked = LeadParked.model_validate(events[1]["data"])
    assert parked.reason.startswith("reengaged: ") and parked.team.id == "direct"
    pending = await kit.rows(
        "SELECT seq, exclude_rep, reason FROM router.pending_reassignments "
        "WHERE lead_id = CAST(:l AS uuid)",
        l=cold.lead_id,
    )
    assert [dict(p) for p in pending] == [{"seq": 0, "exclude_rep": None, "reason": "reengaged"}]

    await _retry(kit, service)  # still nobody: no trace
    assert len(await kit.events(cold.lead_id)) == 2
    service.holder.policy = kit.policy(nurturing)  # the reps are back
    assert await _retry(kit, service) >= 1
    row = await _row(kit, cold.lead_id)
    assert (row["status"], row["assignment_seq"]) == ("assigned", 1)
    assert await kit.open_leads(row["owner_id"]) == await _held(kit, row["owner_id"])
    last = (await kit.events(cold.lead_id))[-1]
    assigned = LeadAssigned.model_validate(last["data"])
    assert (assigned.reason, assigned.assignment_seq) == ("reengaged", 1)
    assert assigned.routing.rule_id == "default"  # not "cold": sales has it now
    assert await _kinds(kit, cold.lead_id) == ["nurtured", "reengage_failed", "assigned"]
    async with kit.sessions() as session, session.begin():
        await service.close(session, lead_id=cold.lead_id, status="converted", at=utcnow())


async def test_a_reengagement_the_policy_now_disqualifies_closes_with_an_event(
    kit: RouterKit,
) -> None:
    """Never silent: a lead the current policy disqualifies when it comes back from nurture
    ends closed with a `lead.disqualified` (its own id), and `baton explain` says why."""
    service = kit.service(kit.policy(nurturing))
    cold = kit.lead(title="Procurement intern")
    assert await kit.receive(service, cold) == "nurtured"

    def students_out(data: dict[str, Any]) -> None:
        nurturing(data)
        data["qualification"]["disqualify"].append(
            {"id": "intern", "reason": "intern", "when": {
                "field": "title", "op": "contains", "value": "intern"}},
        )  # fmt: skip

    service.holder.policy = kit.policy(students_out)
    await _dispatch(kit, service, "lead.reengage", _reengage(cold.lead_id))
    row = await _row(kit, cold.lead_id)
    assert (row["status"], row["owner_id"]) == ("closed_disqualified", None)
    events = await kit.events(cold.lead_id)
    assert [e["type"] for e in events] == ["lead.nurtured", "lead.disqualified"]
    assert events[1]["id"] == derived_id(cold.lead_id, "disqualified", "reengaged")
    assert events[1]["data"]["rule_id"] == "intern"
    assert await _kinds(kit, cold.lead_id) == ["nurtured", "reengage_disqualified"]
    await _dispatch(kit, service, "lead.reengage", _reengage(cold.lead_id))  # nothing more
    assert len(await kit.events(cold.lead_id)) == 2


async def test_a_retried_reassignment_never_sends_a_lead_sales_had_back_to_nurture(
    kit: RouterKit,
) -> None:
    """A cold lead re-engaged to sales, rejected with nobody else free: the ticker's retry
    assigns it although the nurture rule still matches its score."""
    service = kit.service(kit.policy(nurturing))
    cold = kit.lead()
    assert await kit.receive(service, cold) == "nurtured"
    await _dispatch(kit, service, "lead.reengage", _reengage(cold.lead_id))
    owner = (await _row(kit, cold.lead_id))["owner_id"]
    service.holder.policy = kit.policy(_nobody)
    rejected = LeadActivity(
        lead_id=cold.lead_id, type="rejected", at=utcnow(), actor=owner, reason="not_icp"
    )
    await _dispatch(kit, service, "lead.activity", rejected)
    assert (await _row(kit, cold.lead_id))["status"] == "parked"

    service.holder.policy = kit.policy(nurturing)
    assert await _retry(kit, service) >= 1
    row = await _row(kit, cold.lead_id)
    assert (row["status"], row["assignment_seq"]) == ("assigned", 2)
    assert row["owner_id"] not in (None, owner)
    last = LeadAssigned.model_validate((await kit.events(cold.lead_id))[-1]["data"])
    assert last.assignment_seq == 2 and last.routing.rule_id == "default"
    async with kit.sessions() as session, session.begin():
        await service.close(session, lead_id=cold.lead_id, status="converted", at=utcnow())


async def test_the_preview_merges_into_a_nurtured_lead_and_an_outcome_closes_it(
    kit: RouterKit,
) -> None:
    """The route preview finds the open lead as the decision does (a nurtured one too, by the
    identity keys); a converted activity on a nurtured lead ends it (no re-engagement)."""
    service = kit.service(kit.policy(nurturing))
    cold = kit.lead()
    assert await kit.receive(service, cold) == "nurtured"
    local, at = cold.contact.email.split("@") if cold.contact.email else ("", "")
    touch = kit.lead(email=f"{local}+news@{at}")  # the e-mail key finds it
    async with kit.sessions() as session:
        preview = await views.preview(service, session, lead=touch, now=utcnow())
    assert preview["outcome"] == "merged" and preview["into_lead_id"] == cold.lead_id
    assert preview["owner_id"] is None
    assert any("matched on email" in line for line in preview["explanation"])

    converted = LeadActivity(lead_id=cold.lead_id, type="converted", at=utcnow(), actor="crm")
    await _dispatch(kit, service, "lead.activity", converted)
    row = await _row(kit, cold.lead_id)
    assert (row["status"], row["owner_id"]) == ("converted", None) and row["closed_at"]
    await _dispatch(kit, service, "lead.reengage", _reengage(cold.lead_id))
    assert not await kit.assignments(cold.lead_id)  # closed: the re-engagement is ignored
