"""Async engine and sessions, plus the two tables every service schema has: outbox and inbox.

The outbox holds events written in the same transaction as the effect that caused them; the
relay publishes them. The inbox holds the ids of consumed events, so a redelivery is noticed in
the same transaction that would otherwise apply it twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.events import CloudEvent

# Session settings for every connection a service opens. JIT compilation is for long analytic
# queries; on our short statements it only adds its compile time whenever a plan's estimated
# cost crosses `jit_above_cost` (the router's decision read for 200 leads: 18.6 ms with JIT,
# about 9 ms of it compiling; 7 ms without).
SERVER_SETTINGS = {"jit": "off"}
# For a service whose hot statements are look-ups (the router's decision read). After five
# executions of a prepared statement PostgreSQL may keep a generic plan costed on the table
# as it was then; planned on a nearly empty `router.leads`, the read stayed on that plan as
# the table grew (end to end at 1,000/s: 108 ms a batch, up to 389 ms, instead of 3.6 ms)
# until an ANALYZE invalidated it. Planning afresh costs ~0.3 ms per statement, so intake,
# whose statements are keyed inserts, keeps the default (forcing it there doubled its p99
# at 2,000/s).
CUSTOM_PLANS = {"plan_cache_mode": "force_custom_plan"}


def make_engine(
    url: str, *, pool_size: int = 10, server_settings: Mapping[str, str] | None = None
) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping (a `SELECT 1` round trip on every checkout): a connection found dead is
        # a DBAPI disconnect error, which invalidates the pool and is reported as an outage
        # (intake: 503 + Retry-After; consumers: retry), and the next checkout reconnects.
        pool_pre_ping=False,
        pool_timeout=5,
        connect_args={
            "timeout": 5,
            "command_timeout": 30,
            "server_settings": {**SERVER_SETTINGS, **(server_settings or {})},
        },
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def read_only_session(database_url: str) -> AsyncIterator[AsyncSession]:
    """A session in a READ ONLY transaction that is rolled back: the operator tools and the
    simulator read production history and can never change a lead, a load or a pointer."""
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            try:
                await session.execute(text("SET TRANSACTION READ ONLY"))  # autobegun
                yield session
            finally:
                await session.rollback()
    finally:
        await engine.dispose()


class Outbox:
    """Writes events into `<schema>.outbox` inside the caller's transaction (never commits)."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._insert = text(
            f"INSERT INTO {schema}.outbox (event_id, topic, key, payload) "
            "VALUES (:event_id, :topic, :key, :payload) ON CONFLICT (event_id) DO NOTHING"
        )

    async def add(self, session: AsyncSession, *, topic: str, event: CloudEvent) -> None:
        await session.execute(
            self._insert,
            {
                "event_id": event.id,
                "topic": topic,
                "key": event.subject,
                "payload": event.to_bytes(),
            },
        )

    async def add_many(self, session: AsyncSession, items: list[tuple[str, CloudEvent]]) -> None:
        if items:
            await session.execute(
                self._insert,
                [
                    {"event_id": e.id, "topic": t, "key": e.subject, "payload": e.to_bytes()}
                    for t, e in items
                ],
            )


class Inbox:
    """Marks consumed event ids in `<schema>.inbox`; claim() is False for a redelivery."""

    def __init__(self, schema: str) -> None:
        self._claim = text(
            f"INSERT INTO {schema}.inbox (event_id, topic) VALUES (:event_id, :topic) "
            "ON CONFLICT (event_id) DO NOTHING RETURNING 1"
        )
        self._claim_many = text(
            f"INSERT INTO {schema}.inbox (event_id, topic) "
            "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:topics AS text[])) "
            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        )

    async def claim(self, session: AsyncSession, *, event_id: str, topic: str) -> bool:
        result = await session.execute(self._claim, {"event_id": event_id, "topic": topic})
        return result.scalar() is not None

    async def claim_many(self, session: AsyncSession, items: list[tuple[str, str]]) -> set[str]:
        """Claim (event_id, topic) pairs in one statement; returns the ids seen for the first time."""
        rows = await session.execute(
            self._claim_many, {"ids": [i for i, _ in items], "topics": [t for _, t in items]}
        )
        return {r[0] for r in rows}


class WriteBehind:
    """Keeps one statement in flight on a session while the caller computes the next one.

    A statement's round trip (PostgreSQL's work on the other core) then overlaps with the
    Python work that prepares the following statement, instead of the two taking turns.
    Only one statement is ever in flight, so the session is never used concurrently: each
    `submit` first waits for the previous statement. Leaving the block waits for the last
    one and raises its error; leaving it with an error of its own waits too (the session
    must be idle before the transaction is rolled back) and keeps that error.
    """

    def __init__(self) -> None:
        self._task: asyncio.Task[Any] | None = None

    async def submit(self, statement: Coroutine[Any, Any, Any]) -> None:
        try:
            await self.wait()
        except BaseException:
            statement.close()  # never started: it must not run after the one that failed
            raise
        self._task = asyncio.create_task(statement)
        await asyncio.sleep(0)  # let it put the statement on the wire before we go on

    async def wait(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await task

    async def __aenter__(self) -> WriteBehind:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.wait()
            return
        task, self._task = self._task, None
        if task is not None:
            await asyncio.wait([task])
            if not task.cancelled():
                task.exception()  # retrieved: the caller's own error is the one reported
