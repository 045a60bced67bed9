"""The followup app on the real Kafka and PostgreSQL: a lead nurtured by policy comes back as
an ownerless `lead.reengage`, a parked lead's lapsed wait as a `lead.escalated` to its manager,
each published once on `leads.escalated`."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.followup.app import create_app
from shared.auth import hash_token
from shared.events import derived_id, make_event, utcnow
from shared.kafka import make_producer
from shared.settings import Settings
from tests.conftest import EventReader
from tests.followup.conftest import new_lead
from tests.followup.test_waiting import nurtured, parked

pytestmark = pytest.mark.integration
TOKEN = secrets.token_urlsafe(16)


@pytest.fixture
async def app(
    kafka_settings: Settings, env_secrets: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Any]:
    for name, value in env_secrets.items():  # the example policy's activity sources
        monkeypatch.setenv(name, value)
    settings = kafka_settings.model_copy(update={"api_tokens": f"t:read:{hash_token(TOKEN)}"})
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def test_nurture_and_parked_waits_come_back_on_kafka_once(
    app: Any, kafka_settings: Settings
) -> None:
    topics = kafka_settings.topics
    nurture_lead, parked_lead = new_lead(), new_lead()
    now = utcnow()
    park = parked(parked_lead, wait=60).model_copy(update={"parked_at": now - timedelta(minutes=5)})
    sent = [
        make_event(
            type="lead.nurtured",
            source="/test",
            subject=nurture_lead,
            data=nurtured(nurture_lead, at=now - timedelta(seconds=1)),
            id=derived_id(nurture_lead, "nurtured", 1),
        ),
        make_event(
            type="lead.parked",
            source="/test",
            subject=parked_lead,
            data=park,
            id=derived_id(parked_lead, "parked", 1),
        ),
    ]
    producer = make_producer(kafka_settings)
    await producer.start()
    try:
        async with EventReader(kafka_settings, topics.leads_escalated) as reader:
            for event in sent + sent:  # each delivered twice: the second changes nothing
                await producer.send_and_wait(
                    topics.leads_assigned, event.to_bytes(), key=event.subject.encode()
                )
            back = await reader.wait_for(lambda e: e.subject == nurture_lead, timeout=30)
            assert back.type == "lead.reengage" and back.data["owner"] is None
            told = await reader.wait_for(lambda e: e.subject == parked_lead, timeout=30)
            assert told.type == "lead.escalated"
            assert told.data["action"] == "notify_manager" and told.data["owner"] is None
            assert told.data["manager"]["email"] == "nina@example.com"
            later = await reader.drain(1.0)
        mine = [e for e in later if e.subject in (nurture_lead, parked_lead)]
        assert sorted(e.type for e in mine) == ["lead.escalated", "lead.reengage"]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            resp = await client.get(
                f"/v1/leads/{parked_lead}/sla", headers={"Authorization": f"Bearer {TOKEN}"}
            )
        assert resp.status_code == 200, resp.text
        view = resp.json()
        assert view["status"] == "parked" and view["waiting"]["status"] == "escalated"
    finally:
        await producer.stop()
        async with app.state.runtime.sessions() as s, s.begin():
            for table in ("reengagements", "waiting"):
                await s.execute(
                    text(f"DELETE FROM followup.{table} WHERE lead_id = ANY(CAST(:ids AS uuid[]))"),
                    {"ids": [nurture_lead, parked_lead]},
                )
