"""Fixtures for the what-if tests: a router service on the session database with real topics
(outbox rows left behind stay publishable), and a way to run synthetic leads through it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.router.metrics import RouterMetrics
from services.router.service import PolicyHolder, RouterService
from shared.db import Outbox, make_engine, make_sessionmaker
from shared.events import Lead
from shared.kafka import ensure_topics
from shared.policy import Policy
from shared.settings import Settings
from tests.conftest import delete_topics, unique_topics
from tests.router.whatif.synthetic import Synth

CLOSING = {"converted": "converted", "disqualified": "closed_disqualified", "not_ready": "nurture"}


@pytest.fixture(scope="session")
async def whatif_settings(migrated: Settings) -> AsyncIterator[Settings]:
    topics = unique_topics()
    settings = migrated.model_copy(
        update={"topics": topics, "consumer_group_prefix": topics.leads_received.split(".")[0]}
    )
    await ensure_topics(settings)
    yield settings
    await delete_topics(settings, topics.all())  # a long-lived local broker keeps no leftovers


@dataclass
class Router:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    def service(self, policy: Policy) -> RouterService:
        return RouterService(
            holder=PolicyHolder(policy),
            outbox=Outbox("router"),
            metrics=RouterMetrics(CollectorRegistry()),
            assigned_topic=self.settings.topics.leads_assigned,
            erased_topic=self.settings.topics.contacts_erased,
        )

    async def replay_for_real(self, service: RouterService, leads: list[Synth]) -> dict[str, int]:
        """Route every lead at its ``received_at`` and close it at its ``closed_at`` (the way the
        router closes a lead on an outcome activity), in time order, committed."""
        events: list[tuple[Any, int, int]] = []
        for i, s in enumerate(leads):
            events.append((s.received_at, 1, i))
            if s.closed_at is not None:
                events.append((s.closed_at, 0, i))
        events.sort()
        outcomes: dict[str, int] = {}
        async with self.sessions() as session, session.begin():
            for at, kind, i in events:
                s = leads[i]
                if kind == 1:
                    lead = Lead.model_validate(s.lead)
                    out = await service.on_received(session, lead=lead, now=s.received_at)
                    outcomes[out] = outcomes.get(out, 0) + 1
                else:
                    last = s.activities[-1][0]
                    await service.close(
                        session, lead_id=s.lead_id, status=CLOSING.get(last, "closed"), at=at
                    )
        return outcomes


@pytest.fixture
async def router(whatif_settings: Settings) -> AsyncIterator[Router]:
    engine = make_engine(whatif_settings.database_url, pool_size=2)
    try:
        yield Router(whatif_settings, engine, make_sessionmaker(engine))
    finally:
        await engine.dispose()
