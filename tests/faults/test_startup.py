"""Start-up with PostgreSQL unreachable: the process starts, /healthz answers, /readyz names
postgres, and intake refuses leads with 503 + Retry-After rather than ever answering 202."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.followup.app import create_app as followup_app
from services.intake.app import create_app as intake_app
from services.router.app import create_app as router_app
from shared.settings import Settings
from tests.e2e.conftest import fast_policy, free_port

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("factory", [intake_app, router_app, followup_app])
async def test_a_service_starts_and_reports_postgres_down(
    kafka_settings: Settings,
    env_secrets: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    factory: Callable[[Settings], FastAPI],
) -> None:
    for k, v in env_secrets.items():
        monkeypatch.setenv(k, v)
    settings = kafka_settings.model_copy(
        update={
            "database_url": f"postgresql+asyncpg://baton@127.0.0.1:{free_port()}/nowhere",
            "policy_path": fast_policy(tmp_path),
        }
    )
    app = factory(settings)
    started = time.monotonic()
    async with app.router.lifespan_context(app):
        assert time.monotonic() - started < 20, "start-up must not wait for PostgreSQL"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/healthz")).status_code == 200
            deadline = time.monotonic() + 30
            while True:  # consumers join their group in the background: kafka turns ready
                ready = await client.get("/readyz")
                if "kafka" not in ready.text or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert ready.status_code == 503
            body = ready.json()
            assert "postgres" in body["detail"] and "kafka" not in body["detail"], body
            assert [e["name"] for e in body["errors"]] == ["postgres"]
            if factory is intake_app:
                resp = await client.post(
                    "/v1/webhooks/website-demo",
                    data={"email": "down@example.com", "first_name": "Pg"},
                    headers={"Origin": "http://localhost:8001"},
                )
                assert resp.status_code == 503, resp.text
                assert resp.headers["retry-after"]
                assert resp.headers["content-type"].startswith("application/problem+json")
