"""The skeleton every background loop of ours has: sleep until the next due time (capped) or
a wake-up, run one round, log an outage as a warning and anything else as an error, and keep
the gauges fresh in a loop of their own so they never delay a round.

Followup's clock ticker and notify's dispatcher subclass `Ticking` and write only their round
(`_tick`) and their gauges (`refresh_health`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any, ClassVar

from shared.events import utcnow
from shared.logs import get_logger
from shared.outage import is_outage

FAILURE_DELAY = 1.0  # seconds before the next round after a failed one


def log_failure(log: Any, event: str, exc: BaseException) -> None:
    """An outage (database or broker away) is a warning, anything else an error; the type
    only, never the message (it may hold data)."""
    level = "warning" if is_outage(exc) else "error"
    getattr(log, level)(event, error=type(exc).__name__)


class Ticking:
    """`name` prefixes the tasks ("followup" -> followup-ticker, followup-health); `events`
    the log events ("ticker" -> ticker.failed, ticker.health_failed)."""

    name: ClassVar[str]
    events: ClassVar[str]
    log: ClassVar[Any] = get_logger(__name__)

    def __init__(self, *, max_sleep: float, health_interval: float) -> None:
        self.max_sleep = max_sleep
        self.health_interval = health_interval
        self._wake = asyncio.Event()
        self._wake_at: datetime | None = None  # when the current sleep ends; None otherwise
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _tick(self, now: datetime | None = None) -> tuple[int, float]:
        """One round; returns (what it did, seconds to sleep before the next; 0: none)."""
        raise NotImplementedError

    async def refresh_health(self, now: datetime | None = None) -> object:
        raise NotImplementedError

    def wake(self, at: datetime | None = None) -> None:
        """Something may be due at `at` (None: now or unknown): cut the sleep short unless
        the loop wakes by then anyway."""
        if at is not None and self._wake_at is not None and at >= self._wake_at:
            return
        self._wake.set()

    def _loops(self) -> dict[str, Coroutine[Any, Any, None]]:
        """Task name suffix -> loop; a subclass may add its own."""
        return {"ticker": self._run(), "health": self._health()}

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(loop, name=f"{self.name}-{suffix}")
            for suffix, loop in self._loops().items()
        ]

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        for task in self._tasks:
            await task
        self._tasks = []

    async def _run(self) -> None:
        while not self._stopping.is_set():
            # Cleared before the round, so something arriving during it still cuts the sleep.
            self._wake.clear()
            self._wake_at = None
            try:
                _, delay = await self._tick()
            except Exception as exc:
                log_failure(self.log, f"{self.events}.failed", exc)
                delay = FAILURE_DELAY
            if delay > 0:
                self._wake_at = utcnow() + timedelta(seconds=delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _health(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.refresh_health()
            except Exception as exc:
                log_failure(self.log, f"{self.events}.health_failed", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.health_interval)
