"""The clock ticker: sleeps until the earliest open deadline (capped), fires what is due.

Cost per tick is an index range scan over due clocks only, so it does not grow with the
number of open clocks; several followup instances share the work via SKIP LOCKED. A tick is a
fixed number of statements however many clocks fire, so clocks coming due back to back are
fired in batches (ticks at least `MIN_INTERVAL` apart) and a full tick is followed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime, timedelta

from services.followup import store
from services.followup.service import FollowupService
from shared.events import utcnow
from shared.logs import get_logger
from shared.outage import is_outage
from shared.runtime import Runtime

log = get_logger(__name__)

# Shortest time from one tick's start to the next unless a tick was full. Clocks coming due
# one after another (thousands a second) are fired in batches of this many seconds' worth,
# not a tick per clock or two: far fewer round trips, for at most this much added lateness.
MIN_INTERVAL = 0.05


class Ticker:
    def __init__(
        self,
        *,
        runtime: Runtime,
        service: FollowupService,
        max_sleep: float,
        health_interval: float = 30.0,
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        self.runtime = runtime
        self.service = service
        self.max_sleep = max_sleep
        self.health_interval = health_interval
        self.min_interval = min(min_interval, max_sleep)
        self._wake = asyncio.Event()
        self._wake_at: datetime | None = None  # when the current sleep ends; None otherwise
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def wake(self, at: datetime | None = None) -> None:
        """A clock due at `at` (None: unknown) has appeared: cut the sleep short, unless the
        ticker wakes by then anyway. A new clock is usually due minutes away, so a stream of
        assignments costs no tick each."""
        if at is not None and self._wake_at is not None and at >= self._wake_at:
            return
        self._wake.set()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name="followup-ticker"),
            asyncio.create_task(self._health(), name="followup-health"),
        ]

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        for task in self._tasks:
            await task
        self._tasks = []

    async def _tick(self, now: datetime | None = None) -> tuple[int, float]:
        """One tick; returns (fired, how long to sleep before the next one).

        The next due time is read in the tick's own transaction (it sees the clocks this tick
        just advanced), not in a session of its own: no extra checkout, BEGIN and ROLLBACK.
        A full tick means more is due already, so there is nothing to read and no sleep.
        """
        started = time.monotonic()
        async with self.runtime.sessions() as session, session.begin():
            result = await self.service.run_tick(session, now=now or utcnow())
            nxt = None if result.full else await store.next_fire_time(session)
        if result.fired:
            self.runtime.relay.wake()
        if result.full:
            return result.fired, 0.0
        until_due = self.max_sleep if nxt is None else (nxt - utcnow()).total_seconds()
        batch_floor = self.min_interval - (time.monotonic() - started)
        return result.fired, max(0.0, min(self.max_sleep, max(until_due, batch_floor)))

    async def refresh_health(self, now: datetime | None = None) -> float:
        async with self.runtime.sessions() as session:
            return await self.service.refresh_health(session, now=now or utcnow())

    async def _health(self) -> None:
        """Gauges from periodic queries in their own loop, so they never delay a firing."""
        while not self._stopping.is_set():
            try:
                await self.refresh_health()
            except Exception as exc:
                level = "warning" if is_outage(exc) else "error"
                getattr(log, level)("ticker.health_failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.health_interval)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            # Cleared before the tick, so a clock that arrives during it still cuts the sleep.
            self._wake.clear()
            self._wake_at = None
            try:
                _, delay = await self._tick()
            except Exception as exc:
                level = "warning" if is_outage(exc) else "error"
                getattr(log, level)("ticker.failed", error=type(exc).__name__)
                delay = 1.0
            if delay > 0:
                self._wake_at = utcnow() + timedelta(seconds=delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
