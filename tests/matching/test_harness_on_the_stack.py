"""The matching harness on the real stack (intake -> Kafka -> router as processes): every
touch gets a decision, and repeats with the exact same e-mail or phone are found as pairs, so
the figures it reports come from the router's real merge events."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import Stack, stack

if str(ROOT) not in sys.path:  # bench/ is a top-level directory, not an installed package
    sys.path.insert(0, str(ROOT))

from bench.matching.generator import generate
from bench.matching.harness import report, send_all

pytestmark = pytest.mark.e2e
__all__ = ["stack"]  # the e2e stack fixture: intake, router and followup as processes


async def test_the_harness_scores_real_merge_events(stack: Stack) -> None:
    touches = generate(seed=7, n_people=12)
    outcomes = await send_all(
        touches,
        intake_url=stack.url("intake"),
        secrets=stack.env,
        bootstrap=stack.settings.kafka_bootstrap_servers,
        assigned_topic=stack.settings.topics.leads_assigned,
    )
    result = report(touches, outcomes)
    assert len(outcomes) == len(touches) == result["touches"]
    assert result["events"].get("lead.merged", 0) >= 1
    clean = result["recall_by_kind"]["clean"]
    assert clean["repeats"] >= 1 and clean["linked"] == clean["repeats"], result
    assert 0 < result["recall"] <= 1 and 0 < result["precision"] <= 1
