"""The clock ticker: sleeps until the earliest open deadline (capped), fires what is due.

Cost per tick is an index range scan over due clocks only, so it does not grow with the
number of open clocks; several followup instances share the work via SKIP LOCKED. A tick is a
fixed number of statements however many clocks fire, so clocks coming due back to back are
fired in batches (ticks at least `MIN_INTERVAL` apart) and a full tick is followed at once.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import ClassVar

from services.followup import store
from services.followup.service import FollowupService
from shared.events import utcnow
from shared.logs import get_logger
from shared.runtime import Runtime
from shared.ticking import Ticking

# Shortest time from one tick's start to the next unless a tick was full. Clocks coming due
# one after another (thousands a second) are fired in batches of this many seconds' worth,
# not a tick per clock or two: far fewer round trips, for at most this much added lateness.
MIN_INTERVAL = 0.05


class Ticker(Ticking):
    """Woken by a new clock due at `at` unless it wakes by then anyway: a new clock is usually
    due minutes away, so a stream of assignments costs no tick each."""

    name: ClassVar[str] = "followup"
    events: ClassVar[str] = "ticker"
    log = get_logger(__name__)

    def __init__(
        self,
        *,
        runtime: Runtime,
        service: FollowupService,
        max_sleep: float,
        health_interval: float = 30.0,
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        super().__init__(max_sleep=max_sleep, health_interval=health_interval)
        self.runtime = runtime
        self.service = service
        self.min_interval = min(min_interval, max_sleep)

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
        """Gauges from periodic queries in their own loop, so they never delay a firing."""
        async with self.runtime.sessions() as session:
            return await self.service.refresh_health(session, now=now or utcnow())
