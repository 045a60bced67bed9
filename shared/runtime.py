"""What every service's lifespan owns: DB pool, producer, outbox relay, consumers.

Started and stopped in one place so each service's app.py stays a few lines, and shutdown
happens in the safe order: consumers finish and commit, the relay drains, then the clients close.

Start-up never waits for a dependency: with Kafka or PostgreSQL down the service starts, serves
/healthz, answers /readyz 503 naming what is missing, and connects by itself when it returns
(producer, topics, consumers and relay all retry in the background with backoff).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.db import CUSTOM_PLANS, Inbox, Outbox, make_engine, make_sessionmaker
from shared.events import CloudEvent
from shared.http import Check
from shared.kafka import BatchHandler, ConsumerRunner, Handler, ProducerLink
from shared.logs import get_logger
from shared.metrics import CommonMetrics, new_registry
from shared.relay import OutboxRelay
from shared.settings import Settings

log = get_logger(__name__)

EventFn = Callable[[AsyncSession, CloudEvent], Awaitable[None]]
EventsFn = Callable[[AsyncSession, list[CloudEvent]], Awaitable[None]]


def in_runs(event_type: str, many: EventsFn, one: EventFn) -> EventsFn:
    """A batch handler that hands each run of consecutive `event_type` events to `many`
    together and every other event to `one` in its place, so the order of effects is the
    fetch order (what a consumer's batch mode must keep)."""

    async def dispatch(session: AsyncSession, events: list[CloudEvent]) -> None:
        run: list[CloudEvent] = []
        for event in events:
            if event.type == event_type:
                run.append(event)
                continue
            if run:
                await many(session, run)
                run = []
            await one(session, event)
        if run:
            await many(session, run)

    return dispatch


@dataclass
class Runtime:
    settings: Settings
    service: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    metrics: CommonMetrics
    outbox: Outbox
    inbox: Inbox
    relay: OutboxRelay
    kafka: ProducerLink
    consumers: list[ConsumerRunner] = field(default_factory=list)

    @property
    def producer(self) -> AIOKafkaProducer | None:
        """The current aiokafka producer (None while Kafka is unreachable)."""
        return self.kafka.producer

    @classmethod
    def build(cls, settings: Settings, service: str, *, custom_plans: bool = False) -> Runtime:
        """`custom_plans`: plan every statement afresh (`shared.db.CUSTOM_PLANS`)."""
        engine = make_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            server_settings=CUSTOM_PLANS if custom_plans else None,
        )
        metrics = CommonMetrics(new_registry(), service)
        kafka = ProducerLink(settings)
        return cls(
            settings=settings,
            service=service,
            engine=engine,
            sessions=make_sessionmaker(engine),
            metrics=metrics,
            outbox=Outbox(service),
            inbox=Inbox(service),
            relay=OutboxRelay(settings=settings, schema=service, metrics=metrics, producer=kafka),
            kafka=kafka,
        )

    def consume(
        self, *, group_id: str, topics: list[str], fn: EventFn, many: EventsFn | None = None
    ) -> None:
        """Register a consumer whose handler runs `fn` in one transaction with the inbox mark.

        With `many`, a whole fetch is handled by `many` in one transaction (throughput: one
        commit and one inbox statement per batch); `fn` stays the per-event fallback that
        isolates an event the batch could not handle.
        """
        self.consumers.append(
            ConsumerRunner(
                settings=self.settings,
                group_id=group_id,
                topics=topics,
                handler=self.transactional(fn),
                batch_handler=self.transactional_many(many) if many is not None else None,
                metrics=self.metrics,
                producer=self.kafka,
            )
        )

    def transactional(self, fn: EventFn) -> Handler:
        async def handle(event: CloudEvent, topic: str) -> None:
            async with self.sessions() as session, session.begin():
                if not await self.inbox.claim(session, event_id=event.id, topic=topic):
                    self.metrics.events_consumed.labels(topic, "duplicate").inc()
                    return
                await fn(session, event)
            self.relay.wake()
            self.metrics.events_consumed.labels(topic, "handled").inc()

        return handle

    def transactional_many(self, fn: EventsFn) -> BatchHandler:
        async def handle(items: list[tuple[CloudEvent, str]]) -> None:
            async with self.sessions() as session, session.begin():
                fresh = await self.inbox.claim_many(session, [(e.id, t) for e, t in items])
                todo: list[CloudEvent] = []
                outcomes: list[tuple[str, str]] = []
                for event, topic in items:
                    first = event.id in fresh
                    fresh.discard(event.id)  # the same id twice in one fetch: once
                    outcomes.append((topic, "handled" if first else "duplicate"))
                    if first:
                        todo.append(event)
                if todo:
                    await fn(session, todo)
            self.relay.wake()
            for (topic, outcome), n in Counter(outcomes).items():
                self.metrics.events_consumed.labels(topic, outcome).inc(n)

        return handle

    async def start(self) -> None:
        # aiokafka clients bind to the running loop, so they are created here, not in build().
        # None of these raise for an outage: each retries in the background.
        await self.kafka.start()
        await self.relay.start()
        for consumer in self.consumers:
            await consumer.start()
        log.info("service.started", service=self.service, kafka_connected=self.kafka.connected)

    async def stop(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()
        await self.relay.stop()
        await self.kafka.stop()
        await self.engine.dispose()
        log.info("service.stopped", service=self.service)

    def checks(self) -> dict[str, Check]:
        async def postgres() -> None:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        async def kafka() -> None:
            producer = self.kafka.producer
            if producer is None or not self.kafka.connected:
                raise KafkaConnectionError(f"producer not connected ({self.kafka.last_error})")
            await producer.client.fetch_all_metadata()
            for consumer in self.consumers:
                if not consumer.connected:
                    raise KafkaConnectionError(f"consumer {consumer.group_id} not connected")

        return {"postgres": postgres, "kafka": kafka}
