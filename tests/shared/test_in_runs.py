"""`in_runs`: the batch-mode dispatch both consumers use keeps the fetch order."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import CloudEvent, utcnow
from shared.runtime import in_runs


def _event(type_: str, n: int) -> CloudEvent:
    return CloudEvent(id=f"e{n}", source="test", type=type_, time=utcnow(), subject=str(n), data={})


async def test_runs_of_the_type_go_together_and_the_rest_in_place() -> None:
    calls: list[Any] = []

    async def many(_: AsyncSession, events: list[CloudEvent]) -> None:
        calls.append([e.id for e in events])

    async def one(_: AsyncSession, event: CloudEvent) -> None:
        calls.append(event.id)

    types = ["a", "a", "b", "a", "b", "b", "a", "a", "a"]
    dispatch = in_runs("a", many, one)
    await dispatch(cast(AsyncSession, None), [_event(t, i) for i, t in enumerate(types)])
    assert calls == [["e0", "e1"], "e2", ["e3"], "e4", "e5", ["e6", "e7", "e8"]]
