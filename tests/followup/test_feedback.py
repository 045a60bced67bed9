"""Reason codes on rejections and disqualifications: refused with a 422 naming `reason` on the
HTTP API and the activity webhooks, kept as `other` on Kafka, stored with the activity."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.service import FollowupService, InvalidActivity
from shared.events import utcnow
from tests.followup.conftest import EPOCH, activity, assigned, new_lead, record
from tests.followup.test_activity_webhooks import App, app, crm_payload  # noqa: F401
from tests.followup.test_api import app_client  # noqa: F401

pytestmark = pytest.mark.integration


async def _reasons(db: Any, lead: str) -> list[tuple[str, str | None]]:
    rows = await db.execute(
        text("SELECT type, reason FROM followup.activities WHERE lead_id = :l ORDER BY at"),
        {"l": lead},
    )
    return [(r[0], r[1]) for r in rows]


async def test_http_refuses_a_rejection_without_a_listed_reason_naming_the_field(
    app_client: tuple[httpx.AsyncClient, str, Any],  # noqa: F811
) -> None:
    client, token, fastapi_app = app_client
    auth = {"Authorization": f"Bearer {token}"}
    lead = new_lead()
    async with fastapi_app.state.runtime.sessions() as s, s.begin():
        await fastapi_app.state.followup.on_assigned(s, event=assigned(lead, at=utcnow()))
    url = f"/v1/leads/{lead}/activities"
    body = {"type": "rejected", "at": utcnow().isoformat(), "actor": "rep-a"}
    for reason in (None, "too_expensive"):
        resp = await client.post(url, json={**body, "reason": reason}, headers=auth)
        assert resp.status_code == 422, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        [field] = resp.json()["errors"]
        assert field["name"] == "reason" and "not_icp" in field["message"]
    ok = await client.post(url, json={**body, "reason": "no_budget"}, headers=auth)
    assert ok.status_code == 202, ok.text
    async with fastapi_app.state.runtime.sessions() as s:
        assert await _reasons(s, lead) == [("rejected", "no_budget")]


async def test_an_activity_webhook_with_an_unlisted_reason_is_422(app: App) -> None:  # noqa: F811
    lead = new_lead()
    await app.assign(lead)
    resp = await app.crm(crm_payload(lead, "bad_fit", reason="weird"))
    assert resp.status_code == 422, resp.text
    assert [f["name"] for f in resp.json()["errors"]] == ["reason"]
    good = await app.crm(crm_payload(lead, "bad_fit", reason="not_icp"))
    assert good.status_code == 202, good.text
    assert [(t, r) for _, t, r in await _rows(app, lead)] == [("disqualified", "not_icp")]


async def _rows(app: App, lead: str) -> list[tuple[str, str, str | None]]:  # noqa: F811
    async with app.app.state.runtime.sessions() as s:
        rows = await s.execute(
            text("SELECT activity_id, type, reason FROM followup.activities WHERE lead_id = :l"),
            {"l": lead},
        )
        return [(r[0], r[1], r[2]) for r in rows]


async def test_on_kafka_an_unlisted_or_missing_reason_is_kept_as_other(
    service: FollowupService, db: AsyncSession, registry: CollectorRegistry
) -> None:
    lead, other = new_lead(), new_lead()
    await service.on_assigned(db, event=assigned(lead))
    await service.on_assigned(db, event=assigned(other))
    at = EPOCH + timedelta(minutes=1)
    odd = activity(lead, "rejected", at).model_copy(update={"reason": "Too expensive!"})
    assert await record(service, db, odd)
    await record(service, db, activity(other, "disqualified", at))  # no reason at all
    await record(service, db, activity(other, "contacted", at - timedelta(seconds=1)))
    assert await _reasons(db, lead) == [("rejected", "other")]
    assert await _reasons(db, other) == [("contacted", None), ("disqualified", "other")]
    value = registry.get_sample_value(
        "baton_lost_reasons_total", {"type": "rejected", "reason": "other"}
    )
    assert value == 1
    listed = activity(lead, "disqualified", at).model_copy(update={"reason": "duplicate"})
    await record(service, db, listed)
    assert ("disqualified", "duplicate") in await _reasons(db, lead)
    with pytest.raises(InvalidActivity):  # what the HTTP API and webhooks call first
        service.check_reason(odd)
