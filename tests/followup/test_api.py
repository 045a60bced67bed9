"""The followup app in-process on the real Kafka and PostgreSQL: HTTP and Kafka activity paths."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.followup.app import create_app
from shared.auth import hash_token
from shared.events import make_event, utcnow
from shared.kafka import make_producer
from shared.settings import Settings
from tests.conftest import EventReader
from tests.followup.conftest import activity, assigned, new_lead

pytestmark = pytest.mark.integration


@pytest.fixture
async def app_client(
    kafka_settings: Settings, env_secrets: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, str, Any]]:
    for name, value in env_secrets.items():  # the example policy's activity sources
        monkeypatch.setenv(name, value)
    token = secrets.token_urlsafe(16)
    settings = kafka_settings.model_copy(
        update={"api_tokens": f"tool:read+write:{hash_token(token)}"}
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, token, app


async def _cleanup(app: Any, leads: list[str]) -> None:
    async with app.state.runtime.sessions() as s, s.begin():
        for table in ("clocks", "windows", "activities", "escalations", "reengagements"):
            await s.execute(
                text(f"DELETE FROM followup.{table} WHERE lead_id = ANY(CAST(:ids AS uuid[]))"),
                {"ids": leads},
            )


async def _wait_for_sla(client: httpx.AsyncClient, token: str, lead: str) -> dict[str, Any]:
    for _ in range(150):
        resp = await client.get(
            f"/v1/leads/{lead}/sla", headers={"Authorization": f"Bearer {token}"}
        )
        if resp.status_code == 200:
            body: dict[str, Any] = resp.json()
            return body
        await asyncio.sleep(0.2)
    raise AssertionError("no clock for the lead")


async def test_unknown_lead_via_http_is_404_problem_json(
    app_client: tuple[httpx.AsyncClient, str, Any],
) -> None:
    client, token, _ = app_client
    lead = new_lead()
    body = {"type": "contacted", "at": utcnow().isoformat(), "actor": "rep-a"}
    resp = await client.post(
        f"/v1/leads/{lead}/activities", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["type"].endswith("/lead-not-found")
    unauth = await client.post(f"/v1/leads/{lead}/activities", json=body)
    assert unauth.status_code == 401
    nurture = {**body, "type": "not_ready"}  # without reengage_at
    bad = await client.post(
        f"/v1/leads/{lead}/activities", json=nurture, headers={"Authorization": f"Bearer {token}"}
    )
    assert bad.status_code == 422, bad.text
    assert bad.json()["errors"][0]["name"] == "reengage_at"


async def test_assignment_and_activities_over_kafka_and_http(
    app_client: tuple[httpx.AsyncClient, str, Any], kafka_settings: Settings
) -> None:
    client, token, app = app_client
    topics = kafka_settings.topics
    auth = {"Authorization": f"Bearer {token}"}
    known, unknown = new_lead(), new_lead()
    now = utcnow()
    producer = make_producer(kafka_settings)
    await producer.start()
    try:
        assigned_event = make_event(
            type="lead.assigned",
            source="/test",
            subject=known,
            data=assigned(known, at=now, owner="rep-a"),
        )
        stray = activity(unknown, "contacted", now, activity_id=None)
        stray_event = make_event(type="lead.activity", source="/test", subject=unknown, data=stray)
        await producer.send_and_wait(
            topics.leads_assigned, assigned_event.to_bytes(), key=known.encode()
        )
        await producer.send_and_wait(
            topics.leads_activity, stray_event.to_bytes(), key=unknown.encode()
        )

        sla = await _wait_for_sla(client, token, known)
        assert sla["status"] == "open" and sla["owner_id"] == "rep-a"
        assert sla["windows"][0]["assignment_seq"] == 1

        async with EventReader(kafka_settings, topics.leads_activity) as reader:
            body = {
                "activity_id": f"crm-{known}",
                "type": "contacted",
                "at": (now + timedelta(minutes=2)).isoformat(),
                "actor": "rep-b",
            }
            for _ in range(2):
                resp = await client.post(f"/v1/leads/{known}/activities", json=body, headers=auth)
                assert resp.status_code == 202, resp.text
                assert resp.json()["activity_id"] == f"crm-{known}"
            published = await reader.wait_for(lambda e: e.subject == known, timeout=30)
            assert published.id == f"crm-{known}" and published.data["type"] == "contacted"
            later = await reader.drain(1.0)
        assert sum(1 for e in later if e.subject == known) == 1

        sla = (await client.get(f"/v1/leads/{known}/sla", headers=auth)).json()
        assert sla["status"] == "met" and sla["escalations"] == []
        assert [(a["actor"], a["other_owner"]) for a in sla["activities"]] == [("rep-b", True)]

        for _ in range(150):  # the stray activity is kept, pending its assignment
            async with app.state.runtime.sessions() as s:
                state = await s.scalar(
                    text("SELECT state FROM followup.activities WHERE lead_id = :l"),
                    {"l": unknown},
                )
            if state is not None:
                break
            await asyncio.sleep(0.2)
        assert state == "pending"
    finally:
        await producer.stop()
        await _cleanup(app, [known, unknown])
