"""Notify test helpers: a service and dispatcher on the real PostgreSQL, sending to the real
loopback receivers a test starts (tests/notify/receivers.py). Each test names its own
endpoints, so the claims of one test never see another's messages."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from services.notify.channels.webhook import WebhookSender
from services.notify.config import NotifyConfig, parse_config
from services.notify.domain.backoff import Backoff
from services.notify.domain.people import PeopleLinks
from services.notify.metrics import NotifyMetrics
from services.notify.service import NotifyService
from services.notify.ticker import Dispatcher, Group
from shared.events import CloudEvent, ContactErased, derived_id, make_event, utcnow
from shared.policy import load_policy
from shared.runtime import Runtime
from shared.settings import Settings
from tests.conftest import ROOT
from tests.followup.conftest import assigned

SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def endpoint_yaml(name: str, url: str, *, timeout: float = 5.0, events: str = "") -> str:
    return (
        f"  - name: {name}\n    url: {url}\n"
        f"    events: [{events or 'lead.assigned, lead.escalated, contact.erased'}]\n"
        f"    secrets: [{{env: S}}]\n    timeout_seconds: {timeout}\n    allow_private: true\n"
    )


@dataclass
class Rig:
    runtime: Runtime
    service: NotifyService
    dispatcher: Dispatcher
    sender: WebhookSender
    registry: CollectorRegistry
    secret: str

    async def publish(self, *events: CloudEvent) -> None:
        """What the consumer does with a batch (one transaction), then the wake-up."""
        async with self.runtime.sessions() as session, session.begin():
            await self.service.on_events(session, events=list(events))
        self.dispatcher.wake()

    async def rows(self, endpoint: str) -> list[dict[str, Any]]:
        async with self.runtime.sessions() as session:
            result = await session.execute(
                text(
                    "SELECT id::text, event_id, status, attempts, step, next_attempt_at, "
                    "last_status, last_error, body FROM notify.messages WHERE endpoint = :e "
                    "ORDER BY seq"
                ),
                {"e": endpoint},
            )
            return [dict(r._mapping) for r in result]

    async def attempts(self, message_id: str) -> list[dict[str, Any]]:
        from services.notify import store

        async with self.runtime.sessions() as session:
            return await store.attempts_for(session, message_id)

    def count(self, name: str, **labels: str) -> float:
        return float(self.registry.get_sample_value(name, labels) or 0.0)


RigFactory = Callable[..., Rig]


@pytest.fixture
async def rig(migrated: Settings) -> AsyncIterator[RigFactory]:
    made: list[Rig] = []

    def make(
        endpoints: list[tuple[str, str]] | list[tuple[str, str, float]],
        *,
        schedule: tuple[float, ...] = SCHEDULE,
        concurrency: int = 4,
        max_sleep: float = 0.2,
        events: str = "",
    ) -> Rig:
        secret = new_secret()
        body = "endpoints:\n" + "".join(
            endpoint_yaml(e[0], e[1], timeout=float(e[2]) if len(e) > 2 else 5.0, events=events)
            for e in endpoints
        )
        config: NotifyConfig = parse_config(body)
        registry = CollectorRegistry()
        runtime = Runtime.build(migrated, "notify")
        service = NotifyService(
            config=config,
            policy=load_policy(ROOT / "deploy" / "policy.example.yaml"),
            links=PeopleLinks(lead_url="http://x/{lead_id}", default_from="b@example.com"),
            metrics=NotifyMetrics(registry),
            backoff=Backoff(schedule=schedule, jitter=0.0),
            people=False,
        )
        sender = WebhookSender(config=config, secrets={e.name: (secret,) for e in config.endpoints})
        dispatcher = Dispatcher(
            runtime=runtime,
            service=service,
            senders={"webhook": sender},
            groups=[Group(e.name, "webhook", e.timeout_seconds) for e in config.endpoints],
            concurrency=concurrency,
            max_sleep=max_sleep,
            health_interval=0.2,
        )
        made.append(Rig(runtime, service, dispatcher, sender, registry, secret))
        return made[-1]

    yield make
    for r in made:
        await r.dispatcher.stop()
        await r.sender.aclose()
        await r.runtime.engine.dispose()


def name() -> str:
    return f"ep-{uuid.uuid4().hex[:8]}"


def lead_assigned(lead_id: str | None = None, *, seq: int = 1, team: str = "emea") -> CloudEvent:
    lead_id = lead_id or str(uuid.uuid4())
    return make_event(
        type="lead.assigned",
        source="/baton/router",
        subject=lead_id,
        id=derived_id(lead_id, "assigned", seq),
        data=assigned(lead_id, seq=seq, team=team),
    )


def contact_erased(*lead_ids: str) -> CloudEvent:
    erasure = str(uuid.uuid4())
    return make_event(
        type="contact.erased",
        source="/baton/router",
        subject=erasure,
        data=ContactErased(erasure_id=erasure, lead_ids=list(lead_ids), erased_at=utcnow()),
    )
