"""Followup test helpers: a service with its own metrics registry, and event payload builders.

Times are far in the past (a fixed epoch per test module), so a tick with an explicit `now`
only ever finds this test's clocks due, never clocks other tests committed at real time.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.metrics import FollowupMetrics
from services.followup.service import FollowupService
from shared.db import Outbox
from shared.events import (
    Lead,
    LeadActivity,
    LeadAssigned,
    Person,
    RoutingReason,
    Sla,
    TeamRef,
)
from shared.policy import load_policy
from tests.conftest import ROOT

EPOCH = datetime(2001, 1, 1, 9, 0, tzinfo=UTC)
WINDOW = 3600


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def service(registry: CollectorRegistry) -> FollowupService:
    return make_service(registry)


def make_service(registry: CollectorRegistry | None = None) -> FollowupService:
    return FollowupService(
        policy=load_policy(ROOT / "deploy" / "policy.example.yaml"),
        outbox=Outbox("followup"),
        metrics=FollowupMetrics(registry or CollectorRegistry()),
        escalated_topic="test.leads.escalated",
        activity_topic="test.leads.activity",
        dlq_topic="test.leads.dlq",
        unknown_lead_grace=timedelta(hours=1),
    )


def new_lead() -> str:
    return str(uuid.uuid4())


def assigned(
    lead_id: str,
    *,
    seq: int = 1,
    at: datetime = EPOCH,
    window: int = WINDOW,
    owner: str = "rep-a",
    team: str = "emea",
    tier: str = "hot",
) -> LeadAssigned:
    return LeadAssigned(
        lead_id=lead_id,
        assignment_seq=seq,
        assigned_at=at,
        owner=Person(id=owner, name=f"Rep {owner}", email=f"{owner}@example.com"),
        manager=Person(id=None, name="Manager", email="manager@example.com"),
        team=TeamRef(id=team, name=team.upper()),
        score=80,
        tier=tier,
        stage="sql",
        breakdown=[],
        routing=RoutingReason(rule_id="default", strategy="round_robin", reason="test"),
        sla=Sla(
            tier=tier, window_seconds=window, clock="wall", due_at=at + timedelta(seconds=window)
        ),
        lead=Lead(
            lead_id=lead_id,
            received_at=at,
            source="website-demo",
            channel="form",
            contact={"email": f"{lead_id[:8]}@example.org"},
        ),
        policy_version="test",
    )


def activity(
    lead_id: str,
    type_: str,
    at: datetime,
    *,
    actor: str = "rep-a",
    activity_id: str | None = None,
    reengage_at: datetime | None = None,
) -> LeadActivity:
    return LeadActivity(
        activity_id=activity_id or str(uuid.uuid4()),
        lead_id=lead_id,
        type=type_,
        at=at,
        actor=actor,
        reengage_at=reengage_at,
    )


async def record(service: FollowupService, db: AsyncSession, act: LeadActivity) -> bool:
    """The Kafka path: unknown leads are kept pending."""
    assert act.activity_id is not None
    return await service.record_activity(
        db, activity=act, activity_id=act.activity_id, require_known=False
    )


async def escalation_levels(db: AsyncSession, lead_id: str) -> list[tuple[int, int]]:
    rows = await db.execute(
        text(
            "SELECT assignment_seq, level FROM followup.escalations WHERE lead_id = :l "
            "ORDER BY assignment_seq, level"
        ),
        {"l": lead_id},
    )
    return [(int(r[0]), int(r[1])) for r in rows]


async def outbox_events(db: AsyncSession, lead_id: str, type_: str | None = None) -> list[Any]:
    rows = await db.execute(
        text("SELECT topic, payload FROM followup.outbox WHERE key = :k ORDER BY id"),
        {"k": lead_id},
    )
    events = [(r[0], orjson.loads(r[1])) for r in rows]
    return [(t, e) for t, e in events if type_ is None or e["type"] == type_]


async def clock_status(db: AsyncSession, lead_id: str) -> tuple[str, int] | None:
    row = (
        await db.execute(
            text("SELECT status, assignment_seq FROM followup.clocks WHERE lead_id = :l"),
            {"l": lead_id},
        )
    ).first()
    return (str(row[0]), int(row[1])) if row else None
