"""Nurture by policy, parked leads' waiting clocks and the repeating last level, on the real
PostgreSQL, driven with an explicit `now` inside a rolled-back transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.metrics import FollowupMetrics
from services.followup.service import FollowupService
from shared.db import Outbox
from shared.events import (
    Lead,
    LeadNurtured,
    LeadParked,
    Person,
    RoutingReason,
    TeamRef,
    derived_id,
)
from shared.policy import parse_policy
from tests.conftest import ROOT
from tests.followup.conftest import (
    EPOCH,
    WINDOW,
    activity,
    assigned,
    escalation_levels,
    new_lead,
    outbox_events,
    record,
)

pytestmark = pytest.mark.integration

REENGAGE = EPOCH + timedelta(days=30)
MANAGER = Person(id=None, name="Nina Manager", email="nina@example.com")


def _lead(lead_id: str) -> Lead:
    return Lead(
        lead_id=lead_id,
        received_at=EPOCH,
        source="website-demo",
        channel="form",
        contact={"email": f"{lead_id[:8]}@example.org"},
    )


def nurtured(lead_id: str, *, at: datetime = REENGAGE) -> LeadNurtured:
    return LeadNurtured(
        lead_id=lead_id,
        nurtured_at=EPOCH,
        score=20,
        tier="cold",
        stage="lead",
        breakdown=[],
        routing=RoutingReason(rule_id="nurture-below-mql", strategy="nurture", reason="test"),
        reason="nurture: score 20 below the handoff threshold",
        reengage_at=at,
        lead=_lead(lead_id),
        policy_version="test",
    )


def parked(lead_id: str, *, wait: int = WINDOW, clock: str = "wall") -> LeadParked:
    return LeadParked(
        lead_id=lead_id,
        parked_at=EPOCH,
        team=TeamRef(id="emea", name="EMEA"),
        manager=MANAGER,
        score=80,
        tier="hot",
        stage="sql",
        routing=RoutingReason(rule_id="default", strategy="round_robin", reason="test"),
        reason="nobody eligible",
        wait_seconds=wait,
        clock=clock,
        lead=_lead(lead_id),
        policy_version="test",
    )


async def _tick(service: FollowupService, db: AsyncSession, now: datetime) -> int:
    fired = 0
    for _ in range(10):
        n = await service.tick(db, now=now)
        if not n:
            return fired
        fired += n
    return fired


async def _status(db: AsyncSession, table: str, lead_id: str) -> str | None:
    value = await db.scalar(
        text(f"SELECT status FROM followup.{table} WHERE lead_id = :l"), {"l": lead_id}
    )
    return None if value is None else str(value)


# --- nurture by policy ------------------------------------------------------------------------


async def test_a_nurtured_lead_comes_back_ownerless_on_its_date_once(
    service: FollowupService, db: AsyncSession
) -> None:
    lead = new_lead()
    event_id = derived_id(lead, "nurtured", 1)
    assert await service.on_nurtured(db, event=nurtured(lead), event_id=event_id) == REENGAGE
    assert await _tick(service, db, REENGAGE - timedelta(seconds=1)) == 0
    assert await _tick(service, db, REENGAGE) == 1
    [(topic, event)] = await outbox_events(db, lead, "lead.reengage")
    assert topic == "test.leads.escalated"
    assert event["data"]["owner"] is None and event["data"]["lead_id"] == lead
    assert event["id"] == derived_id(lead, "reengage", REENGAGE.isoformat())
    # a redelivered lead.nurtured (past the inbox, e.g. replayed) re-arms nothing
    assert await service.on_nurtured(db, event=nurtured(lead), event_id=event_id) is None
    assert await _status(db, "reengagements", lead) == "sent"
    assert await _tick(service, db, REENGAGE + timedelta(days=1)) == 0


async def test_a_later_assignment_cancels_the_pending_reengagement(
    service: FollowupService, db: AsyncSession
) -> None:
    lead = new_lead()
    await service.on_nurtured(db, event=nurtured(lead), event_id=derived_id(lead, "nurtured", 1))
    touch = EPOCH + timedelta(days=3)  # a new touch crossed the threshold: sales has it now
    assert await service.on_assigned(db, event=assigned(lead, at=touch)) is not None
    assert await _status(db, "reengagements", lead) == "cancelled"
    await record(service, db, activity(lead, "contacted", touch + timedelta(minutes=1)))
    assert await _tick(service, db, REENGAGE + timedelta(days=1)) == 0
    assert await outbox_events(db, lead, "lead.reengage") == []


# --- parked: the waiting clock ----------------------------------------------------------------


async def test_a_parked_lead_escalates_to_the_manager_once_when_its_wait_lapses(
    service: FollowupService, db: AsyncSession, registry: CollectorRegistry
) -> None:
    lead = new_lead()
    park_id = derived_id(lead, "parked", 1)
    due = EPOCH + timedelta(seconds=WINDOW)
    assert await service.on_parked(db, event=parked(lead), event_id=park_id) == due
    assert await service.on_parked(db, event=parked(lead), event_id=park_id) is None
    assert await _tick(service, db, due - timedelta(seconds=1)) == 0
    assert await _tick(service, db, due + timedelta(seconds=30)) == 1
    assert await _tick(service, db, due + timedelta(days=1)) == 0
    [(topic, event)] = await outbox_events(db, lead, "lead.escalated")
    data = event["data"]
    assert topic == "test.leads.escalated"
    assert (data["action"], data["level"], data["assignment_seq"]) == ("notify_manager", 1, 0)
    assert data["owner"] is None and data["manager"]["email"] == MANAGER.email
    assert data["team_id"] == "emea" and data["seconds_overdue"] == 30
    assert event["id"] == derived_id(lead, "escalated", 0, 1, park_id)
    labels = {"team": "emea"}
    for outcome in ("started", "escalated"):
        value = registry.get_sample_value(
            "baton_parked_waits_total", {**labels, "outcome": outcome}
        )
        assert value == 1, outcome


@pytest.mark.parametrize("closer", ["assigned", "disqualified", "merged"])
async def test_assignment_disqualification_or_merge_closes_the_waiting_clock(
    service: FollowupService, db: AsyncSession, closer: str
) -> None:
    lead = new_lead()
    await service.on_parked(db, event=parked(lead), event_id=derived_id(lead, "parked", 1))
    if closer == "assigned":  # a rep freed up: the router assigns the lead
        await service.on_assigned(db, event=assigned(lead, at=EPOCH + timedelta(minutes=5)))
    else:
        await service.on_lead_closed(db, lead_id=lead)
    assert await _status(db, "waiting", lead) == "closed"
    await _tick(service, db, EPOCH + timedelta(seconds=WINDOW + 1))
    assert [e for _, e in await outbox_events(db, lead, "lead.escalated")] == []


# --- escalation until someone acts --------------------------------------------------------------

REPEAT = 600


@pytest.fixture
def repeating() -> FollowupService:
    data: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "policy.example.yaml").read_text())
    data["escalation"][-1] = {
        "level": 3,
        "action": "notify_manager",
        "after_seconds": 1800,
        "repeat_every_seconds": REPEAT,
    }
    return FollowupService(
        policy=parse_policy(yaml.safe_dump(data, sort_keys=False)),
        outbox=Outbox("followup"),
        metrics=FollowupMetrics(CollectorRegistry()),
        escalated_topic="test.leads.escalated",
        activity_topic="test.leads.activity",
    )


async def test_the_last_level_repeats_until_the_lead_is_contacted(
    repeating: FollowupService, service: FollowupService, db: AsyncSession
) -> None:
    lead = new_lead()
    await repeating.on_assigned(db, event=assigned(lead))
    l3 = EPOCH + timedelta(seconds=WINDOW + 1800)
    await _tick(repeating, db, l3)
    # the second repetition is fired by an instance on a policy without repeat (a reload):
    # the clock's snapshot decides, not the current policy
    for n, ticker in ((1, repeating), (2, service)):
        await _tick(ticker, db, l3 + timedelta(seconds=REPEAT * n))
        await _tick(ticker, db, l3 + timedelta(seconds=REPEAT * n))  # a re-tick: nothing
    assert await escalation_levels(db, lead) == [(1, 1), (1, 2), (1, 3), (1, 3), (1, 3)]
    events = [e for _, e in await outbox_events(db, lead, "lead.escalated")]
    assert [e["data"]["level"] for e in events] == [1, 2, 3, 3, 3]
    assert [e["id"] for e in events[2:]] == [
        derived_id(lead, "escalated", 1, 3),
        derived_id(lead, "escalated", 1, 3, 1),
        derived_id(lead, "escalated", 1, 3, 2),
    ]
    contacted = l3 + timedelta(seconds=REPEAT * 2 + 60)
    await record(repeating, db, activity(lead, "contacted", contacted))
    await _tick(repeating, db, l3 + timedelta(days=2))
    assert len(await outbox_events(db, lead, "lead.escalated")) == 5


async def test_not_ready_on_a_holiday_comes_back_on_the_owners_next_working_day(
    service: FollowupService, db: AsyncSession
) -> None:
    lead = new_lead()
    await service.on_assigned(db, event=assigned(lead, owner="rep-anna"))  # Berlin office hours
    christmas = datetime(2026, 12, 28, 10, 0, tzinfo=UTC)  # Monday, but Anna is out of office
    await record(
        service,
        db,
        activity(
            lead, "not_ready", EPOCH + timedelta(minutes=5), actor="rep-anna", reengage_at=christmas
        ),
    )
    stored = await db.scalar(
        text("SELECT reengage_at FROM followup.reengagements WHERE lead_id = :l"), {"l": lead}
    )
    assert stored == datetime(2027, 1, 4, 8, 0, tzinfo=UTC)  # Monday 09:00 Berlin
