"""Router metrics read back from the injected registry, and the policy version of decisions."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from services.router import store
from shared.events import Engagement, utcnow
from tests.router.conftest import RouterKit

pytestmark = pytest.mark.integration


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_decisions_scoring_latency_and_eligible_reps(kit: RouterKit) -> None:
    registry = CollectorRegistry()
    service = kit.service(registry=registry)
    hot = kit.lead(
        company_size=900,
        engagement=Engagement(demo_request=True),
        received_at=utcnow() - timedelta(seconds=2),
    )
    assert await kit.receive(service, hot) == "assigned"
    assert await kit.receive(service, kit.lead(email=hot.contact.email)) == "merged"
    spy = kit.lead(email=kit.email("spy", f"rival-{kit.tag}.com"))
    assert await kit.receive(service, spy) == "disqualified"
    assert await kit.receive(service, kit.lead(kind="free", domain=None)) == "assigned"

    decisions = "baton_routing_decisions_total"
    assert _value(registry, decisions, outcome="assigned", team="direct", tier="hot") == 1
    assert _value(registry, decisions, outcome="assigned", team="direct", tier="cold") == 1
    assert _value(registry, decisions, outcome="merged", team="direct", tier="none") == 1
    assert _value(registry, decisions, outcome="disqualified", team="none", tier="cold") == 1
    assert _value(registry, "baton_leads_scored_total", team="direct", tier="hot") == 1
    assert _value(registry, "baton_leads_scored_total", team="none", tier="cold") == 1
    assert _value(registry, "baton_assignment_latency_seconds_count") == 2
    assert _value(registry, "baton_assignment_latency_seconds_sum") >= 2.0

    # every rep of `direct` can take leads; `closed` has only an inactive rep: the alert case
    assert _value(registry, "baton_team_eligible_reps", team="direct") == 3
    assert _value(registry, "baton_team_eligible_reps", team="closed") == 0
    assert _value(registry, "baton_team_eligible_reps", team="reserve") == 1
    assert _value(registry, "baton_team_on_duty_reps", team="direct") == 3


async def test_eligible_reps_gauge_follows_capacity(kit: RouterKit) -> None:
    def tiny(data: dict[str, Any]) -> None:
        for rep in data["teams"][2]["reps"]:
            rep["capacity"] = 1

    registry = CollectorRegistry()
    service = kit.service(kit.policy(tiny), registry)
    lead = kit.lead(utm={"utm_campaign": "closed"})  # closed desk -> fallback `reserve`
    assert await kit.receive(service, lead) == "assigned"
    assert _value(registry, "baton_team_eligible_reps", team="reserve") == 0
    async with kit.sessions() as session, session.begin():
        await service.close(session, lead_id=lead.lead_id, status="converted", at=utcnow())
    async with kit.sessions() as session:
        await service.refresh_team_gauges(session, now=utcnow())
    assert _value(registry, "baton_team_eligible_reps", team="reserve") == 1


async def test_a_reload_during_a_decision_does_not_mix_versions(kit: RouterKit) -> None:
    """The decision waits on the assignment lock while the policy is swapped: it keeps v1."""
    v1 = kit.policy()
    v2 = kit.policy(lambda d: d.update(version="v2"))
    assert v1.version_id != v2.version_id
    service = kit.service(v1)
    lead = kit.lead()
    async with kit.sessions() as blocker, blocker.begin():
        await store.lock_assignments(blocker)
        task = asyncio.create_task(kit.receive(service, lead))
        await _wait_for_lock_waiter(kit)
        service.holder.policy = v2  # what POST /v1/admin/policy/reload does
    assert await task == "assigned"
    [row] = await kit.assignments(lead.lead_id)
    [event] = await kit.events(lead.lead_id)
    decisions = await kit.rows(
        "SELECT policy_version FROM router.decisions WHERE lead_id = CAST(:l AS uuid)",
        l=lead.lead_id,
    )
    assert row["policy_version"] == event["data"]["policy_version"] == v1.version_id
    assert [d["policy_version"] for d in decisions] == [v1.version_id]
    # and the next lead is decided by v2
    later = kit.lead()
    assert await kit.receive(service, later) == "assigned"
    [event2] = await kit.events(later.lead_id)
    assert event2["data"]["policy_version"] == v2.version_id


async def _wait_for_lock_waiter(kit: RouterKit) -> None:
    for _ in range(200):
        async with kit.sessions() as session:
            waiting = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    "AND objid = :k"
                ),
                {"k": store.ASSIGN_LOCK & 0xFFFFFFFF},
            )
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the decision never waited on the assignment lock")
