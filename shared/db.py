"""Async engine and sessions, plus the two tables every service schema has: outbox and inbox.

The outbox holds events written in the same transaction as the effect that caused them; the
relay publishes them. The inbox holds the ids of consumed events, so a redelivery is noticed in
the same transaction that would otherwise apply it twice.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.events import CloudEvent


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping (a `SELECT 1` round trip on every checkout): a connection found dead is
        # a DBAPI disconnect error, which invalidates the pool and is reported as an outage
        # (intake: 503 + Retry-After; consumers: retry), and the next checkout reconnects.
        pool_pre_ping=False,
        pool_timeout=5,
        connect_args={"timeout": 5, "command_timeout": 30},
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


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
