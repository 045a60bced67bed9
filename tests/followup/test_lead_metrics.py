"""Metrics counted once per lead on the real PostgreSQL: speed-to-lead from the first
assignment (besides per assignment), handoffs and stage changes by stage, conversions by stage."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.service import FollowupService
from tests.followup.conftest import EPOCH, activity, assigned, new_lead, record

pytestmark = pytest.mark.integration


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return float(registry.get_sample_value(name, labels) or 0.0)


async def test_speed_from_the_first_assignment_and_conversions_by_stage(
    service: FollowupService, db: AsyncSession, registry: CollectorRegistry
) -> None:
    lead = new_lead()
    first = assigned(lead, tier="warm").model_copy(update={"stage": "mql"})
    later_at = EPOCH + timedelta(hours=1)
    second = assigned(lead, seq=2, at=later_at, owner="rep-b", tier="warm").model_copy(
        update={"stage": "sql"}
    )
    await service.on_assigned(db, event=first)
    await service.on_assigned(db, event=second)  # an MQL handed to sales as an SQL
    contacted = later_at + timedelta(minutes=5)
    await record(service, db, activity(lead, "contacted", contacted, actor="rep-b"))
    await record(service, db, activity(lead, "contacted", contacted + timedelta(hours=1)))
    await record(service, db, activity(lead, "converted", contacted + timedelta(days=2)))
    await record(service, db, activity(lead, "converted", contacted + timedelta(days=3)))

    per_assignment = "baton_speed_to_lead_seconds_sum"
    assert sample(registry, per_assignment, team="emea", tier="warm") == 300
    first_sum = "baton_speed_to_lead_first_assignment_seconds_sum"
    assert sample(registry, first_sum, tier="warm") == 3600 + 300
    first_count = "baton_speed_to_lead_first_assignment_seconds_count"
    assert sample(registry, first_count, tier="warm") == 1
    assert sample(registry, "baton_handoffs_total", stage="mql") == 1
    assert sample(registry, "baton_handoffs_total", stage="sql") == 0
    assert sample(registry, "baton_stage_changes_total", from_stage="mql", to_stage="sql") == 1
    assert sample(registry, "baton_conversions_total", stage="sql") == 1
    assert sample(registry, "baton_conversions_total", stage="mql") == 0
