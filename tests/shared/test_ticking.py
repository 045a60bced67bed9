"""shared.ticking: the loop survives a failed round, a wake-up cuts a long sleep, a wake-up
for later than the sleep's end does not, and stop ends every loop."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import ClassVar

import pytest

from shared import ticking
from shared.events import utcnow


class _Loop(ticking.Ticking):
    name: ClassVar[str] = "test"
    events: ClassVar[str] = "test_loop"

    def __init__(self, results: list[float | Exception]) -> None:
        super().__init__(max_sleep=60.0, health_interval=60.0)
        self.results = results
        self.rounds = 0
        self.healths = 0
        self.ran = asyncio.Event()

    async def _tick(self, now: datetime | None = None) -> tuple[int, float]:
        self.rounds += 1
        self.ran.set()
        result = self.results.pop(0) if self.results else 60.0
        if isinstance(result, Exception):
            raise result
        return 1, result

    async def refresh_health(self, now: datetime | None = None) -> None:
        self.healths += 1


async def _next_round(loop: _Loop) -> None:
    loop.ran.clear()
    await asyncio.wait_for(loop.ran.wait(), timeout=10)  # a failure bound, not a measurement


async def test_a_failed_round_is_retried_and_a_wake_cuts_the_sleep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ticking, "FAILURE_DELAY", 0.01)
    loop = _Loop([RuntimeError("boom"), 60.0])
    await loop.start()
    while loop.rounds < 2:  # the failed round, then the retry after FAILURE_DELAY
        await _next_round(loop)
    loop.wake()  # cuts the 60 s sleep
    await _next_round(loop)
    assert loop.rounds == 3 and loop.healths >= 1
    await loop.stop()
    assert loop._tasks == []


async def test_a_wake_for_after_the_sleep_ends_is_ignored() -> None:
    loop = _Loop([])
    loop._wake_at = utcnow() + timedelta(seconds=60)
    loop.wake(utcnow() + timedelta(hours=1))
    assert not loop._wake.is_set()
    loop.wake(utcnow() + timedelta(seconds=1))
    assert loop._wake.is_set()
