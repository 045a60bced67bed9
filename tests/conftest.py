"""Fixtures on the real local stack (started by `make test`): PostgreSQL and Kafka.

Migrations are applied once per session; store tests get a connection whose transaction is
rolled back; Kafka tests get fresh topics so they never see each other's events.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from shared.events import CloudEvent, parse_event
from shared.kafka import ensure_topics
from shared.settings import Settings, Topics

ROOT = Path(__file__).resolve().parent.parent
# Unmarked (unit) tests fail if they open a TCP connection or use the real servers' fixtures.
pytest_plugins = ["tests.network_guard"]


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return Settings(policy_path=ROOT / "deploy" / "policy.example.yaml")


@pytest.fixture(scope="session")
def migrated(base_settings: Settings) -> Iterator[Settings]:
    """A fresh database for this test session, migrated once and dropped at the end.

    Tests share the local PostgreSQL server but never `make run`'s data, nor each other's
    sessions' (rep loads and round-robin state would otherwise leak between runs).
    """
    from ops.migrate import run_all

    name = f"baton_test_{uuid.uuid4().hex[:10]}"
    admin_url = base_settings.asyncpg_dsn
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    url = base_settings.database_url.rsplit("/", 1)[0] + "/" + name
    run_all(url)
    try:
        yield base_settings.model_copy(update={"database_url": url})
    finally:
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(dsn: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def db(migrated: Settings) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back after the test."""
    engine = create_async_engine(migrated.database_url)
    async with engine.connect() as conn:
        trans = await conn.begin()
        session = AsyncSession(bind=conn, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            await session.close()
            await trans.rollback()
    await engine.dispose()


def unique_topics() -> Topics:
    tag = uuid.uuid4().hex[:8]
    names: dict[str, Any] = {n: f"t{tag}.{default}" for n, default in Topics().model_dump().items()}
    return Topics(**names)


@pytest.fixture
async def kafka_settings(migrated: Settings) -> AsyncIterator[Settings]:
    """Settings with a fresh set of topics (and consumer groups) for this test.

    Test topics have 3 partitions (enough for ordering and rebalance behaviour) and are
    deleted afterwards, so a long-lived local broker does not pile up thousands of partitions.
    """
    topics = unique_topics()
    tag = topics.leads_received.split(".")[0]
    settings = migrated.model_copy(
        update={"topics": topics, "consumer_group_prefix": tag, "topic_partitions": 3}
    )
    await ensure_topics(settings)
    yield settings
    await delete_topics(settings, topics.all())


async def delete_topics(settings: Settings, names: list[str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        await admin.start()
        await admin.delete_topics(names)
    except Exception:  # cleanup only; the broker may be down in a fault test
        pass
    finally:
        await admin.close()


def topic_env(settings: Settings) -> dict[str, str]:
    env = {f"TOPIC_{k.upper()}": v for k, v in settings.topics.model_dump().items()}
    env["CONSUMER_GROUP_PREFIX"] = settings.consumer_group_prefix
    return env


class EventReader:
    """Reads CloudEvents from topics from the beginning, like an outside sales tool would."""

    def __init__(self, settings: Settings, *topics: str) -> None:
        self.consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=f"test-reader-{uuid.uuid4().hex[:8]}",
        )
        self.seen: list[tuple[str, CloudEvent, Any]] = []

    async def __aenter__(self) -> EventReader:
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def wait_for(self, predicate: Any, *, timeout: float = 20.0) -> CloudEvent:
        """The first event (already seen or arriving) for which predicate(event) holds."""
        for _, event, _ in self.seen:
            if predicate(event):
                return event
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            batch = await self.consumer.getmany(timeout_ms=200)
            start = len(self.seen)
            for msgs in batch.values():  # keep the whole batch: the consumer is already past it
                self.seen.extend((m.topic, parse_event(m.value), m) for m in msgs)
            for _, event, _ in self.seen[start:]:
                if predicate(event):
                    return event
        raise AssertionError(f"no matching event within {timeout}s; saw {len(self.seen)}")

    async def drain(self, seconds: float = 1.0) -> list[CloudEvent]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            batch = await self.consumer.getmany(timeout_ms=100)
            for msgs in batch.values():
                for msg in msgs:
                    self.seen.append((msg.topic, parse_event(msg.value), msg))
        return [e for _, e, _ in self.seen]


@pytest.fixture
def env_secrets() -> dict[str, str]:
    """Per-test secrets for the example policy's signed sources (never committed)."""
    import base64

    return {
        "BATON_SECRET_CHAT_WIDGET": "whsec_" + base64.b64encode(os.urandom(24)).decode(),
        "BATON_SECRET_TYPEFORM": base64.b64encode(os.urandom(24)).decode(),
        "BATON_SECRET_HUBSPOT": base64.b64encode(os.urandom(24)).decode(),
        "BATON_SECRET_CRM_ACTIVITIES": "whsec_" + base64.b64encode(os.urandom(24)).decode(),
        "BATON_NOTIFY_SECRET_LOCAL_SINK": "whsec_" + base64.b64encode(os.urandom(24)).decode(),
    }


@pytest.fixture
async def plumbing_schema(migrated: Settings) -> AsyncIterator[str]:
    """A fresh schema with its own outbox, inbox and NOTIFY trigger (as each service has), plus
    an `effects` table, so relay and consumer tests never meet a service's rows or channel."""
    import asyncpg

    from shared.migrations import create_plumbing

    schema = f"plumb_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(migrated.asyncpg_dsn)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")

        class _Op:
            statements: list[str] = []

            def execute(self, sql: str) -> None:
                self.statements.append(sql)

        op = _Op()
        create_plumbing(op, schema)  # type: ignore[arg-type]
        for sql in op.statements:
            await conn.execute(sql)
        await conn.execute(
            f"CREATE TABLE {schema}.effects (event_id text NOT NULL, n serial PRIMARY KEY)"
        )
        yield schema
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `make test` (pytest-xdist, `--dist loadgroup`) every fault test runs on one worker:
    they share one dedicated broker and PostgreSQL cluster that they stop and kill, while the
    rest of the suite (fresh databases and topics per session and test) runs on the others."""
    for item in items:
        if item.get_closest_marker("faults") is not None:
            item.add_marker(pytest.mark.xdist_group("faults"))
