"""The dispatcher: claims due messages and sends them, each endpoint in its own slots.

Each endpoint (a configured webhook endpoint, or the "slack" / "email" channel) has
`concurrency` send slots. A round claims, in one statement for every endpoint with free
slots, at most that many due messages each (`FOR UPDATE SKIP LOCKED`, so several notify
instances share the work) and leases them (their next attempt moves past the attempt's
timeout), then sends each in a task of its own. A slow or dead endpoint therefore fills only
its own slots and is not even asked while they are full: the other endpoints' claims, sends
and the consumer never wait for it.

Attempts are recorded with group commit: the attempts that finish while a write is in flight
are written together in the next write, one statement (attempt rows, the messages' next
states, the endpoints' health). A send slot is free once the send is done; at most
`concurrency` finished attempts per endpoint wait for their record (back-pressure). A crash
after a send and before its record leaves the lease to expire, and the message is sent once
more with the same `webhook-id`: receivers dedupe by it.

The loop sleeps until the earliest next attempt of an endpoint with free slots (capped at
`max_sleep`), and is woken by new messages (this instance's consumer after its commit, and
any instance's through LISTEN/NOTIFY on `baton_notify_due`), by a finished attempt of an
endpoint whose last claim filled its slots (a slot is free again and more may be due; other
endpoints' retries are found within `max_sleep`) and by the admin API (replay, enable; also
NOTIFYed to every instance).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

import asyncpg
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.notify import store
from services.notify.channels.base import AttemptResult, Outgoing, Sender
from services.notify.service import NotifyService
from shared.events import utcnow
from shared.logs import get_logger
from shared.runtime import Runtime
from shared.ticking import Ticking, log_failure

log = get_logger(__name__)

MIN_INTERVAL = 0.02  # shortest sleep when something is due but could not be claimed yet
STOP_GRACE = 5.0  # seconds in-flight sends get to finish on stop; the rest are resent


@dataclass(frozen=True)
class Group:
    """An endpoint with its own slots: `name` is the messages' `endpoint` column."""

    name: str
    channel: str
    timeout_seconds: float


@dataclass(frozen=True)
class _Record:
    attempt: store.Attempt
    endpoint: str
    ok: bool
    disable_reason: str | None


def endpoint_health(batch: list[_Record]) -> list[store.Health]:
    """Each endpoint's health update for a batch of attempts (in the order they finished):
    its last success (if any), the first failure after it (if any; `failing_since`), and
    disabled if any attempt of the batch answered 410."""
    out: list[store.Health] = []
    for name in dict.fromkeys(r.endpoint for r in batch):
        mine = [r for r in batch if r.endpoint == name]
        reason = next((r.disable_reason for r in mine if r.disable_reason), None)
        last_ok = max((i for i, r in enumerate(mine) if r.ok), default=-1)
        ok_at = mine[last_ok].attempt.at if last_ok >= 0 else None
        failed = mine[last_ok + 1 :]
        failed_at = failed[0].attempt.at if failed else (mine[-1].attempt.at if reason else None)
        out.append(store.Health(name, ok_at, failed_at, reason))
    return out


class Dispatcher(Ticking):
    name: ClassVar[str] = "notify"
    events: ClassVar[str] = "dispatcher"
    log = log

    def __init__(
        self,
        *,
        runtime: Runtime,
        service: NotifyService,
        senders: Mapping[str, Sender],
        groups: list[Group],
        concurrency: int,
        max_sleep: float,
        health_interval: float = 15.0,
        lease_margin: float = 30.0,  # settings.notify_lease_seconds
    ) -> None:
        super().__init__(max_sleep=max_sleep, health_interval=health_interval)
        self.runtime = runtime
        self.service = service
        self.senders = senders
        self.groups = [g for g in groups if g.channel in senders]
        self._by_name = {g.name: g for g in self.groups}
        # claim rounds and attempt records are one statement each, run in autocommit (the
        # statement is the transaction: no BEGIN / COMMIT round trips)
        self._sessions = async_sessionmaker(
            runtime.engine.execution_options(isolation_level="AUTOCOMMIT"),
            expire_on_commit=False,
            autoflush=False,
        )
        self.concurrency = concurrency
        self.lease_margin = lease_margin
        self.inflight: dict[str, int] = {g.name: 0 for g in self.groups}  # sends
        self.unrecorded: dict[str, int] = {g.name: 0 for g in self.groups}  # sent, not recorded
        # endpoints whose last claim filled every free slot (more may be due): only their
        # finished attempts wake the loop; the others' next due time is already in its sleep
        self._saturated: set[str] = set()
        self._sends: set[asyncio.Task[None]] = set()
        self.stop_grace = STOP_GRACE
        self.listening = asyncio.Event()  # set while the LISTEN connection is up
        self._queue: list[tuple[_Record, asyncio.Future[bool]]] = []
        self._writing = False

    def _free(self, name: str) -> int:
        """Send slots free at an endpoint: at most `concurrency` sends in flight, and at most
        `concurrency` more finished ones waiting for their record."""
        inflight, unrecorded = self.inflight[name], self.unrecorded[name]
        return min(self.concurrency - inflight, 2 * self.concurrency - inflight - unrecorded)

    def _loops(self) -> dict[str, Coroutine[Any, Any, None]]:
        return {**super()._loops(), "listen": self._listen()}

    async def stop(self) -> None:
        await super().stop()
        if self._sends:
            _, late = await asyncio.wait(self._sends, timeout=self.stop_grace)
            for task in late:  # leased: sent again after the lease, with the same webhook-id
                task.cancel()
            if late:
                await asyncio.wait(late)

    async def idle(self) -> None:
        """Wait until no send is in flight (tests)."""
        while self._sends:
            await asyncio.wait(set(self._sends))

    async def _listen(self) -> None:
        """LISTEN for new messages stored by any instance's consumer, and for replays and
        enables from any instance's admin API, on a dedicated connection (remade after any
        failure; the capped sleep covers the gap)."""
        delay = 0.5
        while not self._stopping.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.runtime.settings.asyncpg_dsn, timeout=5)
                await conn.add_listener(store.DUE_CHANNEL, lambda *_: self.wake())
                self.listening.set()
                delay = 0.5
                while not self._stopping.is_set() and not conn.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), timeout=1.0)
            except Exception as exc:
                log_failure(log, "dispatcher.listen_failed", exc)
            finally:
                self.listening.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), timeout=2)
            if not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
                delay = min(delay * 2, 10.0)

    # --- claiming ---------------------------------------------------------------------------

    async def _tick(self, now: datetime | None = None) -> tuple[int, float]:
        """One claim round, one statement for every endpoint with free slots (its own
        transaction); returns (messages started, seconds to sleep)."""
        now = now or utcnow()
        wants: list[store.Want] = []
        for group in self.groups:
            free = self._free(group.name)
            if free <= 0:
                self._saturated.add(group.name)
                continue
            lease = now + timedelta(seconds=group.timeout_seconds + self.lease_margin)
            wants.append(store.Want(group.name, free, lease))
        async with self._sessions() as session:
            got = await store.claim_round(session, wants=wants, now=now)
        taken = Counter(row.endpoint for row in got.claimed)
        due: list[datetime] = []
        for want in wants:
            if taken[want.endpoint] < want.limit:  # it ran out: sleep until its next one
                self._saturated.discard(want.endpoint)
                if want.endpoint in got.next_due:
                    due.append(got.next_due[want.endpoint])
            else:  # more may be due: its finished attempts wake the loop
                self._saturated.add(want.endpoint)
        for row in got.claimed:
            group = self._by_name[row.endpoint]
            self.inflight[group.name] += 1
            task = asyncio.create_task(self._deliver(group, row), name="notify-send")
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)
        if not due:
            return len(got.claimed), self.max_sleep
        until = (min(due) - utcnow()).total_seconds()
        return len(got.claimed), max(MIN_INTERVAL, min(self.max_sleep, until))

    # --- sending ----------------------------------------------------------------------------

    async def _deliver(self, group: Group, row: store.MessageRow) -> None:
        """Send, free the send slot, then record. The record is group-committed while the
        slot already takes another message: when statements are slow (a loaded database),
        holding the slot until the commit capped an endpoint at `concurrency` messages per
        record latency (16 / ~80 ms = 200/s). Unrecorded attempts still count against the
        endpoint's claims (`_free`), so records cannot fall behind without bound."""
        name = group.name
        try:
            record = await self._send(group, row)
            self.unrecorded[name] += 1
        finally:
            self.inflight[name] -= 1
            if name in self._saturated:  # a freed slot may take a waiting message
                self.wake()
        try:
            committed = await self._record(record)
        finally:
            self.unrecorded[name] -= 1
            if name in self._saturated:  # a message held back by this one may be due now
                self.wake()
        if not committed:
            return  # the lease expires and the message is sent again
        if record.disable_reason is not None:
            log.warning("endpoint.disabled", endpoint=name, status=record.attempt.status)
        elif record.attempt.new_status == "dead":
            log.warning(
                "message.dead", endpoint=name, channel=row.channel, outcome=record.attempt.outcome
            )

    async def _send(self, group: Group, row: store.MessageRow) -> _Record:
        """One attempt; its outcome as the record to write (a sender never raises; one that
        does made a failed attempt)."""
        out = Outgoing(
            message_id=row.id,
            event_id=row.event_id,
            channel=row.channel,
            target=row.target,
            body=row.body,
        )
        at = utcnow()
        started = time.perf_counter()
        try:
            result = await self.senders[row.channel].send(out)
        except Exception as exc:
            log.error("dispatcher.sender_raised", channel=row.channel, error=type(exc).__name__)
            result = AttemptResult("retry", error=f"sender error ({type(exc).__name__})")
        duration = time.perf_counter() - started
        self.service.metrics.attempt_seconds.labels(row.channel).observe(duration)
        nxt = self.service.after_attempt(result, channel=row.channel, step=row.step, now=at)
        attempt = store.Attempt(
            message_id=row.id,
            at=at,
            outcome=nxt.outcome,
            status=result.status,
            duration_seconds=duration,
            error=result.error,
            new_status=nxt.status,
            step=nxt.step,
            next_attempt_at=nxt.next_attempt_at,
        )
        ok = result.outcome == "delivered"
        self.service.metrics.endpoint_failing.labels(group.name).set(0 if ok else 1)
        disable = (result.error or "gone") if nxt.disable_endpoint else None
        return _Record(attempt, group.name, ok, disable)

    async def _record(self, record: _Record) -> bool:
        """Group commit of attempt records: the first finished attempt writes, in one
        transaction, every record queued until its write is done (and then those queued
        meanwhile), so a busy dispatcher writes a few transactions a second, not one per
        attempt. Returns whether this record was committed."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((record, done))
        if not self._writing:
            self._writing = True
            try:
                while self._queue:
                    batch, self._queue = self._queue, []
                    ok = await self._write([r for r, _ in batch])
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_result(ok)
            finally:
                self._writing = False
                for _, fut in self._queue:  # cancelled mid-write: the rest is not written
                    if not fut.done():
                        fut.set_result(False)
                self._queue = []
        return await done

    async def _write(self, batch: list[_Record]) -> bool:
        try:
            async with self._sessions() as session:  # one statement: its own transaction
                await store.record_attempts(
                    session, [r.attempt for r in batch], endpoint_health(batch)
                )
        except Exception as exc:
            log_failure(log, "dispatcher.record_failed", exc)
            return False
        return True

    # --- gauges -----------------------------------------------------------------------------

    async def refresh_health(self, now: datetime | None = None) -> None:
        now = now or utcnow()
        async with self.runtime.sessions() as session:
            backlog = {b.endpoint: b for b in await store.backlog(session)}
            states = await store.endpoint_states(session)
        metrics = self.service.metrics
        for name in {g.name for g in self.groups} | set(backlog):
            b = backlog.get(name)
            metrics.pending.labels(name).set(b.pending if b else 0)
            oldest = (now - b.oldest_created_at).total_seconds() if b and b.oldest_created_at else 0
            metrics.oldest_pending.labels(name).set(max(0.0, oldest))
            # from the stored health, so every endpoint has the series (alerts) and another
            # instance's attempts or an enable count too
            state = states.get(name, {})
            failing = state.get("disabled_at") is not None or state.get("failing_since") is not None
            metrics.endpoint_failing.labels(name).set(1 if failing else 0)
