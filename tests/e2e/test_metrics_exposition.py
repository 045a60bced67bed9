"""Each service's /metrics passes `promtool check metrics` and carries no personal data."""

from __future__ import annotations

import shutil
import subprocess
import uuid

import httpx
import pytest

from tests.conftest import EventReader
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


async def test_metrics_are_valid_and_free_of_personal_data(stack: Stack) -> None:
    email = f"metrics.{uuid.uuid4().hex[:8]}@exposition-test.com"
    topics = stack.settings.topics
    async with EventReader(stack.settings, topics.leads_assigned) as reader:
        resp = httpx.post(
            stack.url("intake") + "/v1/webhooks/website-demo",
            data={"email": email, "first_name": "Metric", "company_size": "900"},
            headers={"Origin": "http://localhost:8001"},
        )
        assert resp.status_code == 202
        lead_id = resp.json()["lead_id"]
        await reader.wait_for(lambda e: e.subject == lead_id)
    exe = shutil.which("promtool")
    assert exe, "promtool is missing: `make tools` installs it"
    for service in ("intake", "router", "followup"):
        text = httpx.get(stack.url(service) + "/metrics").text
        assert "baton_" in text
        assert email not in text and "Metric" not in text and lead_id not in text
        result = subprocess.run(
            [exe, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"{service}: {result.stdout}{result.stderr}"
    intake = httpx.get(stack.url("intake") + "/metrics").text
    assert 'baton_leads_accepted_total{channel="form",source="website-demo"}' in intake
