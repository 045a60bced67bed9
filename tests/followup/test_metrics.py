"""Follow-up health metrics read back from the registry after real service calls."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.service import FollowupService
from tests.followup.conftest import WINDOW, activity, assigned, new_lead, record

pytestmark = pytest.mark.integration

# A period of its own, so the 7-day window sees only this module's SLA windows.
T = datetime(2003, 3, 3, 9, 0, tzinfo=UTC)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_speed_to_lead_and_sla_outcomes(
    service: FollowupService, db: AsyncSession, registry: CollectorRegistry
) -> None:
    met, breached = new_lead(), new_lead()
    await service.on_assigned(db, event=assigned(met, at=T, team="emea", tier="hot"))
    await service.on_assigned(db, event=assigned(breached, at=T, team="emea", tier="hot"))
    await record(service, db, activity(met, "contacted", T + timedelta(seconds=100)))
    await record(service, db, activity(breached, "contacted", T + timedelta(seconds=WINDOW + 1)))
    await record(service, db, activity(met, "contacted", T + timedelta(seconds=200)))  # second

    labels = {"team": "emea", "tier": "hot"}
    assert sample(registry, "baton_speed_to_lead_seconds_count", **labels) == 2
    assert sample(registry, "baton_speed_to_lead_seconds_sum", **labels) == 100 + WINDOW + 1
    assert sample(registry, "baton_speed_to_lead_seconds_bucket", le="120.0", **labels) == 1
    assert sample(registry, "baton_sla_outcomes_total", outcome="met", **labels) == 1
    assert sample(registry, "baton_sla_outcomes_total", outcome="breached", **labels) == 1
    assert sample(registry, "baton_activities_total", type="contacted", known="true") == 3


async def test_breaches_by_level_and_team_and_lateness(
    service: FollowupService, db: AsyncSession, registry: CollectorRegistry
) -> None:
    lead = new_lead()
    await service.on_assigned(db, event=assigned(lead, at=T, team="apac"))
    due = T + timedelta(seconds=WINDOW)
    assert await service.tick(db, now=due + timedelta(seconds=2)) >= 1
    escalations = {"level": "1", "action": "remind_owner", "team": "apac"}
    assert sample(registry, "baton_escalations_total", **escalations) == 1
    assert sample(registry, "baton_escalations_total", **{**escalations, "level": "2"}) == 0
    assert sample(registry, "baton_escalation_lateness_seconds_bucket", le="1.0") == 0
    assert sample(registry, "baton_escalation_lateness_seconds_bucket", le="2.0") >= 1


async def test_open_clocks_and_completion_ratio_from_the_periodic_query(
    service: FollowupService, db: AsyncSession, registry: CollectorRegistry
) -> None:
    now = T + timedelta(days=3)
    assert math.isnan(sample(registry, "baton_followup_completion_ratio"))
    assert math.isnan(await service.refresh_health(db, now=now))
    open_before = sample(registry, "baton_sla_clocks_open")
    assert open_before == await db.scalar(
        text("SELECT count(*) FROM followup.clocks WHERE status = 'open'")
    )

    leads = [new_lead() for _ in range(5)]
    for lead in leads:
        await service.on_assigned(db, event=assigned(lead, at=T))
    in_time = T + timedelta(seconds=60)
    await record(service, db, activity(leads[0], "contacted", in_time))
    await record(service, db, activity(leads[1], "disqualified", in_time))  # a touch too
    await record(service, db, activity(leads[2], "accepted", in_time))  # not a touch
    await record(service, db, activity(leads[3], "contacted", T + timedelta(seconds=WINDOW + 9)))
    # leads[4] untouched, and reassigned: its first owner's miss still counts
    await service.on_assigned(db, event=assigned(leads[4], seq=2, at=T + timedelta(hours=2)))
    await record(service, db, activity(leads[4], "contacted", T + timedelta(hours=2, seconds=5)))
    # a window whose deadline has not passed yet is not judged
    await service.on_assigned(db, event=assigned(new_lead(), at=now - timedelta(seconds=10)))
    # nor one whose deadline is older than 7 days
    await service.on_assigned(db, event=assigned(new_lead(), at=now - timedelta(days=8)))

    ratio = await service.refresh_health(db, now=now)
    # windows judged: 5 first assignments + leads[4]'s second = 6; in time: 0, 1, 4(seq 2)
    assert ratio == pytest.approx(3 / 6)
    assert sample(registry, "baton_followup_completion_ratio") == pytest.approx(0.5)
    # open: leads[2] (accepted only), the not-yet-due and the old one
    assert sample(registry, "baton_sla_clocks_open") == open_before + 3
