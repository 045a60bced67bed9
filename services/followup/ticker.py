"""The clock ticker: sleeps until the earliest open deadline (capped), fires what is due.

Cost per tick is an index range scan over due clocks only, so it does not grow with the
number of open clocks; several followup instances share the work via SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

from services.followup import store
from services.followup.service import FollowupService
from shared.events import utcnow
from shared.kafka import is_transient
from shared.logs import get_logger
from shared.runtime import Runtime

log = get_logger(__name__)


class Ticker:
    def __init__(
        self,
        *,
        runtime: Runtime,
        service: FollowupService,
        max_sleep: float,
        health_interval: float = 30.0,
    ) -> None:
        self.runtime = runtime
        self.service = service
        self.max_sleep = max_sleep
        self.health_interval = health_interval
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def wake(self) -> None:
        """A clock with an earlier deadline may have appeared: recompute the sleep."""
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

    async def tick_once(self, now: datetime | None = None) -> int:
        async with self.runtime.sessions() as session, session.begin():
            fired = await self.service.tick(session, now=now or utcnow())
        if fired:
            self.runtime.relay.wake()
        return fired

    async def refresh_health(self, now: datetime | None = None) -> float:
        async with self.runtime.sessions() as session:
            return await self.service.refresh_health(session, now=now or utcnow())

    async def _health(self) -> None:
        """Gauges from periodic queries in their own loop, so they never delay a firing."""
        while not self._stopping.is_set():
            try:
                await self.refresh_health()
            except Exception as exc:
                level = "warning" if is_transient(exc) else "error"
                getattr(log, level)("ticker.health_failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.health_interval)

    async def _sleep_for(self) -> float:
        async with self.runtime.sessions() as session:
            nxt = await store.next_fire_time(session)
        if nxt is None:
            return self.max_sleep
        return max(0.0, min(self.max_sleep, (nxt - utcnow()).total_seconds()))

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                fired = await self.tick_once()
                delay = 0.0 if fired >= 500 else await self._sleep_for()
            except Exception as exc:
                level = "warning" if is_transient(exc) else "error"
                getattr(log, level)("ticker.failed", error=type(exc).__name__)
                delay = 1.0
            if delay > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
