"""Capacity that stays true: a rep's open-lead load drops on every way a lead stops being
open, and the periodic reconcile repairs counters broken behind the router's back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from prometheus_client import CollectorRegistry

from services.router import handlers
from services.router.erasure import purge_expired
from services.router.service import RouterService
from services.router.ticker import Ticker
from shared.db import Outbox
from shared.events import LeadActivity, derived_id, make_event, utcnow
from shared.runtime import Runtime
from shared.settings import Settings
from tests.router.conftest import RouterKit, running_router

pytestmark = pytest.mark.integration
TOKEN = "router-capacity-admin-token"


def _only_a(kit: RouterKit) -> Any:
    def change(data: dict[str, Any]) -> None:
        for team in data["teams"]:
            for rep in team["reps"]:
                rep["active"] = rep["id"] == kit.rep("a")

    return change


async def _activity(kit: RouterKit, service: RouterService, lead_id: str, type_: str) -> None:
    data = LeadActivity(lead_id=lead_id, type=type_, at=utcnow(), actor=kit.rep("a"))
    event = make_event(
        type="lead.activity", source="/test", subject=lead_id, data=data, id=derived_id(data)
    )
    async with kit.sessions() as session, session.begin():
        await handlers.build(service)(session, event)


def _ticker(kit: RouterKit, service: RouterService, interval: float) -> Ticker:
    runtime = cast(Runtime, SimpleNamespace(sessions=kit.sessions))  # the reconcile needs only this
    return Ticker(runtime=runtime, service=service, reconcile_interval=interval)


async def test_every_way_a_lead_stops_being_open_gives_its_load_back(kit: RouterKit) -> None:
    a = kit.rep("a")
    service = kit.service(kit.policy(_only_a(kit)))
    leads = [kit.lead() for _ in range(5)]
    for lead in leads:
        assert await kit.receive(service, lead) == "assigned"
    assert await kit.open_leads(a) == 5
    ids = [lead.lead_id for lead in leads]
    closing = ("converted", "disqualified", "not_ready", "rejected")
    for lead_id, type_ in zip(ids, closing, strict=False):
        await _activity(kit, service, lead_id, type_)  # rejected: nobody else, so parked
    touch = kit.lead(email=leads[4].contact.email)  # a new touch is merged: no second load
    assert await kit.receive(service, touch) == "merged"
    assert await kit.open_leads(a) == 1

    corrected = await _ticker(kit, service, 0).reconcile_if_due()
    assert a not in corrected  # the counter already matched the rows
    await _activity(kit, service, ids[3], "converted")  # leave no parked lead to other tests


async def test_the_reconcile_repairs_broken_loads(kit: RouterKit) -> None:
    a, b, c = kit.rep("a"), kit.rep("b"), kit.rep("c")
    registry = CollectorRegistry()
    service = kit.service(registry=registry)
    for i in range(6):  # round robin over a, b (weight 2) and c (weight 3): 1, 2, 3
        lead = kit.lead(domain=f"d{i}-{kit.tag}.com")
        assert await kit.receive(service, lead) == "assigned"
    truth = {r: await kit.open_leads(r) for r in (a, b, c)}
    assert truth == {a: 1, b: 2, c: 3}
    async with kit.sessions() as session, session.begin():  # a fault behind the router's back
        await session.execute(
            _sql("UPDATE router.rep_state SET open_leads = 40 WHERE rep_id = :r"), {"r": a}
        )
        await session.execute(
            _sql("UPDATE router.rep_state SET open_leads = 0 WHERE rep_id = :r"), {"r": b}
        )
        await session.execute(_sql("DELETE FROM router.rep_state WHERE rep_id = :r"), {"r": c})

    ticker = _ticker(kit, service, 3600)
    corrected = await ticker.reconcile_if_due()
    assert {a, b, c} <= set(corrected)
    assert {r: await kit.open_leads(r) for r in (a, b, c)} == truth
    fixed = registry.get_sample_value("baton_rep_load_corrections_total")
    assert fixed is not None and fixed >= 3
    assert await ticker.reconcile_if_due() == []  # not due again before its interval
    assert not {a, b, c} & set(await _ticker(kit, service, 0).reconcile_if_due())


def _sql(statement: str) -> Any:
    from sqlalchemy import text

    return text(statement)


def _nobody(data: dict[str, Any]) -> None:
    for team in data["teams"]:
        for rep in team["reps"]:
            rep["active"] = False


@pytest.fixture
async def client(
    kafka_settings: Settings, kit: RouterKit, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    policy = kit.policy_data(_nobody)
    async with running_router(kafka_settings, policy, tmp_path / "p.yaml", token=TOKEN) as r:
        yield r.client


async def test_an_erased_contacts_open_lead_gives_its_load_back(
    client: httpx.AsyncClient, kit: RouterKit
) -> None:
    """Through the admin API. The app's policy has nobody active (its ticker must route no
    parked lead other tests left to rep a); the leads are routed by a service that has."""
    a = kit.rep("a")
    service = kit.service(kit.policy(_only_a(kit)))
    kept, erased = kit.lead(), kit.lead()
    for lead in (kept, erased):
        assert await kit.receive(service, lead) == "assigned"
    assert await kit.open_leads(a) == 2
    resp = await client.post("/v1/admin/erasure", json={"email": erased.contact.email})
    assert resp.status_code == 202, resp.text
    assert await kit.open_leads(a) == 1
    [row] = await kit.rows(
        "SELECT status, closed_at FROM router.leads WHERE lead_id = CAST(:l AS uuid)",
        l=erased.lead_id,
    )
    assert row["status"] == "closed_erased" and row["closed_at"] is not None


async def test_leads_erased_by_the_retention_purge_close_and_give_their_load_back(
    kit: RouterKit,
) -> None:
    """Received in 1975, so the purge (cut off in 1976) meets no other test's lead."""
    a = kit.rep("a")
    service = kit.service(kit.policy(_only_a(kit)))
    old, young = kit.lead(received_at=datetime(1975, 5, 1, tzinfo=UTC)), kit.lead()
    for lead in (old, young):
        assert await kit.receive(service, lead) == "assigned"
    assert await kit.open_leads(a) == 2
    async with kit.sessions() as session, session.begin():
        purged = await purge_expired(
            session,
            outbox=Outbox("router"),
            topic=kit.settings.topics.contacts_erased,
            before=datetime(1976, 1, 1, tzinfo=UTC),
            now=utcnow(),
        )
    assert purged == [old.lead_id]
    assert await kit.open_leads(a) == 1
    [row] = await kit.rows(
        "SELECT status, closed_at FROM router.leads WHERE lead_id = CAST(:l AS uuid)",
        l=old.lead_id,
    )
    assert row["status"] == "closed_erased" and row["closed_at"] is not None
