"""PostgreSQL unreachable: intake still starts and answers, but never says 202 for a lead it
could not make durable: /readyz names postgres, a webhook gets 503 with Retry-After."""

from __future__ import annotations

import json

import pytest

from shared.settings import Settings
from tests.conftest import EventReader
from tests.intake.conftest import (
    JSON,
    chat_payload,
    running_intake,
    standard_headers,
    unique_email,
    website_form,
)

pytestmark = pytest.mark.integration

NOTHING_LISTENS = "postgresql+asyncpg://baton@127.0.0.1:1/baton"


async def test_database_down_starts_and_answers_503(
    kafka_settings: Settings, intake_env: dict[str, str]
) -> None:
    settings = kafka_settings.model_copy(update={"database_url": NOTHING_LISTENS})
    async with running_intake(settings, intake_env) as it:
        assert (await it.client.get("/healthz")).status_code == 200
        ready = await it.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.headers["content-type"].startswith("application/problem+json")
        assert "postgres" in ready.json()["detail"]
        assert [e["name"] for e in ready.json()["errors"]] == ["postgres"]

        email = unique_email("brightpath.io")
        body = json.dumps(chat_payload(email)).encode()
        secret = intake_env["BATON_SECRET_CHAT_WIDGET"]
        resp = await it.post("chat-widget", body, JSON, standard_headers(secret, body))
        assert resp.status_code == 503, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert int(resp.headers["retry-after"]) >= 1
        problem = resp.json()
        assert problem["status"] == 503 and problem["type"].endswith("/unavailable")

        resp = await it.website(website_form(unique_email()))
        assert resp.status_code == 503
        # verification still comes first: a bad signature is 401, not 503
        resp = await it.post("chat-widget", body, JSON)
        assert resp.status_code == 401

        async with EventReader(settings, settings.topics.leads_received) as reader:
            assert await reader.drain(1.0) == []  # a 503 never publishes

        metrics = (await it.client.get("/metrics")).text
        assert 'baton_webhooks_total{source="chat-widget",status="503"} 1.0' in metrics
