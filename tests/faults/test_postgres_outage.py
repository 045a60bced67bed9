"""PostgreSQL stopped for 30 s mid-stream, on a dedicated cluster we may stop.

While it is down intake must never answer 202 (the lead would not be durable): it answers 503
with Retry-After, and every service's /readyz is 503 naming postgres. The test client behaves
like a real webhook sender: it retries a 503 after Retry-After with the same Idempotency-Key.
When PostgreSQL returns, everything recovers by itself (pools, consumers, relays, LISTEN) and
every accepted lead comes out of the router exactly once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from shared.settings import Settings
from tests.e2e.conftest import Stack
from tests.faults.conftest import (
    PgInstance,
    assert_clean,
    hidden_accepts,
    make_stack,
    metric_sum,
    metrics_of,
    outbox_depths,
    reconcile,
    record,
    sql,
    start_all,
    stop_all,
    stream_leads,
    wait_ready,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

LEADS = 120
OUTAGE_SECONDS = 30.0
SERVICES = ("intake", "router", "followup")


@pytest.fixture
async def pg_stack(
    dedicated_pg: PgInstance, fault_settings: Settings, env_secrets: dict[str, str], tmp_path: Path
) -> AsyncIterator[Stack]:
    settings = fault_settings.model_copy(update={"database_url": dedicated_pg.url})
    s = make_stack(settings, env_secrets, tmp_path)
    try:
        yield s
    finally:
        stop_all(s)
        await asyncio.to_thread(dedicated_pg.start)  # idempotent: back up if a test failed


async def test_postgres_stopped_for_30s_mid_stream(
    dedicated_pg: PgInstance, pg_stack: Stack
) -> None:
    stack = pg_stack
    settings = stack.settings
    await start_all(stack)
    marks: dict[str, float] = {}
    readyz: dict[str, httpx.Response] = {}
    tasks: list[asyncio.Task[None]] = []

    async def outage() -> None:
        await asyncio.to_thread(dedicated_pg.stop)
        marks["down"] = time.monotonic()
        await asyncio.sleep(3)  # pools and consumers have met the outage by now
        async with httpx.AsyncClient(timeout=10) as client:
            for name in SERVICES:
                readyz[name] = await client.get(stack.url(name) + "/readyz")
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - marks["down"])))
        marks["restarting"] = time.monotonic()
        await asyncio.to_thread(dedicated_pg.start)
        marks["back"] = time.monotonic()
        for name in SERVICES:  # recovered by themselves: nobody restarts them
            await wait_ready(stack.url(name), timeout=60)
        marks["ready"] = time.monotonic()

    async def on_progress(done: int) -> None:
        if done == LEADS // 4:
            tasks.append(asyncio.create_task(outage()))
        await asyncio.sleep(0.05)

    sent = await stream_leads(stack, LEADS, on_progress=on_progress, retry=True)
    await asyncio.gather(*tasks)
    r = await reconcile(settings, sent.accepted)
    recovery = r.complete_at - marks["back"] if r.complete_at else None
    ready = marks["ready"] - marks["back"]
    record(
        f"PostgreSQL stopped for {OUTAGE_SECONDS:.0f} s mid-stream, restarted"
        f" (all /readyz 200 again {ready:.1f} s after it returned)",
        LEADS,
        r,
        recovery,
    )

    # While it was down: 503 + Retry-After, never 202.
    down = [a for a in sent.attempts if a.started > marks["down"] and a.ended < marks["restarting"]]
    assert down, "the stream must keep sending while PostgreSQL is down"
    assert not [a for a in down if a.status == 202], "202 while PostgreSQL was down"
    answered = [a for a in down if a.status is not None]
    assert answered and all(a.status == 503 and a.retry_after for a in answered), {
        (a.status, a.retry_after) for a in answered
    }
    # A sender sleeping Retry-After (5 s) meets uvicorn's 5 s keep-alive timeout now and
    # then: that attempt fails on the wire, unprocessed, and is retried like any other.
    assert not await hidden_accepts(settings, sent)
    assert not sent.given_up, sent.given_up
    assert set(sent.refused) == {503}, sent.refused
    retried = {a.key for a in sent.attempts if a.status == 503}
    print(f"{len(down)} attempts during the outage, {len(retried)} leads retried after a 503")
    for name in SERVICES:
        resp = readyz[name]
        assert resp.status_code == 503, (name, resp.text)
        assert "postgres" in resp.json()["detail"], (name, resp.text)

    # Afterwards: each lead accepted exactly once (retries with the same key were replays).
    assert len(sent.accepted) == LEADS == len(set(sent.accepted))
    assert_clean(r)

    async def drained() -> bool:
        return not any((await outbox_depths(settings)).values())

    await wait_until(drained, timeout=60, what="every outbox drained")
    assigned = await _assigned_ids(settings, sent.accepted)

    async def clocks_started() -> bool:
        rows = await sql(
            settings,
            "SELECT count(*) FROM followup.clocks WHERE lead_id = ANY($1::uuid[])",
            [uuid.UUID(x) for x in assigned],
        )
        return int(rows[0][0]) == len(assigned)

    await wait_until(clocks_started, timeout=60, what="followup clock for every assigned lead")
    for name in ("router", "followup"):
        samples = await metrics_of(stack.url(name))
        assert metric_sum(samples, "baton_events_dead_lettered_total") == 0, name


async def _assigned_ids(settings: Settings, lead_ids: list[str]) -> list[str]:
    rows = await sql(
        settings,
        "SELECT DISTINCT lead_id::text FROM router.assignments WHERE lead_id = ANY($1::uuid[])",
        [uuid.UUID(x) for x in lead_ids],
    )
    assert rows, "no lead was assigned"
    return [r[0] for r in rows]
