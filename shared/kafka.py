"""Kafka clients: the idempotent producer, explicit topic creation, and the consumer runner.

The runner commits a partition's offset only after the handler's database transaction has
committed; poison events go to the dead-letter topic; infrastructure failures (database or
broker down) are retried without committing, so nothing is skipped while a dependency is out.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CommitFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAlreadyExistsError,
)

from shared.events import STRUCTURED_HEADERS, CloudEvent, EventError, parse_record, utcnow
from shared.logs import get_logger
from shared.metrics import CommonMetrics
from shared.outage import is_outage
from shared.settings import Settings

log = get_logger(__name__)

Handler = Callable[[CloudEvent, str], Awaitable[None]]
# Handles a whole fetched batch (event, topic) in order, in ONE transaction; on a non-transient
# failure the runner falls back to the per-event handler so one bad event cannot block the rest.
BatchHandler = Callable[[list[tuple[CloudEvent, str]]], Awaitable[None]]


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


def topic_configs(settings: Settings, name: str) -> dict[str, str]:
    """Per-topic settings at creation: a bounded retention for topics holding contact data."""
    if name == settings.topics.contacts_erased:
        return {}  # ids only, no contact data: the broker default applies
    return {"retention.ms": str(settings.topic_retention_hours * 3600 * 1000)}


async def ensure_topics(settings: Settings, topics: list[str] | None = None) -> None:
    """Create the contract's topics when absent (idempotent); never rely on auto-creation."""
    names = topics if topics is not None else settings.topics.all()
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        request_timeout_ms=int(settings.kafka_request_timeout_seconds * 1000),
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=n,
                num_partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication_factor,
                topic_configs=topic_configs(settings, n),
            )
            for n in names
            if n not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            log.info("kafka.topics_created", topics=[t.name for t in missing])
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


class Backoff:
    """Exponential backoff with jitter, capped; reset() after a success."""

    def __init__(self, *, first: float = 0.2, cap: float = 5.0) -> None:
        self.first = first
        self.cap = cap
        self.current = first

    def next(self) -> float:
        delay = self.current
        self.current = min(self.current * 2, self.cap)
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self.current = self.first


class ProducerLink:
    """The service's one idempotent producer, connected (and re-connected) in the background.

    A service must start and keep accepting work into its outbox while Kafka is down, so
    nothing here raises at start-up: `start()` makes the first attempt, then a background task
    retries with backoff (creating the topics first), and replaces the producer if its sender
    task dies (aiokafka then fails every later send silently). Every send is bounded by
    `kafka_request_timeout_seconds`: aiokafka's `send` otherwise waits on metadata and buffer
    space while the broker is unreachable.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer: AIOKafkaProducer | None = None
        self.generation = 0  # bumped whenever a new producer replaces the old one
        self.last_error: str | None = "not connected yet"
        self.topics_ready = False
        self._on_connect: list[Callable[[], None]] = []
        self._stopping = asyncio.Event()
        self._kick = asyncio.Event()
        self._first_attempt = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self.producer is not None and self._sender_alive(self.producer)

    def on_connect(self, callback: Callable[[], None]) -> None:
        self._on_connect.append(callback)

    async def start(self) -> None:
        """Try once (bounded); keep trying in the background. Never raises for an outage."""
        self._task = asyncio.create_task(self._run(), name="kafka-producer-link")
        await self._first_attempt.wait()

    async def stop(self) -> None:
        self._stopping.set()
        self._kick.set()
        if self._task is not None:
            await self._task
        producer, self.producer = self.producer, None
        if producer is not None:
            await self._close(producer, flush=True)

    async def send(
        self,
        topic: str,
        *,
        value: bytes,
        key: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        """Queue one record; returns the delivery future. Raises at once when not connected."""
        producer = self.producer
        if producer is None or not self._sender_alive(producer):
            self._kick.set()
            raise KafkaConnectionError("kafka producer not connected")
        fut: asyncio.Future[Any] = await asyncio.wait_for(
            producer.send(topic, value=value, key=key, headers=headers),
            timeout=self.settings.kafka_request_timeout_seconds,
        )
        return fut

    @staticmethod
    def _sender_alive(producer: AIOKafkaProducer) -> bool:
        sender = getattr(producer, "_sender", None)
        task = getattr(sender, "sender_task", None)
        return task is None or not task.done()

    async def _connect_once(self) -> None:
        timeout = self.settings.kafka_request_timeout_seconds
        if not self.topics_ready:
            await asyncio.wait_for(ensure_topics(self.settings), timeout=timeout * 2)
            self.topics_ready = True
        producer = make_producer(self.settings)
        try:
            await asyncio.wait_for(producer.start(), timeout=timeout)
        except BaseException:
            await self._close(producer, flush=False)
            raise
        old, self.producer = self.producer, producer
        self.generation += 1
        self.last_error = None
        if old is not None:
            await self._close(old, flush=False)
        log.info("kafka.producer_connected", generation=self.generation)
        for callback in self._on_connect:
            callback()

    async def _run(self) -> None:
        backoff = Backoff(cap=self.settings.kafka_backoff_max_seconds)
        while not self._stopping.is_set():
            want_new = not self.connected
            self._kick.clear()
            if want_new:
                try:
                    await self._connect_once()
                    backoff.reset()
                except Exception as exc:
                    self.last_error = type(exc).__name__
                    log.warning("kafka.connect_failed", error=type(exc).__name__)
                    self._first_attempt.set()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), timeout=backoff.next())
                    continue
            self._first_attempt.set()
            with contextlib.suppress(TimeoutError):  # health check once a second
                await asyncio.wait_for(self._kick.wait(), timeout=1.0)

    @staticmethod
    async def _close(producer: AIOKafkaProducer, *, flush: bool) -> None:
        """Close a producer; without flush, abandon what it still holds (never delivered later)."""
        try:
            if flush:
                await asyncio.wait_for(producer.stop(), timeout=5)
                return
        except Exception as exc:
            log.warning("kafka.producer_stop_failed", error=type(exc).__name__)
        # stop() waits for the accumulator to flush, which hangs while the broker is down:
        # cancel the sender instead so abandoned batches can never be delivered afterwards.
        sender = getattr(producer, "_sender", None)
        with contextlib.suppress(Exception):
            if sender is not None:
                await asyncio.wait_for(sender.close(), timeout=5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.client.close(), timeout=5)
        producer._closed = True


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Finish the batch in flight and commit before partitions move to another instance."""

    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.runner.batch_lock:
            await self.runner.commit_pending()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("kafka.partitions_assigned", group=self.runner.group_id, count=len(assigned))


class _Stalled(Exception):
    """The consumer holds lag but has fetched nothing for too long: rebuild it."""


class ConsumerRunner:
    """Consume topics with manual commits; call `handler(event, topic)` for each message.

    `start()` never fails for an outage: the consumer is created, started and (after a stall
    or a fatal client error) re-created in a background task with backoff. Offsets are
    committed only after the handler returned, so a crash re-delivers from the first event
    not yet handled; handlers must be idempotent (Runtime.transactional uses the inbox).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        group_id: str,
        topics: list[str],
        handler: Handler,
        metrics: CommonMetrics,
        producer: ProducerLink | None = None,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        self.settings = settings
        self.group_id = group_id
        self.topics = topics
        self.handler = handler
        self.batch_handler = batch_handler
        self.producer = producer
        self.metrics = metrics
        self.batch_lock = asyncio.Lock()
        self.connected = False
        self.last_error: str | None = "not connected yet"
        self._pending: dict[TopicPartition, int] = {}
        self._position: dict[TopicPartition, int] = {}
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    def _make_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # also after offset-out-of-range: re-read, never skip
            isolation_level="read_committed",
            max_poll_records=self.settings.consumer_batch_size,
            session_timeout_ms=10000,
            heartbeat_interval_ms=1000,
            request_timeout_ms=int(self.settings.kafka_request_timeout_seconds * 1000) + 30000,
            metadata_max_age_ms=30000,
        )

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.group_id}")

    async def stop(self) -> None:
        """Graceful: the batch in flight finishes and its offsets are committed."""
        self._stopping.set()
        if self._task:
            await self._task
            self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def commit_pending(self) -> None:
        if not self._pending or self._consumer is None:
            return
        offsets, self._pending = self._pending, {}
        try:
            await asyncio.wait_for(
                self._consumer.commit(offsets), self.settings.kafka_request_timeout_seconds
            )
        except (CommitFailedError, KafkaError, TimeoutError) as exc:
            # Safe: the events are already durable and marked in the inbox; a redelivery is a no-op.
            log.warning("kafka.commit_failed", group=self.group_id, error=type(exc).__name__)

    async def _run(self) -> None:
        backoff = Backoff(cap=self.settings.kafka_backoff_max_seconds)
        while not self._stopping.is_set():
            consumer = self._make_consumer()
            try:
                consumer.subscribe(self.topics, listener=_Listener(self))
                await asyncio.wait_for(
                    consumer.start(), self.settings.kafka_request_timeout_seconds * 2
                )
            except Exception as exc:
                self.last_error = type(exc).__name__
                log.warning(
                    "kafka.consumer_start_failed", group=self.group_id, error=type(exc).__name__
                )
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(), 5)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff.next())
                continue
            self._consumer = consumer
            self.connected = True
            self.last_error = None
            backoff.reset()
            try:
                await self._consume(consumer)
            except _Stalled:
                log.warning("kafka.consumer_stalled", group=self.group_id)
            except Exception as exc:  # a fatal client error: rebuild the consumer
                log.warning("kafka.consumer_failed", group=self.group_id, error=type(exc).__name__)
            finally:
                async with self.batch_lock:
                    await self.commit_pending()
                self.connected = False
                self._consumer = None
                self._pending.clear()
                self._position.clear()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(), 10)
            if not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff.next())

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        loop = asyncio.get_running_loop()
        last_progress = last_commit = loop.time()
        errors = 0
        while not self._stopping.is_set():
            try:
                batch = await consumer.getmany(timeout_ms=200)
                errors = 0
            except KafkaError as exc:
                log.warning("kafka.fetch_failed", group=self.group_id, error=type(exc).__name__)
                errors += 1
                if errors >= 10:
                    raise _Stalled from exc
                await asyncio.sleep(1)
                continue
            if not batch:
                if self._pending:  # caught up: commit what the throttle below held back
                    async with self.batch_lock:
                        await self.commit_pending()
                self._export_lag()
                if self._has_lag():
                    if loop.time() - last_progress > self.settings.consumer_stall_seconds:
                        raise _Stalled
                else:
                    last_progress = loop.time()
                continue
            last_progress = loop.time()
            async with self.batch_lock:
                if self.batch_handler is not None:
                    await self._process_together(batch)
                else:
                    await self._process_each(
                        [(msg, None) for messages in batch.values() for msg in messages]
                    )
                # Offsets trail the database commits by at most the interval (a broker round
                # trip per fetch is a big share of a batch); a crash only re-delivers events
                # the inbox already holds, so nothing is applied twice.
                if loop.time() - last_commit >= self.settings.consumer_commit_interval_seconds:
                    await self.commit_pending()
                    last_commit = loop.time()
            self._export_lag()

    def _done(self, msg: Any) -> None:
        """Everything up to and including `msg` in its partition is durable: commit past it."""
        tp = TopicPartition(msg.topic, msg.partition)
        self._pending[tp] = msg.offset + 1
        self._position[tp] = msg.offset + 1

    async def _process_each(
        self,
        items: list[tuple[Any, CloudEvent | None]],
        *,
        dead_lettered: frozenset[tuple[str, int, int]] = frozenset(),
    ) -> None:
        """One transaction per event, in fetch order (per partition order is kept). Messages
        in `dead_lettered` (topic, partition, offset) are already in the DLQ: only passed."""
        stopped: set[tuple[str, int]] = set()
        for msg, event in items:
            if (msg.topic, msg.partition) in stopped:
                continue
            if (msg.topic, msg.partition, msg.offset) in dead_lettered:
                self._done(msg)
                continue
            ok = await (self._process(msg) if event is None else self._handle(msg, event))
            if not ok:  # stopping while a dependency is down: do not commit past it
                stopped.add((msg.topic, msg.partition))
                continue
            self._done(msg)

    async def _process_together(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """The whole fetch in one transaction (one inbox claim, one commit for N events).

        Poison is dead-lettered first (it never reaches a handler); if the batch fails for a
        reason other than an outage, every event is retried on its own so the one that fails
        is dead-lettered alone and the others still take effect.
        """
        assert self.batch_handler is not None
        parsed: list[tuple[Any, CloudEvent | None]] = []
        poison: set[tuple[str, int, int]] = set()
        for messages in batch.values():
            for msg in messages:
                event, error = self._parse(msg)
                parsed.append((msg, event))
                if event is None:
                    if not await self._dead_letter(msg, "poison", error):
                        return  # stopping before the dead letter was written: commit nothing
                    poison.add((msg.topic, msg.partition, msg.offset))
        good = [(msg, event) for msg, event in parsed if event is not None]
        outcome = await self._handle_together(good) if good else "ok"
        if outcome == "stopping":
            return
        if outcome == "failed":  # the poison keeps its place, so its offset is passed too
            await self._process_each(parsed, dead_lettered=frozenset(poison))
            return
        for messages in batch.values():
            self._done(messages[-1])

    def _has_lag(self) -> bool:
        consumer = self._consumer
        if consumer is None:
            return False
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            position = self._position.get(tp)
            if high is not None and position is not None and high > position:
                return True
        return False

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

    @staticmethod
    def _parse(msg: Any) -> tuple[CloudEvent | None, str]:
        try:
            event = parse_record(msg.value, msg.headers)
            event.payload()
        except EventError as exc:
            return None, str(exc)
        return event, ""

    async def _handle_together(self, good: list[tuple[Any, CloudEvent]]) -> str:
        """Run the batch handler: "ok", "failed" (not an outage) or "stopping" (outage, stop)."""
        assert self.batch_handler is not None
        items = [(event, msg.topic) for msg, event in good]
        backoff = Backoff(first=0.1, cap=self.settings.kafka_backoff_max_seconds)
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.batch_handler(items)
            except Exception as exc:
                if not is_outage(exc):
                    log.warning("kafka.batch_failed", group=self.group_id, error=type(exc).__name__)
                    return "failed"
                for topic in {t for _, t in items}:
                    self.metrics.consume_failures.labels(topic, "transient").inc()
                log.warning(
                    "kafka.batch_transient_failure", group=self.group_id, error=type(exc).__name__
                )
                if self._stopping.is_set():
                    return "stopping"
                await asyncio.sleep(backoff.next())
                continue
            share = (loop.time() - started) / len(items)  # each event's share of the transaction
            children = {t: self.metrics.handle_seconds.labels(t) for t in {t for _, t in items}}
            for _, topic in items:
                children[topic].observe(share)
            return "ok"

    async def _process(self, msg: Any) -> bool:
        """Handle one message; returns False only when stopping with a dependency still down."""
        event, error = self._parse(msg)
        if event is None:
            return await self._dead_letter(msg, "poison", error)
        return await self._handle(msg, event)

    async def _handle(self, msg: Any, event: CloudEvent) -> bool:
        topic = msg.topic
        attempt = 0
        backoff = Backoff(first=0.1, cap=self.settings.kafka_backoff_max_seconds)
        while True:
            try:
                with self.metrics.handle_seconds.labels(topic).time():
                    await self.handler(event, topic)
                return True
            except Exception as exc:
                if is_outage(exc):
                    self.metrics.consume_failures.labels(topic, "transient").inc()
                    log.warning(
                        "kafka.handler_transient_failure",
                        topic=topic,
                        event_id=event.id,
                        error=type(exc).__name__,
                    )
                    if self._stopping.is_set():
                        return False
                    await asyncio.sleep(backoff.next())
                    continue
                attempt += 1
                self.metrics.consume_failures.labels(topic, "error").inc()
                if attempt > self.settings.consumer_max_retries:
                    log.exception("kafka.handler_failed", topic=topic, event_id=event.id)
                    return await self._dead_letter(
                        msg, "handler_error", f"{type(exc).__name__}: {exc}"
                    )
                await asyncio.sleep(backoff.next())

    async def _dead_letter(self, msg: Any, reason: str, error: str) -> bool:
        """Publish the original bytes plus the error; wait for the broker's ack before moving on.

        Returns False (do not commit past this message) only when stopping before the
        dead letter could be written.
        """
        headers = [
            *_carried_headers(msg, reason),
            ("baton-error", error[:2000].encode()),
            ("baton-error-reason", reason.encode()),
            ("baton-original-topic", msg.topic.encode()),
            ("baton-original-partition", str(msg.partition).encode()),
            ("baton-original-offset", str(msg.offset).encode()),
            ("baton-consumer-group", self.group_id.encode()),
            ("baton-dead-lettered-at", utcnow().isoformat().encode()),
        ]
        assert self.producer is not None, "consumer started without a producer"
        backoff = Backoff(first=0.2, cap=self.settings.kafka_backoff_max_seconds)
        while True:
            try:
                fut = await self.producer.send(
                    self.settings.topics.leads_dlq, value=msg.value, key=msg.key, headers=headers
                )
                await asyncio.wait_for(
                    asyncio.shield(fut), self.settings.kafka_request_timeout_seconds
                )
                break
            except (KafkaError, TimeoutError) as exc:
                log.warning("kafka.dead_letter_retry", error=type(exc).__name__)
                if self._stopping.is_set():
                    return False
                await asyncio.sleep(backoff.next())
        self.metrics.dead_lettered.labels(msg.topic, reason).inc()
        self.metrics.events_consumed.labels(msg.topic, "dead_lettered").inc()
        log.warning(
            "kafka.dead_lettered",
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            reason=reason,
        )
        return True


def _carried_headers(msg: Any, reason: str) -> list[tuple[str, bytes]]:
    """The original record's own headers, so a dead letter stays the CloudEvent it was (binary
    mode keeps its ce_* headers); an event that parsed but came without any is marked
    structured. Poison keeps only what it came with: it is not known to be a CloudEvent."""
    own = [(k, bytes(v or b"")) for k, v in msg.headers or () if not k.startswith("baton-")]
    names = {k.lower() for k, _ in own}
    if reason != "poison" and not names & {"content-type", "ce_specversion"}:
        own += STRUCTURED_HEADERS
    return own
