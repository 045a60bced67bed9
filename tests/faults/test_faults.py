"""Faults survived, proven by reconciliation: every lead intake answered 202 for comes out of the
router exactly once (assigned, merged or disqualified), whatever was killed on the way.

Each test streams leads through the three services (real processes) on a dedicated broker,
injects one fault mid-stream, lets everything recover by itself, and reconciles the 202s
against Kafka and PostgreSQL. Results are appended to .local/fault-results.jsonl; the table in
docs/reliability.md comes from a real run.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.settings import Settings
from tests.e2e.conftest import Stack
from tests.faults.conftest import (
    Broker,
    assert_clean,
    reconcile,
    record,
    spawn,
    stream_leads,
    wait_ready,
)

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

LEADS = 200


async def start_all(stack: Stack) -> None:
    for name in ("intake", "router", "followup"):
        await asyncio.to_thread(stack.start, name)


async def test_broker_sigkilled_mid_stream_and_restarted(
    broker: Broker, fault_stack: Stack
) -> None:
    await start_all(fault_stack)
    tasks: list[asyncio.Task[None]] = []
    marks: dict[str, float] = {}
    readyz_while_down: list[httpx.Response] = []

    async def restart() -> None:
        await asyncio.sleep(3)  # a few seconds of outage while leads keep arriving
        async with httpx.AsyncClient(timeout=5) as client:
            readyz_while_down.append(await client.get(fault_stack.url("intake") + "/readyz"))
        await asyncio.to_thread(broker.start)
        marks["back"] = time.monotonic()

    async def on_progress(done: int) -> None:
        if done == LEADS // 3:
            broker.kill()
            marks["killed"] = time.monotonic()
            tasks.append(asyncio.create_task(restart()))
        await asyncio.sleep(0.01)  # a stream, not a burst: the kill lands mid-way

    sent = await stream_leads(fault_stack, LEADS, on_progress=on_progress)
    await asyncio.gather(*tasks)
    r = await reconcile(fault_stack.settings, sent.accepted)
    recovery = r.complete_at - marks["back"] if r.complete_at else None
    record("Kafka broker SIGKILLed mid-stream, restarted", LEADS, r, recovery)

    assert sent.errors == 0 and not sent.refused, (sent.errors, sent.refused)
    assert r.accepted == LEADS, "intake keeps answering 202 (outbox) while Kafka is down"
    during = [t for t in sent.accepted_at if marks["killed"] < t < marks["back"]]
    assert during, "the fault must land mid-stream: some leads accepted while Kafka was down"
    print(f"{len(during)} leads accepted while the broker was down")
    assert_clean(r)
    [down] = readyz_while_down
    assert down.status_code == 503 and "kafka" in down.text, down.text
    for name in ("intake", "router", "followup"):
        await wait_ready(fault_stack.url(name), timeout=60)


async def test_router_sigkilled_mid_batch_and_restarted(fault_stack: Stack) -> None:
    await start_all(fault_stack)
    tasks: list[asyncio.Task[None]] = []
    marks: dict[str, float] = {}

    async def restart() -> None:
        await asyncio.sleep(2)
        marks["restarting"] = time.monotonic()
        await asyncio.to_thread(fault_stack.start, "router")

    async def on_progress(done: int) -> None:
        if done == LEADS // 3:
            fault_stack.stop("router", kill=True)
            tasks.append(asyncio.create_task(restart()))
        await asyncio.sleep(0.01)

    sent = await stream_leads(fault_stack, LEADS, on_progress=on_progress)
    await asyncio.gather(*tasks)
    r = await reconcile(fault_stack.settings, sent.accepted)
    recovery = r.complete_at - marks["restarting"] if r.complete_at else None
    record("Router SIGKILLed mid-batch, restarted", LEADS, r, recovery)
    assert r.accepted == LEADS
    assert_clean(r)


async def _copy_topic(settings: Settings, topic: str, subjects: set[str]) -> int:
    """Re-produce every record of `topic` about `subjects` (same key, same bytes)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=f"copy-{uuid.uuid4().hex[:8]}",
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    await producer.start()
    copied = 0
    try:
        end = await consumer.end_offsets(
            [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or [])]
        )
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for msgs in batch.values():
                for msg in msgs:
                    if msg.key is not None and msg.key.decode() in subjects:
                        await producer.send(topic, value=msg.value, key=msg.key)
                        copied += 1
            positions = {tp: await consumer.position(tp) for tp in end}
            if all(positions[tp] >= end[tp] for tp in end):
                break
        await producer.flush()
    finally:
        await producer.stop()
        await consumer.stop()
    return copied


async def _caught_up(
    settings: Settings, group: str, topics: list[str], timeout: float = 90
) -> None:
    """Wait until the group's committed offsets reach the end of its topics."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    probe = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    await probe.start()
    try:
        tps: list[TopicPartition] = []
        for t in topics:
            parts = probe.partitions_for_topic(t)
            if parts is None:
                await probe._client.force_metadata_update()
                parts = probe.partitions_for_topic(t) or set()
            tps += [TopicPartition(t, p) for p in parts]
        end = await probe.end_offsets(tps)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            committed = await admin.list_consumer_group_offsets(group)
            if all(
                tp in committed and committed[tp].offset >= end[tp] for tp in tps if end[tp] > 0
            ):
                return
            await asyncio.sleep(0.5)
        raise AssertionError(f"group {group} did not catch up within {timeout}s")
    finally:
        await probe.stop()
        await admin.close()


async def _db_state(settings: Settings, lead_ids: list[str]) -> tuple[int, int, int]:
    import asyncpg

    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        ids = [uuid.UUID(x) for x in lead_ids]
        assignments = await conn.fetchval(
            "SELECT count(*) FROM router.assignments WHERE lead_id = ANY($1::uuid[])", ids
        )
        decisions = await conn.fetchval(
            "SELECT count(*) FROM router.decisions WHERE lead_id = ANY($1::uuid[])", ids
        )
        clocks = await conn.fetchval(
            "SELECT count(*) FROM followup.clocks WHERE lead_id = ANY($1::uuid[])", ids
        )
        return int(assignments), int(decisions), int(clocks)
    finally:
        await conn.close()


async def test_every_event_delivered_twice_changes_nothing(fault_stack: Stack) -> None:
    await start_all(fault_stack)
    settings = fault_stack.settings
    n = LEADS // 2
    sent = await stream_leads(fault_stack, n)
    before = await reconcile(settings, sent.accepted)
    assert_clean(before)
    await _caught_up(
        settings, f"{settings.consumer_group_prefix}-followup", [settings.topics.leads_assigned]
    )
    state_before = await _db_state(settings, sent.accepted)

    subjects = set(sent.accepted)
    started = time.monotonic()
    copies = await _copy_topic(settings, settings.topics.leads_received, subjects)
    copies += await _copy_topic(settings, settings.topics.leads_assigned, subjects)
    assert copies >= 2 * len(sent.accepted)
    await _caught_up(
        settings, f"{settings.consumer_group_prefix}-router", [settings.topics.leads_received]
    )
    await _caught_up(
        settings, f"{settings.consumer_group_prefix}-followup", [settings.topics.leads_assigned]
    )
    settled = time.monotonic() - started

    after = await reconcile(settings, sent.accepted)
    record("Every received/assigned event delivered twice", n, after, settled)
    assert_clean(after)
    # no new outcome: the only extra messages on Kafka are the copies we made ourselves
    assert after.distinct_outcome_ids == before.distinct_outcome_ids
    assert await _db_state(settings, sent.accepted) == state_before


async def test_services_start_with_kafka_down_and_connect_when_it_returns(
    broker: Broker, fault_stack: Stack
) -> None:
    """Start-up never waits for Kafka: /healthz answers, /readyz names kafka, intake keeps
    accepting leads into its outbox; when the broker returns everything connects by itself."""
    broker.kill()
    try:
        for name in ("intake", "router", "followup"):
            await asyncio.to_thread(spawn, fault_stack, name)
        async with httpx.AsyncClient(timeout=10) as client:
            for name in ("intake", "router", "followup"):
                ready = await client.get(fault_stack.url(name) + "/readyz")
                assert ready.status_code == 503, ready.text
                assert ready.headers["content-type"].startswith("application/problem+json")
                assert (
                    "kafka" in ready.json()["detail"] and "postgres" not in ready.json()["detail"]
                )
        sent = await stream_leads(fault_stack, 20)
        assert len(sent.accepted) == 20, (sent.refused, sent.errors)
    finally:
        await asyncio.to_thread(broker.start)
    back = time.monotonic()
    for name in ("intake", "router", "followup"):
        await wait_ready(fault_stack.url(name), timeout=90)
    ready_after = time.monotonic() - back
    r = await reconcile(fault_stack.settings, sent.accepted)
    recovery = r.complete_at - back if r.complete_at else None
    record("Services started while Kafka was down", 20, r, recovery)
    print(f"all three ready {ready_after:.1f}s after the broker returned")
    assert_clean(r)


async def test_thousand_leads_posted_while_kafka_is_stopped_all_arrive_once(
    broker: Broker, fault_stack: Stack
) -> None:
    """Issue #3's promise: Kafka down is not an outage and loses nothing."""
    n = 1_000
    await start_all(fault_stack)
    await asyncio.to_thread(broker.stop)
    try:
        sent = await stream_leads(fault_stack, n, concurrency=8)
    finally:
        await asyncio.to_thread(broker.start)
    back = time.monotonic()
    assert sent.errors == 0 and not sent.refused, (sent.errors, sent.refused)
    assert len(sent.accepted) == n, "every lead got its 202 while Kafka was stopped"
    r = await reconcile(fault_stack.settings, sent.accepted)
    recovery = r.complete_at - back if r.complete_at else None
    record("1,000 leads posted while the broker was stopped, then started", n, r, recovery)
    assert r.accepted == n
    assert_clean(r)
