"""Two routers and two consumer-group rebalances while leads stream: a second router process
joins the group mid-stream (partitions move to it), then the first one gets SIGTERM (its
partitions move back). Every accepted lead must be assigned exactly once."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.e2e.conftest import Stack
from tests.faults.conftest import (
    assert_clean,
    metric_sum,
    metrics_of,
    reconcile,
    record,
    spawn,
    start_all,
    stream_leads,
    terminate,
)

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

LEADS = 240


async def test_two_routers_rebalance_mid_stream(fault_stack: Stack) -> None:
    stack = fault_stack
    received = stack.settings.topics.leads_received
    await start_all(stack)
    marks: dict[str, float] = {}
    handled: dict[str, float] = {}
    tasks: list[asyncio.Task[None]] = []

    joined, left = asyncio.Event(), asyncio.Event()

    async def join() -> None:
        try:
            await asyncio.to_thread(spawn, stack, "router", name="router2", ready=True)
            marks["joined"] = time.monotonic()
        finally:
            joined.set()  # never leave the stream waiting: a failure surfaces from gather()

    async def leave() -> None:
        try:
            await asyncio.sleep(2)  # a couple of seconds with two members sharing partitions
            samples = await metrics_of(stack.url("router"))
            handled["router"] = metric_sum(
                samples, "baton_events_consumed_total", topic=received, outcome="handled"
            )
            marks["sigterm"] = time.monotonic()
            took = await asyncio.to_thread(terminate, stack, "router")
            marks["left"] = time.monotonic()
            print(f"first router shut down gracefully in {took:.1f}s")
        finally:
            left.set()

    async def on_progress(done: int) -> None:
        # Gates keep each fault mid-stream whatever the machine's speed: the stream waits at
        # half-way for the second router, and at five sixths for the first one to be gone.
        if done == LEADS // 6:
            tasks.append(asyncio.create_task(join()))
        if done >= LEADS // 2:
            await joined.wait()
        if done == LEADS // 2:
            tasks.append(asyncio.create_task(leave()))
        if done >= 5 * LEADS // 6:
            await left.wait()
        await asyncio.sleep(0.03)

    sent = await stream_leads(stack, LEADS, on_progress=on_progress)
    await asyncio.gather(*tasks)
    assert "left" in marks, "the stream ended before both rebalances happened"
    r = await reconcile(stack.settings, sent.accepted)
    recovery = r.complete_at - marks["left"] if r.complete_at else None
    record("Second router joined mid-stream, then the first got SIGTERM", LEADS, r, recovery)

    assert r.accepted == LEADS and sent.errors == 0 and not sent.refused
    after_join = [t for t in sent.accepted_at if marks["joined"] < t < marks["sigterm"]]
    after_leave = [t for t in sent.accepted_at if t > marks["left"]]
    assert after_join and after_leave, "both rebalances must land mid-stream"
    samples = await metrics_of(stack.url("router2"))
    handled["router2"] = metric_sum(
        samples, "baton_events_consumed_total", topic=received, outcome="handled"
    )
    print(f"lead.received handled: {handled}")
    assert handled["router"] > 0 and handled["router2"] > 0, handled
    assert_clean(r)
