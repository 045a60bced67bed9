"""A rep who misses N SLAs in a row is paused for new leads until they act or a manager
resumes them, with `rep.paused` / `rep.resumed` on `reps.status` and a metric."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from services.router import handlers
from services.router.service import RouterService
from shared.events import (
    LeadActivity,
    LeadEscalated,
    Person,
    RepPaused,
    RepResumed,
    derived_id,
    make_event,
    utcnow,
)
from shared.settings import Settings
from tests.conftest import EventReader
from tests.router.conftest import RouterKit, running_router

pytestmark = pytest.mark.integration
TOKEN = "router-pause-admin-token"


def _pausing(kit: RouterKit, after: int = 2) -> Any:
    """Team direct pauses after ``after`` missed SLAs; only rep a (direct) and r (reserve)."""

    def change(data: dict[str, Any]) -> None:
        for team in data["teams"]:
            if team["id"] == "direct":
                team["pause_after_missed_slas"] = after
            for rep in team["reps"]:
                rep["active"] = rep["id"] in (kit.rep("a"), kit.rep("r"))

    return change


def _service(kit: RouterKit, registry: CollectorRegistry) -> RouterService:
    service: RouterService = kit.service(kit.policy(_pausing(kit)), registry)
    service.status_topic = kit.settings.topics.reps_status
    return service


async def _dispatch(kit: RouterKit, service: RouterService, type_: str, data: Any) -> None:
    event = make_event(
        type=type_, source="/test", subject=data.lead_id, data=data, id=derived_id(data, type_)
    )
    async with kit.sessions() as session, session.begin():
        await handlers.build(service)(session, event)


def _missed(lead_id: str, owner: str, level: int = 1) -> LeadEscalated:
    now = utcnow()
    return LeadEscalated(
        lead_id=lead_id,
        assignment_seq=1,
        level=level,
        action="remind_owner",
        owner=Person(id=owner, name=owner, email=f"{owner}@example.com"),
        team_id="direct",
        due_at=now - timedelta(minutes=1),
        seconds_overdue=60.0,
        escalated_at=now,
    )


def _acted(lead_id: str, actor: str, type_: str = "contacted") -> LeadActivity:
    return LeadActivity(lead_id=lead_id, type=type_, at=utcnow(), actor=actor)


async def _owner(kit: RouterKit, service: RouterService) -> str:
    lead = kit.lead()
    assert await kit.receive(service, lead) == "assigned"
    [row] = await kit.assignments(lead.lead_id)
    return str(row["owner_id"])


async def _status_events(kit: RouterKit, rep_id: str) -> list[dict[str, Any]]:
    rows = await kit.rows(
        "SELECT topic, payload FROM router.outbox WHERE key = :k ORDER BY id", k=rep_id
    )
    assert {r["topic"] for r in rows} <= {kit.settings.topics.reps_status}  # not leads.*
    return [orjson.loads(bytes(r["payload"])) for r in rows]


async def test_missed_slas_in_a_row_pause_a_rep_until_they_act(kit: RouterKit) -> None:
    a, registry = kit.rep("a"), CollectorRegistry()
    service = _service(kit, registry)
    leads = []
    for _ in range(3):
        lead = kit.lead()
        assert await kit.receive(service, lead) == "assigned"
        leads.append(lead.lead_id)

    await _dispatch(kit, service, "lead.escalated", _missed(leads[0], a))
    await _dispatch(kit, service, "lead.activity", _acted(leads[1], a))  # the run is broken
    await _dispatch(kit, service, "lead.escalated", _missed(leads[1], a))
    await _dispatch(kit, service, "lead.escalated", _missed(leads[1], a, level=2))  # not missed
    assert await _owner(kit, service) == a  # one in a row: still taking leads
    await _dispatch(kit, service, "lead.escalated", _missed(leads[2], a))  # two in a row

    [paused] = await _status_events(kit, a)
    assert paused["type"] == "rep.paused" and paused["subject"] == a
    assert paused["data"]["reason"] == "missed 2 SLAs in a row"
    assert RepPaused.model_validate(paused["data"]).last_lead_id == leads[2]
    assert paused["data"]["manager"]["email"] == "mia@example.com"
    assert registry.get_sample_value("baton_rep_pauses_total", {"reason": "missed_slas"}) == 1.0

    lead = kit.lead()
    assert await kit.receive(service, lead) == "assigned"
    [event] = [e for e in await kit.events(lead.lead_id) if e["type"] == "lead.assigned"]
    assert event["data"]["owner"]["id"] == kit.rep("r")  # the fallback team, not rep a
    why = {c["rep_id"]: c["reason"] for c in event["data"]["considered"]}
    assert why[a] == "paused: missed 2 SLAs in a row"

    await _dispatch(kit, service, "lead.activity", _acted(leads[0], a, "accepted"))
    [_, resumed] = await _status_events(kit, a)
    assert resumed["type"] == "rep.resumed" and resumed["data"]["by"] == "activity"
    data = RepResumed.model_validate(resumed["data"])
    assert data.paused_at < data.resumed_at
    assert await _owner(kit, service) == a
    assert registry.get_sample_value("baton_rep_resumes_total", {"by": "activity"}) == 1.0


@pytest.fixture
async def client(
    kafka_settings: Settings, kit: RouterKit, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    policy = kit.policy_data(_pausing(kit, after=1))
    async with running_router(
        kafka_settings, policy, tmp_path / "p.yaml", token=TOKEN, actor="boss"
    ) as r:
        yield r.client, r.settings


async def test_a_manager_resumes_a_paused_rep(
    client: tuple[httpx.AsyncClient, Settings], kit: RouterKit
) -> None:
    """Through the app: the pause and its lifting reach Kafka's reps.status topic."""
    c, settings = client
    a = kit.rep("a")
    service: RouterService = c._transport.app.state.router_service  # type: ignore[attr-defined]
    lead = kit.lead()
    assert await kit.receive(service, lead) == "assigned"
    await _dispatch(kit, service, "lead.escalated", _missed(lead.lead_id, a))

    reps = {r["id"]: r for r in (await c.get("/v1/admin/reps")).json()["reps"]}
    assert reps[a]["paused"] is True and reps[a]["paused_reason"] == "missed 1 SLAs in a row"
    assert reps[a]["eligible"] is False and reps[a]["reason"].startswith("paused: ")
    assert reps[kit.rep("b")]["paused"] is False

    resp = await c.post(f"/v1/admin/reps/{a}/resume")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"rep_id": a, "paused": False, "was_paused": True}
    reps = {r["id"]: r for r in (await c.get("/v1/admin/reps")).json()["reps"]}
    assert reps[a]["paused"] is False and reps[a]["eligible"] is True
    async with EventReader(settings, settings.topics.reps_status) as reader:
        await reader.wait_for(lambda e: e.type == "rep.paused" and e.subject == a)
        resumed = await reader.wait_for(lambda e: e.type == "rep.resumed" and e.subject == a)
    assert resumed.data["by"] == "manager" and resumed.data["actor"] == "boss"

    missing = await c.post("/v1/admin/reps/rep-nobody/resume")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
