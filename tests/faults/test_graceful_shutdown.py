"""Graceful shutdown: SIGTERM to each service in turn while leads stream, then a restart.

For each one: the process finishes its shutdown (the lifespan runs to its end); requests in
flight complete, so no sender sees a connection error for a lead intake accepted; the consumed
offsets are committed, so the restarted process re-handles nothing (no inbox duplicates);
and the outbox is flushed before exit (no rows left for that service while Kafka is up).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from shared.events import LeadAssigned, utcnow
from tests.conftest import EventReader
from tests.e2e.conftest import Stack
from tests.faults.conftest import (
    Sent,
    assert_clean,
    hidden_accepts,
    metric_sum,
    metrics_of,
    outbox_depths,
    reconcile,
    record,
    spawn,
    sql,
    start_all,
    stream_leads,
    terminate,
)

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

LEADS = 240
BURST = 150  # leads queued for a consumer while it is down
ORDER = ("router", "followup", "intake")  # intake last: the stream goes through it


async def test_sigterm_each_service_while_leads_stream(fault_stack: Stack) -> None:
    stack = fault_stack
    settings = stack.settings
    await start_all(stack)
    took: dict[str, float] = {}
    left: dict[str, dict[str, int]] = {}
    marks: dict[str, float] = {}
    gates = {name: asyncio.Event() for name in ORDER}  # stopped and back
    signalled = {name: asyncio.Event() for name in ORDER}  # SIGTERM sent
    tasks: list[asyncio.Task[None]] = []

    slow: dict[str, list[tuple[int | str, dict[str, Any]]]] = {}
    bursts: list[Sent] = []
    busy: dict[str, tuple[float, float]] = {}  # events handled at the busy SIGTERM, backlog
    consumed = {
        "router": settings.topics.leads_received,
        "followup": settings.topics.leads_assigned,
    }

    async def sigterm(name: str, label: str) -> None:
        signalling = asyncio.create_task(asyncio.to_thread(terminate, stack, name))
        await asyncio.sleep(0.05)
        signalled[name].set()
        took[label] = await signalling
        left[label] = await outbox_depths(settings)  # Kafka is up: it must have been flushed

    async def cycle(name: str) -> None:
        try:
            # requests in flight at the SIGTERM: their bodies arrive 1.5 s after it
            if name == "intake":
                pending = [slow_lead(stack, f"slow-{uuid.uuid4().hex[:8]}") for _ in range(3)]
            elif name == "followup":
                pending = [slow_activity(stack, lead) for lead in await assigned_leads(3)]
            else:
                pending = []
            inflight = [asyncio.create_task(p) for p in pending]
            await asyncio.sleep(0.5)  # headers and the first half of each body are in
            marks[f"{name}-sigterm"] = time.monotonic()
            await sigterm(name, name)
            slow[name] = await asyncio.gather(*inflight)
            if name in consumed:
                # A consumer in the middle of a backlog: while it is down a burst of leads
                # queues up for it; restarted, it gets SIGTERM as soon as it has handled
                # the first of them (it must finish its batch, commit, flush, then exit).
                bursts.append(await stream_leads(stack, BURST))
                await asyncio.to_thread(spawn, stack, name)
                busy[name] = (await _handled_once(stack.url(name), consumed[name]), BURST)
                await sigterm(name, f"{name} (busy)")
            await asyncio.to_thread(stack.start, name)
            marks[f"{name}-back"] = time.monotonic()
        finally:
            signalled[name].set()
            gates[name].set()

    async def assigned_leads(n: int) -> list[LeadAssigned]:
        async with EventReader(settings, settings.topics.leads_assigned) as reader:
            await reader.wait_for(lambda e: len(reader.seen) >= n, timeout=30)
            return [LeadAssigned.model_validate(e.data) for _, e, _ in reader.seen[:n]]

    step = LEADS // (len(ORDER) + 1)

    async def on_progress(done: int) -> None:
        # SIGTERM one service every `step` leads. Gates keep each shutdown mid-stream
        # whatever the machine's speed: half a step later the stream waits until the SIGTERM
        # has been sent (then goes on while the process shuts down and restarts), and the
        # next service is only stopped once the previous one is back.
        for i, name in enumerate(ORDER):
            trigger = step * (i + 1)
            if done == trigger:
                tasks.append(asyncio.create_task(cycle(name)))
            if done >= trigger + step // 2:
                await signalled[name].wait()
            if done >= trigger + step - 1:
                await gates[name].wait()
        await asyncio.sleep(0.05)

    sent = await stream_leads(stack, LEADS, on_progress=on_progress, retry=True)
    await asyncio.gather(*tasks)
    # the requests in flight at each SIGTERM completed
    for name, results in slow.items():
        assert [status for status, _ in results] == [202] * len(results), (name, results)
    slow_leads = [str(body["lead_id"]) for _, body in slow.get("intake", [])]
    activity_ids = {str(body["activity_id"]) for _, body in slow.get("followup", [])}
    assert len(slow_leads) == 3 and len(activity_ids) == 3
    async with EventReader(settings, settings.topics.leads_activity) as reader:
        for activity_id in activity_ids:  # accepted during shutdown, published before exit
            await reader.wait_for(
                lambda e, a=activity_id: e.data.get("activity_id") == a, timeout=30
            )
    burst_leads = [x for b in bursts for x in b.accepted]
    assert len(burst_leads) == BURST * len(consumed), [b.refused for b in bursts]
    everything = sent.accepted + burst_leads + slow_leads
    r = await reconcile(settings, everything)
    recovery = r.complete_at - marks["intake-back"] if r.complete_at else None
    record(
        "SIGTERM to router, followup, then intake mid-stream, each restarted (shutdown took "
        + ", ".join(f"{n} {t:.1f} s" for n, t in took.items())
        + ")",
        len(everything),
        r,
        recovery,
    )

    # in-flight requests completed: a transport error never hid an accepted lead
    failed = [a for a in sent.attempts if a.status is None]
    print(f"{len(failed)} attempts saw a transport error: {sorted({str(a.error) for a in failed})}")
    hidden = await hidden_accepts(settings, sent)
    assert not hidden, (
        f"accepted while the sender saw an error: {[(a.key, a.error) for a in hidden]}"
    )
    assert sent.accepted and not sent.given_up and set(sent.refused) <= {503}, sent.refused
    assert len(sent.accepted) == LEADS == len(set(sent.accepted))
    assert_clean(r)

    # the outbox was flushed before each exit
    for label, depths in left.items():
        name = label.split()[0]
        assert depths[name] == 0, f"{label} exited with {depths[name]} unsent outbox rows"
    print(f"events handled when the busy consumer got SIGTERM (of its backlog): {busy}")

    # offsets were committed: the restarted consumers re-handled nothing
    assigned = await sql(
        settings,
        "SELECT count(DISTINCT lead_id) FROM router.assignments WHERE lead_id = ANY($1)",
        [uuid.UUID(x) for x in everything],
    )
    for name in ORDER:
        samples = await metrics_of(stack.url(name))
        duplicates = metric_sum(samples, "baton_events_consumed_total", outcome="duplicate")
        assert duplicates == 0, f"restarted {name} re-handled {duplicates} events"
    print(f"shutdown took {took}; {assigned[0][0]} leads assigned")


async def _slow_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | str, Any]:
    """POST whose body arrives in two halves 1.5 s apart: in flight across a SIGTERM."""

    async def chunks() -> AsyncIterator[bytes]:
        yield body[: len(body) // 2]
        await asyncio.sleep(1.5)
        yield body[len(body) // 2 :]

    try:
        async with httpx.AsyncClient(timeout=30) as client:
            resp = await client.post(url, content=chunks(), headers=headers)
    except httpx.HTTPError as exc:
        return type(exc).__name__, {}
    return resp.status_code, resp.json()


async def slow_lead(stack: Stack, key: str) -> tuple[int | str, Any]:
    form = {
        "email": f"{key}@slow.example.com",
        "first_name": "Slow",
        "last_name": "Sender",
        "job_title": "VP Sales",
        "company": "Slow Example",
        "company_size": "500",
        "country": "DE",
        "demo_request": "yes",
        "consent": "yes",
    }
    return await _slow_post(
        stack.url("intake") + "/v1/webhooks/website-demo",
        urlencode(form).encode(),
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": "http://localhost:8001",
            "Idempotency-Key": key,
        },
    )


async def slow_activity(stack: Stack, lead: LeadAssigned) -> tuple[int | str, Any]:
    body = {
        "activity_id": f"slow-{uuid.uuid4().hex[:8]}",
        "type": "accepted",
        "at": utcnow().isoformat(),
        "actor": lead.owner.id or "rep",
    }
    return await _slow_post(
        stack.url("followup") + f"/v1/leads/{lead.lead_id}/activities",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "Authorization": f"Bearer {stack.token}"},
    )


async def _handled_once(url: str, topic: str, timeout: float = 60) -> float:
    """Poll /metrics until the process has handled an event of `topic`; returns the count."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            samples = await metrics_of(url)
        except httpx.HTTPError:
            samples = {}
        n = metric_sum(samples, "baton_events_consumed_total", topic=topic, outcome="handled")
        if n > 0:
            return n
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} handled nothing of {topic} within {timeout}s")
