"""The router's ticker: eligibility changes with the clock (working hours, out of office) and
on a policy reload, so every `GAUGE_REFRESH_SECONDS`, or at once when woken, it refreshes the
eligible-reps gauges, routes the leads parked for want of an eligible rep and retries the
reassignments that found nobody (`recovery`); every `RECONCILE_SECONDS` it recomputes the
reps' open-lead loads from the lead rows (`reconcile`)."""

from __future__ import annotations

import asyncio
from contextlib import suppress

from services.router import out_of_office, reconcile, recovery
from services.router.service import RouterService
from shared.events import utcnow
from shared.logs import get_logger
from shared.runtime import Runtime

log = get_logger(__name__)
GAUGE_REFRESH_SECONDS = 15.0


class Ticker:
    def __init__(
        self,
        *,
        runtime: Runtime,
        service: RouterService,
        interval: float = GAUGE_REFRESH_SECONDS,
        reconcile_interval: float = reconcile.RECONCILE_SECONDS,
    ) -> None:
        self.runtime = runtime
        self.service = service
        self.interval = interval
        self.reconcile_interval = reconcile_interval
        self._reconciled_at: float | None = None  # loop time of the last load reconcile
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Tick now (after a reload: the gauges follow the new teams at once)."""
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="router-gauges")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def tick(self) -> int:
        """Gauges from the stored rep state, then parked leads, owners whose out-of-office
        started and failed reassignments, each in its own transaction; returns how many
        leads found an owner."""
        async with self.runtime.sessions() as session:
            await self.service.refresh_team_gauges(session, now=utcnow())
        async with self.runtime.sessions() as session, session.begin():
            moved = await self.service.retry_parked(session, now=utcnow())
        async with self.runtime.sessions() as session, session.begin():
            moved += await out_of_office.reassign_out_of_office(self.service, session, now=utcnow())
        async with self.runtime.sessions() as session, session.begin():
            moved += await recovery.retry_reassignments(self.service, session, now=utcnow())
        await self.reconcile_if_due()
        if moved:
            self.runtime.relay.wake()
        return moved

    async def reconcile_if_due(self) -> list[str]:
        """The load reconcile, at start-up and then every `reconcile_interval` seconds."""
        clock = asyncio.get_running_loop().time()
        last = self._reconciled_at
        if last is not None and clock - last < self.reconcile_interval:
            return []
        async with self.runtime.sessions() as session, session.begin():
            corrected = await reconcile.reconcile_loads(self.service, session)
        self._reconciled_at = clock
        return corrected

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception as exc:  # a database blip must not end the loop
                log.warning("router.gauges_failed", error=type(exc).__name__)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()
