"""The router's ticker: a policy reload (endpoint or SIGHUP) wakes it, so the eligible-reps
gauges follow the new policy at once instead of at the next 15-second tick."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.router.ticker import GAUGE_REFRESH_SECONDS
from shared.settings import Settings
from tests.router.conftest import RouterKit, running_router

pytestmark = pytest.mark.integration
TOKEN = "router-ticker-admin-token"
SOON = 5.0  # well inside one refresh interval
CLOSED = 'baton_team_eligible_reps{team="closed"}'


def _write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _closed_desk(active: bool) -> Any:
    def change(data: dict[str, Any]) -> None:
        for team in data["teams"]:
            if team["id"] == "closed":
                for rep in team["reps"]:
                    rep["active"] = active

    return change


@pytest.fixture
async def client(
    kafka_settings: Settings, kit: RouterKit, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    policy = kit.policy_data(_closed_desk(False))
    async with running_router(kafka_settings, policy, tmp_path / "p.yaml", token=TOKEN) as r:
        yield r.client, r.policy_path


async def _wait_for_gauge(client: httpx.AsyncClient, line: str) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SOON
    while loop.time() < deadline:
        if line in (await client.get("/metrics")).text:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_reload_by_endpoint_or_sighup_refreshes_the_gauges_at_once(
    client: tuple[httpx.AsyncClient, Path], kit: RouterKit
) -> None:
    assert SOON < GAUGE_REFRESH_SECONDS  # else the periodic tick alone could pass this test
    c, path = client
    assert await _wait_for_gauge(c, f"{CLOSED} 0.0")  # the first tick, at start-up

    _write(path, kit.policy_data(_closed_desk(True)))
    resp = await c.post("/v1/admin/policy/reload")
    assert resp.status_code == 200, resp.text
    assert await _wait_for_gauge(c, f"{CLOSED} 1.0")

    _write(path, kit.policy_data(_closed_desk(False)))
    os.kill(os.getpid(), signal.SIGHUP)
    assert await _wait_for_gauge(c, f"{CLOSED} 0.0")
