"""The outbox relay on the real PostgreSQL and Kafka: order, ack-before-delete, NOTIFY, one at a time."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.db import Outbox, make_engine
from shared.events import Contact, Lead, make_event, utcnow
from shared.kafka import ProducerLink
from shared.metrics import CommonMetrics, new_registry
from shared.relay import OutboxRelay
from shared.settings import Settings
from tests.conftest import EventReader
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.integration


def event_for(key: str, n: int) -> Any:
    lead = Lead(
        lead_id=key,
        received_at=utcnow(),
        source="test",
        channel="form",
        contact=Contact(),
        message=f"#{n}",
    )
    return make_event(type="lead.received", source="/test", subject=key, data=lead)


async def add_rows(
    engine: AsyncEngine, schema: str, topic: str, rows: list[tuple[str, int]]
) -> None:
    outbox = Outbox(schema)
    async with AsyncSession(bind=engine) as session, session.begin():
        await outbox.add_many(session, [(topic, event_for(k, n)) for k, n in rows])


async def outbox_count(engine: AsyncEngine, schema: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text(f"SELECT count(*) FROM {schema}.outbox")) or 0)


async def read_at_least(reader: EventReader, n: int, timeout: float = 30) -> None:
    """Partitions arrive in any order: wait for a count, not for the last message."""
    deadline = time.monotonic() + timeout
    while len(reader.seen) < n and time.monotonic() < deadline:
        await reader.drain(0.2)
    assert len(reader.seen) >= n, f"read {len(reader.seen)} of {n} within {timeout}s"


@pytest.fixture
async def engine(kafka_settings: Settings) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(kafka_settings.database_url, pool_size=4)
    yield eng
    await eng.dispose()


async def started_relay(
    settings: Settings, engine: AsyncEngine, schema: str
) -> tuple[OutboxRelay, ProducerLink]:
    link = ProducerLink(settings)
    await link.start()
    relay = OutboxRelay(
        settings=settings,
        schema=schema,
        metrics=CommonMetrics(new_registry(), "test"),
        producer=link,
    )
    await relay.start()
    return relay, link


async def stop(relay: OutboxRelay, link: ProducerLink) -> None:
    await relay.stop()
    await link.stop()


async def test_rows_are_published_in_id_order_per_key_then_deleted(
    kafka_settings: Settings, engine: AsyncEngine, plumbing_schema: str
) -> None:
    settings = kafka_settings.model_copy(update={"relay_batch_size": 7})
    topic = settings.topics.leads_received
    keys = [str(uuid.uuid4()) for _ in range(5)]
    rows = [(keys[i % 5], i) for i in range(60)]
    await add_rows(engine, plumbing_schema, topic, rows)
    relay, link = await started_relay(settings, engine, plumbing_schema)
    try:
        async with EventReader(settings, topic) as reader:
            await read_at_least(reader, 60)
            await reader.drain(0.5)
    finally:
        await stop(relay, link)

    per_key: dict[str, list[int]] = defaultdict(list)
    for _, event, _ in reader.seen:
        per_key[event.subject].append(int(event.data["message"][1:]))
    assert sum(len(v) for v in per_key.values()) == 60
    for key in keys:
        assert per_key[key] == sorted(per_key[key]) == [n for k, n in rows if k == key]
    assert await outbox_count(engine, plumbing_schema) == 0


async def test_rows_stay_in_the_outbox_while_the_broker_cannot_ack(
    kafka_settings: Settings, engine: AsyncEngine, plumbing_schema: str
) -> None:
    """Nothing listens on the bootstrap port: the relay keeps the rows and keeps trying."""
    down = kafka_settings.model_copy(
        update={
            "kafka_bootstrap_servers": f"127.0.0.1:{free_port()}",
            "kafka_request_timeout_seconds": 1.0,
            "kafka_backoff_max_seconds": 0.5,
        }
    )
    await add_rows(engine, plumbing_schema, down.topics.leads_received, [("k", 1), ("k", 2)])
    start = time.monotonic()
    relay, link = await started_relay(down, engine, plumbing_schema)
    assert time.monotonic() - start < 15, "start must not wait for an unreachable broker"
    try:
        await asyncio.sleep(2)
        assert relay.last_error is not None
        assert not link.connected
        assert await outbox_count(engine, plumbing_schema) == 2
    finally:
        await stop(relay, link)
    assert await outbox_count(engine, plumbing_schema) == 2


async def test_notify_from_another_process_wakes_the_relay_at_once(
    kafka_settings: Settings, engine: AsyncEngine, plumbing_schema: str
) -> None:
    """Polling is set to 60 s, so only the trigger's NOTIFY can explain a quick publish."""
    settings = kafka_settings.model_copy(update={"relay_poll_interval_seconds": 60.0})
    topic = settings.topics.leads_received
    relay, link = await started_relay(settings, engine, plumbing_schema)
    gaps = []
    try:
        async with EventReader(settings, topic) as reader:
            await reader.drain(0.5)  # reader joined and at the end
            await asyncio.sleep(0.5)  # relay idle, waiting on its 60 s poll
            for i in range(3):
                payload = event_for(str(uuid.uuid4()), i).to_bytes()
                script = (
                    "import asyncio, asyncpg, sys, time\n"
                    "async def main():\n"
                    "    c = await asyncpg.connect(sys.argv[1])\n"
                    f"    await c.execute('INSERT INTO {plumbing_schema}.outbox "
                    "(event_id, topic, key, payload) VALUES ($1, $2, $3, $4)', "
                    "sys.argv[2], sys.argv[3], sys.argv[4], sys.stdin.buffer.read())\n"
                    "    print(time.time(), flush=True)\n"
                    "    await c.close()\n"
                    "asyncio.run(main())\n"
                )
                event_id = str(uuid.uuid4())
                proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-c",
                    script,
                    settings.asyncpg_dsn,
                    event_id,
                    topic,
                    f"key{i}",
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
                out, _ = await proc.communicate(payload)
                committed_at = float(out.decode().split()[0])
                await reader.wait_for(lambda e, i=i: e.data.get("message") == f"#{i}", timeout=30)
                gaps.append(time.time() - committed_at)
    finally:
        await stop(relay, link)
    print(f"commit -> consumed gaps: {[round(g * 1000, 1) for g in gaps]} ms")
    assert max(gaps) < 10, gaps  # generous: the 60 s poll never fired


async def test_two_relays_on_one_schema_never_publish_concurrently(
    kafka_settings: Settings, plumbing_schema: str
) -> None:
    settings = kafka_settings.model_copy(update={"relay_batch_size": 5})
    topic = settings.topics.leads_received
    intervals: list[tuple[str, float, float]] = []

    class Recording(OutboxRelay):
        name = ""  # which of the two relays published

        async def _publish(self, rows: Any) -> None:
            begin = time.monotonic()
            await asyncio.sleep(0.02)  # widen the window a concurrent publish would need
            await super()._publish(rows)
            intervals.append((self.name, begin, time.monotonic()))

    engines = [make_engine(settings.database_url, pool_size=2) for _ in range(2)]
    links = [ProducerLink(settings) for _ in range(2)]
    relays = []
    for i, lnk in enumerate(links):
        await lnk.start()
        r = Recording(
            settings=settings,
            schema=plumbing_schema,
            metrics=CommonMetrics(new_registry(), "test"),
            producer=lnk,
        )
        r.name = f"r{i}"
        await r.start()
        relays.append(r)
    keys = [str(uuid.uuid4()) for _ in range(4)]
    try:
        async with EventReader(settings, topic) as reader:
            n = 0
            for _ in range(8):  # rows arrive while both relays are running
                await add_rows(
                    engines[0], plumbing_schema, topic, [(keys[j % 4], n + j) for j in range(10)]
                )
                n += 10
                await asyncio.sleep(0.05)
            await read_at_least(reader, n)
            await reader.drain(1.0)
    finally:
        for r, lnk in zip(relays, links, strict=True):
            await stop(r, lnk)
        for eng in engines:
            await eng.dispose()

    assert len({name for name, _, _ in intervals}) >= 1
    ordered = sorted(intervals, key=lambda t: t[1])
    for (_, _, end), (_, begin, _) in itertools.pairwise(ordered):
        assert begin >= end, f"two publishes overlapped: {ordered}"
    messages = [int(e.data["message"][1:]) for _, e, _ in reader.seen]
    assert sorted(messages) == list(range(n)), "every row published exactly once"
    per_key: dict[str, list[int]] = defaultdict(list)
    for _, event, _ in reader.seen:
        per_key[event.subject].append(int(event.data["message"][1:]))
    for seq in per_key.values():
        assert seq == sorted(seq)
