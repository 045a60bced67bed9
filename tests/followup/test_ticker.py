"""The ticker loop's decisions without a database: how long it sleeps and when a wake counts.

The runtime, the session and the service are stubs; `store.next_fire_time` is patched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest

from services.followup import store
from services.followup.service import TickResult
from services.followup.ticker import Ticker
from shared.events import utcnow


class _Session:
    @asynccontextmanager
    async def begin(self) -> AsyncIterator[None]:
        yield


class _Relay:
    def __init__(self) -> None:
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1


class _Runtime:
    def __init__(self) -> None:
        self.relay = _Relay()

    @asynccontextmanager
    async def sessions(self) -> AsyncIterator[_Session]:
        yield _Session()


class _Service:
    def __init__(self, result: TickResult) -> None:
        self.result = result

    async def run_tick(self, session: Any, *, now: datetime) -> TickResult:
        return self.result


def _ticker(result: TickResult, *, max_sleep: float = 1.0) -> Ticker:
    return Ticker(
        runtime=_Runtime(),  # type: ignore[arg-type]
        service=_Service(result),  # type: ignore[arg-type]
        max_sleep=max_sleep,
        min_interval=0.05,
    )


@pytest.fixture
def next_fire(monkeypatch: pytest.MonkeyPatch) -> list[datetime | None]:
    """Set [0] to what `store.next_fire_time` returns; it fails if a full tick asks."""
    value: list[datetime | None] = [None]

    async def fake(session: Any) -> datetime | None:
        return value[0]

    monkeypatch.setattr(store, "next_fire_time", fake)
    return value


async def test_a_full_tick_ticks_again_at_once(next_fire: list[datetime | None]) -> None:
    next_fire[0] = utcnow() + timedelta(seconds=0.5)
    ticker = _ticker(TickResult(fired=1000, full=True))
    assert await ticker._tick() == (1000, 0.0)
    assert ticker.runtime.relay.woken == 1  # type: ignore[attr-defined]


async def test_sleeps_until_the_next_due_time_capped(next_fire: list[datetime | None]) -> None:
    ticker = _ticker(TickResult(fired=0, full=False))
    next_fire[0] = utcnow() + timedelta(seconds=0.5)
    _, delay = await ticker._tick()
    assert 0.4 < delay <= 0.5
    next_fire[0] = utcnow() + timedelta(hours=1)
    assert (await ticker._tick())[1] == 1.0
    next_fire[0] = None
    assert (await ticker._tick())[1] == 1.0
    assert ticker.runtime.relay.woken == 0  # type: ignore[attr-defined]


async def test_clocks_due_one_after_another_are_batched(next_fire: list[datetime | None]) -> None:
    """Something due now (or 1 ms away) still waits out the shortest interval between ticks."""
    ticker = _ticker(TickResult(fired=3, full=False))
    for due in (utcnow() - timedelta(seconds=1), utcnow() + timedelta(milliseconds=1)):
        next_fire[0] = due
        _, delay = await ticker._tick()
        assert 0.03 < delay <= 0.05


def test_a_new_clock_wakes_the_ticker_only_if_due_before_its_wake_up() -> None:
    ticker = _ticker(TickResult(fired=0, full=False))
    wake_up = utcnow() + timedelta(seconds=1)
    ticker._wake_at = wake_up
    ticker.wake(wake_up + timedelta(minutes=30))  # the usual case: due after the SLA window
    assert not ticker._wake.is_set()
    ticker.wake(wake_up - timedelta(milliseconds=100))
    assert ticker._wake.is_set()

    ticker._wake.clear()
    ticker.wake(None)  # due time unknown
    assert ticker._wake.is_set()

    ticker._wake.clear()
    ticker._wake_at = None  # ticking: the tick in progress may have missed the clock
    ticker.wake(wake_up + timedelta(minutes=30))
    assert ticker._wake.is_set()
