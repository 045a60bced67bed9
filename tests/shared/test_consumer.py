"""ConsumerRunner on the real Kafka and PostgreSQL: poison, retries, commits, crash, redelivery."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import CloudEvent, Contact, Lead, make_event, utcnow
from shared.kafka import ConsumerRunner, ProducerLink
from shared.metrics import CommonMetrics, new_registry
from shared.runtime import Runtime
from shared.settings import Settings
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def lead_event(n: int, *, id: str | None = None) -> CloudEvent:
    key = str(uuid.uuid4())
    lead = Lead(
        lead_id=key,
        received_at=utcnow(),
        source="test",
        channel="form",
        contact=Contact(),
        message=f"#{n}",
    )
    return make_event(type="lead.received", source="/test", subject=key, data=lead, id=id)


async def produce(settings: Settings, topic: str, values: list[bytes], partition: int = 0) -> None:
    """Raw bytes into one partition, so their order (and offsets) are known."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(topic, value=v, key=b"k", partition=partition)
    finally:
        await producer.stop()


async def committed(settings: Settings, group: str, topic: str, partition: int = 0) -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    meta = offsets.get(TopicPartition(topic, partition))
    return None if meta is None or meta.offset < 0 else int(meta.offset)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.fixture
async def link(kafka_settings: Settings) -> AsyncIterator[ProducerLink]:
    lnk = ProducerLink(kafka_settings)
    await lnk.start()
    yield lnk
    await lnk.stop()


def runner(
    settings: Settings, link: ProducerLink, handler: Any, group: str | None = None
) -> ConsumerRunner:
    return ConsumerRunner(
        settings=settings,
        group_id=group or f"{settings.consumer_group_prefix}-{uuid.uuid4().hex[:6]}",
        topics=[settings.topics.leads_received],
        handler=handler,
        metrics=CommonMetrics(new_registry(), "test"),
        producer=link,
    )


async def test_poison_messages_are_dead_lettered_with_the_error_and_consumption_continues(
    kafka_settings: Settings, link: ProducerLink
) -> None:
    topic = kafka_settings.topics.leads_received
    handled: list[CloudEvent] = []

    async def handler(event: CloudEvent, _topic: str) -> None:
        handled.append(event)

    unknown = orjson.loads(lead_event(0).to_bytes()) | {"type": "lead.teleported"}
    violating = orjson.loads(lead_event(0).to_bytes())
    violating["data"]["channel"] = "carrier-pigeon"
    good = lead_event(1)
    await produce(
        kafka_settings,
        topic,
        [b"{not json", orjson.dumps(unknown), orjson.dumps(violating), good.to_bytes()],
    )
    r = runner(kafka_settings, link, handler)
    await r.start()
    try:
        await eventually(lambda: _true(len(handled) == 1))
    finally:
        await r.stop()
    assert [e.id for e in handled] == [good.id]

    records = await read_raw(kafka_settings, kafka_settings.topics.leads_dlq, 3)
    by_offset = {int(h["baton-original-offset"]): (v, h) for v, h in records}
    assert sorted(by_offset) == [0, 1, 2]
    for offset, fragment in [(0, "invalid JSON"), (1, "unknown event type"), (2, "channel")]:
        _, headers = by_offset[offset]
        assert headers["baton-error-reason"] == "poison"
        assert fragment in headers["baton-error"], headers
        assert headers["baton-original-topic"] == topic
        assert headers["baton-original-partition"] == "0"
    assert by_offset[0][0] == b"{not json"  # the original bytes, untouched
    assert await committed(kafka_settings, r.group_id, topic) == 4


async def _true(value: bool) -> bool:
    return value


async def read_raw(settings: Settings, topic: str, n: int) -> list[tuple[bytes, dict[str, str]]]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
    )
    await consumer.start()
    out: list[tuple[bytes, dict[str, str]]] = []
    try:
        deadline = time.monotonic() + 30
        while len(out) < n and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                for m in msgs:
                    out.append((m.value, {k: v.decode() for k, v in m.headers}))
    finally:
        await consumer.stop()
    return out


async def test_a_failing_handler_is_retried_then_dead_lettered(
    kafka_settings: Settings, link: ProducerLink
) -> None:
    settings = kafka_settings.model_copy(update={"consumer_max_retries": 2})
    topic = settings.topics.leads_received
    bad, good = lead_event(1), lead_event(2)
    attempts: list[str] = []

    async def handler(event: CloudEvent, _topic: str) -> None:
        attempts.append(event.id)
        if event.id == bad.id:
            raise ValueError("cannot route this lead")

    await produce(settings, topic, [bad.to_bytes(), good.to_bytes()])
    r = runner(settings, link, handler)
    await r.start()
    try:
        await eventually(lambda: _true(good.id in attempts))
    finally:
        await r.stop()
    assert attempts == [bad.id] * 3 + [good.id]  # 1 try + 2 retries, then on to the next
    [(value, headers)] = await read_raw(settings, settings.topics.leads_dlq, 1)
    assert value == bad.to_bytes()
    assert headers["baton-error-reason"] == "handler_error"
    assert headers["baton-error"] == "ValueError: cannot route this lead"
    assert headers["baton-consumer-group"] == r.group_id
    assert await committed(settings, r.group_id, topic) == 2


async def test_a_transient_error_is_retried_without_committing(
    kafka_settings: Settings, link: ProducerLink
) -> None:
    settings = kafka_settings.model_copy(update={"consumer_max_retries": 1})
    topic = settings.topics.leads_received
    event = lead_event(1)
    attempts = 0
    database_back = asyncio.Event()

    async def handler(_event: CloudEvent, _topic: str) -> None:
        nonlocal attempts
        attempts += 1
        if not database_back.is_set():
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("db down"))

    await produce(settings, topic, [event.to_bytes()])
    r = runner(settings, link, handler)
    await r.start()
    try:
        await eventually(lambda: _true(attempts >= 5), timeout=30)  # far past max_retries=1
        assert await committed(settings, r.group_id, topic) is None
        database_back.set()
        await eventually(lambda: _committed_is(settings, r.group_id, topic, 1))
    finally:
        await r.stop()
    assert await read_raw(settings, settings.topics.leads_dlq, 0) == []


async def _committed_is(settings: Settings, group: str, topic: str, value: int) -> bool:
    return await committed(settings, group, topic) == value


async def test_redelivery_of_the_same_event_id_is_a_no_op(
    kafka_settings: Settings, plumbing_schema: str
) -> None:
    runtime = Runtime.build(kafka_settings, plumbing_schema)
    topic = kafka_settings.topics.leads_received

    async def effect(session: AsyncSession, event: CloudEvent) -> None:
        await session.execute(
            text(f"INSERT INTO {plumbing_schema}.effects (event_id) VALUES (:id)"), {"id": event.id}
        )

    runtime.consume(
        group_id=f"{kafka_settings.consumer_group_prefix}-dedupe", topics=[topic], fn=effect
    )
    first, other = lead_event(1), lead_event(2)
    copy = first.model_copy(update={"time": utcnow()})  # same id, resent later
    await produce(kafka_settings, topic, [first.to_bytes(), copy.to_bytes(), other.to_bytes()])
    await runtime.start()
    try:

        async def all_three_seen() -> bool:
            return await committed(kafka_settings, runtime.consumers[0].group_id, topic) == 3

        await eventually(all_three_seen)
        # and once more after the commit, as a producer retry after a crash would
        await produce(kafka_settings, topic, [first.to_bytes()])
        await eventually(
            lambda: _committed_is(kafka_settings, runtime.consumers[0].group_id, topic, 4)
        )
        async with runtime.sessions() as session:
            rows = (
                (
                    await session.execute(
                        text(f"SELECT event_id FROM {plumbing_schema}.effects ORDER BY n")
                    )
                )
                .scalars()
                .all()
            )
    finally:
        await runtime.stop()
    assert rows == [first.id, other.id]
    samples = {
        (s.labels["outcome"]): s.value
        for m in runtime.metrics.registry.collect()
        if m.name == "baton_events_consumed"
        for s in m.samples
        if s.name.endswith("_total")
    }
    assert samples == {"handled": 2.0, "duplicate": 2.0}


HELPER = ROOT / "tests" / "shared" / "consumer_proc.py"


async def test_offsets_are_committed_only_after_the_handler_returned(
    kafka_settings: Settings, plumbing_schema: str, tmp_path: Path
) -> None:
    """SIGKILL a consumer process inside a handler; the restart resumes at or before that
    message, never after it, and the inbox turns re-deliveries into no-ops."""
    topic = kafka_settings.topics.leads_received
    group = f"{kafka_settings.consumer_group_prefix}-crash"
    events = [lead_event(i) for i in range(30)]
    await produce(kafka_settings, topic, [e.to_bytes() for e in events])
    progress = tmp_path / "progress"
    env = {
        **os.environ,
        "DATABASE_URL": kafka_settings.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.kafka_bootstrap_servers,
        "TOPIC_LEADS_RECEIVED": topic,
        "TOPIC_LEADS_DLQ": kafka_settings.topics.leads_dlq,
        "CONSUMER_BATCH_SIZE": "10",
        "CONSUMER_COMMIT_INTERVAL_SECONDS": "0",  # commit after every batch: a known position
    }
    args = [str(HELPER), plumbing_schema, group, str(progress)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, "--block-at", "17", env={**env}, cwd=ROOT
    )
    try:

        async def blocked() -> bool:
            return progress.exists() and "blocked 17" in progress.read_text()

        await eventually(blocked, timeout=60)
        at_kill = await committed(kafka_settings, group, topic)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert at_kill is not None and at_kill <= 17, "committed past a message not yet handled"

    restart = await asyncio.create_subprocess_exec(sys.executable, *args, env=env, cwd=ROOT)
    try:
        await eventually(lambda: _committed_is(kafka_settings, group, topic, 30), timeout=60)
    finally:
        restart.send_signal(signal.SIGTERM)
        await restart.wait()
    lines = progress.read_text().split()
    resumed = [int(x) for x in lines[lines.index("restart") + 1 :] if x.isdigit()]
    assert resumed[0] == at_kill, "the restart begins at the first offset not committed"
    engine_rows = await _effects(kafka_settings, plumbing_schema)
    assert sorted(engine_rows) == sorted(e.id for e in events), "each event applied exactly once"


async def _effects(settings: Settings, schema: str) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        return [r[0] for r in await conn.fetch(f"SELECT event_id FROM {schema}.effects")]
    finally:
        await conn.close()


async def _effects_in_order(settings: Settings, schema: str) -> list[str]:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text(f"SELECT event_id FROM {schema}.effects ORDER BY n"))
            return [r[0] for r in rows]
    finally:
        await engine.dispose()


async def test_a_fetch_is_handled_in_one_transaction_and_a_failing_event_alone(
    kafka_settings: Settings, plumbing_schema: str
) -> None:
    """Batch mode: poison is dead-lettered before the batch; an event the batch cannot handle
    rolls the batch back, then every event is retried on its own, so only that one is
    dead-lettered; a duplicate id inside the fetch takes effect once; offsets after all."""
    settings = kafka_settings.model_copy(update={"consumer_max_retries": 0})
    runtime = Runtime.build(settings, plumbing_schema)
    topic = settings.topics.leads_received
    insert = text(f"INSERT INTO {plumbing_schema}.effects (event_id) VALUES (:id)")
    first, bad, last = lead_event(1), lead_event(2), lead_event(3)
    batches: list[list[str]] = []

    async def one(session: AsyncSession, event: CloudEvent) -> None:
        if event.id == bad.id:
            raise ValueError("cannot route this lead")
        await session.execute(insert, {"id": event.id})

    async def many(session: AsyncSession, events: list[CloudEvent]) -> None:
        batches.append([e.id for e in events])
        for event in events:
            await one(session, event)

    runtime.consume(
        group_id=f"{settings.consumer_group_prefix}-b1", topics=[topic], fn=one, many=many
    )
    await produce(
        settings,
        topic,
        [first.to_bytes(), b"{poison", first.to_bytes(), bad.to_bytes(), last.to_bytes()],
    )
    await runtime.start()
    try:
        await eventually(lambda: _committed_is(settings, runtime.consumers[0].group_id, topic, 5))
    finally:
        await runtime.stop()
    assert batches == [[first.id, bad.id, last.id]]  # duplicate id dropped by the inbox claim
    assert await _effects_in_order(settings, plumbing_schema) == [first.id, last.id]
    dead = await read_raw(settings, settings.topics.leads_dlq, 2)
    reasons = sorted((h["baton-original-offset"], h["baton-error-reason"]) for _, h in dead)
    assert reasons == [("1", "poison"), ("3", "handler_error")]


async def test_a_poison_message_last_in_a_failed_batch_is_passed_once(
    kafka_settings: Settings, plumbing_schema: str
) -> None:
    """Poison last in its partition and a batch that fails: after the one-at-a-time retry the
    committed offset is past the poison too (it is not re-read and dead-lettered again)."""
    settings = kafka_settings.model_copy(update={"consumer_max_retries": 0})
    runtime = Runtime.build(settings, plumbing_schema)
    topic = settings.topics.leads_received
    insert = text(f"INSERT INTO {plumbing_schema}.effects (event_id) VALUES (:id)")
    first, bad = lead_event(1), lead_event(2)

    async def one(session: AsyncSession, event: CloudEvent) -> None:
        if event.id == bad.id:
            raise ValueError("cannot route this lead")
        await session.execute(insert, {"id": event.id})

    async def many(session: AsyncSession, events: list[CloudEvent]) -> None:
        for event in events:
            await one(session, event)

    runtime.consume(
        group_id=f"{settings.consumer_group_prefix}-b3", topics=[topic], fn=one, many=many
    )
    await produce(settings, topic, [first.to_bytes(), bad.to_bytes(), b"{poison"])
    await runtime.start()
    try:
        await eventually(lambda: _committed_is(settings, runtime.consumers[0].group_id, topic, 3))
    finally:
        await runtime.stop()
    assert await _effects_in_order(settings, plumbing_schema) == [first.id]
    dead = await read_raw(settings, settings.topics.leads_dlq, 2)
    reasons = sorted((h["baton-original-offset"], h["baton-error-reason"]) for _, h in dead)
    assert reasons == [("1", "handler_error"), ("2", "poison")]


async def test_a_backlog_is_handled_in_batches_in_order(
    kafka_settings: Settings, plumbing_schema: str
) -> None:
    runtime = Runtime.build(kafka_settings, plumbing_schema)
    topic = kafka_settings.topics.leads_received
    insert = text(f"INSERT INTO {plumbing_schema}.effects (event_id) VALUES (:id)")
    sizes: list[int] = []

    async def one(session: AsyncSession, event: CloudEvent) -> None:
        raise AssertionError("no event should need the per-event path")

    async def many(session: AsyncSession, events: list[CloudEvent]) -> None:
        sizes.append(len(events))
        for event in events:
            await session.execute(insert, {"id": event.id})

    events = [lead_event(i) for i in range(150)]
    await produce(kafka_settings, topic, [e.to_bytes() for e in events])
    runtime.consume(
        group_id=f"{kafka_settings.consumer_group_prefix}-b2", topics=[topic], fn=one, many=many
    )
    await runtime.start()
    try:
        await eventually(
            lambda: _committed_is(kafka_settings, runtime.consumers[0].group_id, topic, 150)
        )
    finally:
        await runtime.stop()
    assert sum(sizes) == 150 and len(sizes) < 150 and max(sizes) > 1
    assert await _effects_in_order(kafka_settings, plumbing_schema) == [e.id for e in events]
