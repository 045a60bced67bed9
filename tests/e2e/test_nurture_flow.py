"""End to end on the example policy: a cold contact is nurtured (no owner), comes back with a
demo request and is handed to a sales owner on that second touch."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import EventReader
from tests.e2e.conftest import Stack
from tests.e2e.test_flow import post_form, unique

pytestmark = pytest.mark.e2e

COLD = {  # business e-mail 10 + core market 5 = 15: below every stage
    "email": "sam.rivera@smallshop-e2e.io",
    "first_name": "Sam",
    "job_title": "Operations Manager",
    "country": "US",
    "consent": "yes",
}


async def test_nurture_to_a_sales_owner_on_a_second_touch(stack: Stack) -> None:
    email = unique(COLD["email"])
    async with EventReader(stack.settings, stack.settings.topics.leads_assigned) as reader:
        first = post_form(stack, {**COLD, "email": email})
        assert first.status_code == 202, first.text
        lead_id = first.json()["lead_id"]
        nurtured = await reader.wait_for(lambda e: e.subject == lead_id)
        assert nurtured.type == "lead.nurtured", nurtured.type
        assert nurtured.data["stage"] == "lead" and nurtured.data["routing"]["rule_id"] == "nurture"

        # the same contact asks for a demo for a 600-person company: 95 points, an SQL
        again = {**COLD, "email": email, "job_title": "VP Operations", "company_size": "600"}
        second = post_form(stack, {**again, "demo_request": "yes"})
        assert second.status_code == 202, second.text
        assigned = await reader.wait_for(
            lambda e: e.type == "lead.assigned" and e.subject == lead_id
        )
    data = assigned.data
    assert data["reason"].startswith("handoff: score 95 (sql) reached sales on a new touch")
    assert data["team"]["id"] == "enterprise" and data["owner"]["id"] and data["sla"]["due_at"]
    assert data["lead"]["engagement"]["demo_request"] is True

    history = httpx.get(
        stack.url("router") + f"/v1/leads/{lead_id}",
        headers={"Authorization": f"Bearer {stack.token}"},
        timeout=10,
    ).json()
    assert history["status"] == "assigned" and history["owner_id"] == data["owner"]["id"]
    assert [d["kind"] for d in history["decisions"]] == ["nurtured", "handoff"]
