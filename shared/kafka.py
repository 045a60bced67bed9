"""Kafka clients: the idempotent producer, explicit topic creation, and the consumer runner.

The runner commits a partition's offset only after the handler's database transaction has
committed; poison events go to the dead-letter topic; infrastructure failures (database or
broker down) are retried without committing, so nothing is skipped while a dependency is out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, KafkaError, TopicAlreadyExistsError

from shared.events import CloudEvent, EventError, parse_event, utcnow
from shared.logs import get_logger
from shared.metrics import CommonMetrics
from shared.settings import Settings

log = get_logger(__name__)

Handler = Callable[[CloudEvent, str], Awaitable[None]]


def make_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """acks=all with idempotence: a retried send never duplicates or reorders within a partition."""
    opts: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "request_timeout_ms": int(settings.kafka_request_timeout_seconds * 1000),
        "client_id": "baton",
    }
    opts.update(overrides)
    return AIOKafkaProducer(**opts)


async def ensure_topics(settings: Settings, topics: list[str] | None = None) -> None:
    """Create the contract's topics when absent (idempotent); never rely on auto-creation."""
    names = topics if topics is not None else settings.topics.all()
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        request_timeout_ms=int(settings.kafka_request_timeout_seconds * 1000),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=n,
                num_partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication_factor,
            )
            for n in names
            if n not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            log.info("kafka.topics_created", topics=[t.name for t in missing])
    finally:
        await admin.close()


def is_transient(exc: BaseException) -> bool:
    """Failures of a dependency (retry forever) as opposed to failures of the event (dead-letter)."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, OperationalError | InterfaceError | OSError | KafkaError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    name = type(exc).__name__
    return name in {
        "ConnectionDoesNotExistError",
        "CannotConnectNowError",
        "ConnectionRefusedError",
    }


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Finish the batch in flight and commit before partitions move to another instance."""

    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.runner.batch_lock:
            await self.runner.commit_pending()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("kafka.partitions_assigned", group=self.runner.group_id, count=len(assigned))


class ConsumerRunner:
    """Consume topics with manual commits; call `handler(event, topic)` for each message."""

    def __init__(
        self,
        *,
        settings: Settings,
        group_id: str,
        topics: list[str],
        handler: Handler,
        metrics: CommonMetrics,
        producer: AIOKafkaProducer | None = None,
    ) -> None:
        self.settings = settings
        self.group_id = group_id
        self.topics = topics
        self.handler = handler
        self.producer = producer
        self.metrics = metrics
        self.batch_lock = asyncio.Lock()
        self._pending: dict[TopicPartition, int] = {}
        self._position: dict[TopicPartition, int] = {}
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=self.settings.consumer_batch_size,
            session_timeout_ms=10000,
            heartbeat_interval_ms=1000,
            request_timeout_ms=int(self.settings.kafka_request_timeout_seconds * 1000) + 30000,
        )
        self._consumer.subscribe(self.topics, listener=_Listener(self))
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.group_id}")

    async def stop(self) -> None:
        """Graceful: the batch in flight finishes and its offsets are committed."""
        self._stopping.set()
        if self._task:
            await self._task
        if self._consumer:
            async with self.batch_lock:
                await self.commit_pending()
            await self._consumer.stop()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def commit_pending(self) -> None:
        if not self._pending or self._consumer is None:
            return
        offsets, self._pending = self._pending, {}
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # Safe: the events are already durable and marked in the inbox; a redelivery is a no-op.
            log.warning("kafka.commit_failed", group=self.group_id, error=type(exc).__name__)

    async def _run(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while not self._stopping.is_set():
            try:
                batch = await consumer.getmany(timeout_ms=200)
            except KafkaError as exc:
                log.warning("kafka.fetch_failed", group=self.group_id, error=type(exc).__name__)
                await asyncio.sleep(1)
                continue
            if not batch:
                self._export_lag()
                continue
            async with self.batch_lock:
                for tp, messages in batch.items():
                    for msg in messages:
                        ok = await self._process(msg)
                        if not ok:  # stopping while a dependency is down: do not commit past it
                            break
                        self._pending[tp] = msg.offset + 1
                        self._position[tp] = msg.offset + 1
                await self.commit_pending()
            self._export_lag()

    def _export_lag(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            position = self._position.get(tp)
            if high is None or position is None:
                continue
            self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(
                max(0, high - position)
            )

    async def _process(self, msg: Any) -> bool:
        """Handle one message; returns False only when stopping with a dependency still down."""
        topic = msg.topic
        try:
            event = parse_event(msg.value)
            event.payload()
        except EventError as exc:
            await self._dead_letter(msg, "poison", str(exc))
            return True
        attempt = 0
        delay = 0.1
        while True:
            try:
                with self.metrics.handle_seconds.labels(topic).time():
                    await self.handler(event, topic)
                return True
            except Exception as exc:
                if is_transient(exc):
                    self.metrics.consume_failures.labels(topic, "transient").inc()
                    log.warning(
                        "kafka.handler_transient_failure",
                        topic=topic,
                        event_id=event.id,
                        error=type(exc).__name__,
                    )
                    if self._stopping.is_set():
                        return False
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                attempt += 1
                self.metrics.consume_failures.labels(topic, "error").inc()
                if attempt > self.settings.consumer_max_retries:
                    log.exception("kafka.handler_failed", topic=topic, event_id=event.id)
                    await self._dead_letter(msg, "handler_error", f"{type(exc).__name__}: {exc}")
                    return True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _dead_letter(self, msg: Any, reason: str, error: str) -> None:
        """Publish the original bytes plus the error; wait for the broker's ack before moving on."""
        headers = [
            ("baton-error", error[:2000].encode()),
            ("baton-error-reason", reason.encode()),
            ("baton-original-topic", msg.topic.encode()),
            ("baton-original-partition", str(msg.partition).encode()),
            ("baton-original-offset", str(msg.offset).encode()),
            ("baton-consumer-group", self.group_id.encode()),
            ("baton-dead-lettered-at", utcnow().isoformat().encode()),
        ]
        assert self.producer is not None, "consumer started without a producer"
        while True:
            try:
                fut = await self.producer.send(
                    self.settings.topics.leads_dlq, value=msg.value, key=msg.key, headers=headers
                )
                await asyncio.wait_for(fut, self.settings.kafka_request_timeout_seconds)
                break
            except (KafkaError, TimeoutError) as exc:
                log.warning("kafka.dead_letter_retry", error=type(exc).__name__)
                await asyncio.sleep(1)
        self.metrics.dead_lettered.labels(msg.topic, reason).inc()
        self.metrics.events_consumed.labels(msg.topic, "dead_lettered").inc()
        log.warning(
            "kafka.dead_lettered",
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            reason=reason,
        )
