"""Baton's Kafka records read by clients Baton did not write (CloudEvents Kafka binding).

The outbox relay publishes `lead.assigned` to the real local Kafka; `kcat` (Debian) must see
the structured-mode `content-type` header, and the CloudEvents JavaScript SDK (with KafkaJS,
tools/cloudevents-js) must find the CloudEvent in the record. The other way round, a record in
binary mode (`ce_*` headers, the data as the value) is consumed like a structured one and
deduped by the same id.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Outbox, make_engine
from shared.events import CE_CONTENT_TYPE, CloudEvent, derived_id, make_event
from shared.kafka import ProducerLink
from shared.metrics import CommonMetrics, new_registry
from shared.relay import OutboxRelay
from shared.runtime import Runtime
from shared.settings import Settings
from tests.conftest import ROOT
from tests.followup.conftest import assigned

pytestmark = pytest.mark.integration

CE_JS = ROOT / "tools" / "cloudevents-js"


def assigned_event() -> CloudEvent:
    lead_id = str(uuid.uuid4())
    return make_event(
        type="lead.assigned",
        source="/baton/router",
        subject=lead_id,
        id=derived_id(lead_id, "assigned", 1),
        data=assigned(lead_id),
    )


@pytest.fixture
async def published(kafka_settings: Settings, plumbing_schema: str) -> AsyncIterator[CloudEvent]:
    """One lead.assigned put through the real outbox relay onto the test's leads.assigned."""
    event = assigned_event()
    engine = make_engine(kafka_settings.database_url, pool_size=2)
    async with AsyncSession(bind=engine) as session, session.begin():
        await Outbox(plumbing_schema).add_many(
            session, [(kafka_settings.topics.leads_assigned, event)]
        )
    link = ProducerLink(kafka_settings)
    await link.start()
    relay = OutboxRelay(
        settings=kafka_settings,
        schema=plumbing_schema,
        metrics=CommonMetrics(new_registry(), "test"),
        producer=link,
    )
    try:
        for _ in range(100):  # the relay deletes the row after the broker's ack
            if await relay.drain_once():
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the relay published nothing")
        yield event
    finally:
        await link.stop()
        await relay.stop()
        await engine.dispose()


async def test_kcat_sees_the_structured_mode_content_type(
    kafka_settings: Settings, published: CloudEvent
) -> None:
    kcat = shutil.which("kcat")
    assert kcat, "kcat is missing: `make tools` installs it (Debian package kcat)"
    result = await asyncio.to_thread(
        subprocess.run,
        [
            kcat,
            "-C",
            "-q",
            "-e",
            "-o",
            "beginning",
            "-c",
            "1",
            "-b",
            kafka_settings.kafka_bootstrap_servers,
            "-t",
            kafka_settings.topics.leads_assigned,
            "-f",
            "%k\\n%h\\n%s\\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    key, headers, value = result.stdout.split("\n", 2)
    assert key == published.subject
    assert headers == f"content-type={CE_CONTENT_TYPE}"
    assert json.loads(value)["id"] == published.id


async def test_the_cloudevents_javascript_sdk_finds_the_event(
    kafka_settings: Settings, published: CloudEvent
) -> None:
    node = shutil.which("node")
    assert node, "node is required for the CloudEvents JavaScript SDK check"
    assert (CE_JS / "node_modules" / "cloudevents").is_dir(), "`make tools` installs it (npm ci)"
    result = await asyncio.to_thread(
        subprocess.run,
        [
            node,
            str(CE_JS / "read.mjs"),
            kafka_settings.kafka_bootstrap_servers,
            kafka_settings.topics.leads_assigned,
            "1",
            "60000",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (found,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert found["ok"], found
    assert (found["id"], found["type"], found["subject"]) == (
        published.id,
        "lead.assigned",
        published.subject,
    )
    assert found["data"] == published.data


def binary_mode(event: CloudEvent) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The event as a binary-mode record (value = data), as the Java or Go SDK may write it."""
    attrs = event.model_dump(mode="json", exclude={"data", "datacontenttype"})
    headers = [(f"ce_{name}", str(v).encode()) for name, v in attrs.items()]
    return orjson.dumps(event.data), [("content-type", b"application/json"), *headers]


async def test_a_binary_mode_record_is_consumed_like_a_structured_one(
    kafka_settings: Settings, plumbing_schema: str
) -> None:
    topic = kafka_settings.topics.leads_assigned
    first, other = assigned_event(), assigned_event()
    runtime = Runtime.build(kafka_settings, plumbing_schema)
    seen: list[CloudEvent] = []

    async def effect(session: AsyncSession, event: CloudEvent) -> None:
        seen.append(event)
        await session.execute(
            text(f"INSERT INTO {plumbing_schema}.effects (event_id) VALUES (:id)"), {"id": event.id}
        )

    runtime.consume(
        group_id=f"{kafka_settings.consumer_group_prefix}-ce", topics=[topic], fn=effect
    )
    records: list[tuple[bytes, list[tuple[str, bytes]] | None]] = [
        binary_mode(first),
        (first.to_bytes(), [("content-type", CE_CONTENT_TYPE.encode())]),  # same id, structured
        binary_mode(other),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for value, headers in records:
            await producer.send_and_wait(topic, value=value, key=b"k", partition=0, headers=headers)
    finally:
        await producer.stop()
    await runtime.start()
    try:
        for _ in range(300):
            if _consumed(runtime) >= 3:
                break
            await asyncio.sleep(0.1)
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
    assert [e.model_dump() for e in seen] == [first.model_dump(), other.model_dump()]
    assert _consumed(runtime, "dead_lettered") == 0


def _consumed(runtime: Runtime, outcome: str | None = None) -> float:
    total = 0.0
    for metric in runtime.metrics.registry.collect():
        if metric.name != "baton_events_consumed":
            continue
        for s in metric.samples:
            if s.name.endswith("_total") and (outcome is None or s.labels["outcome"] == outcome):
                total += s.value
    return total
