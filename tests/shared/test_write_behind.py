"""`WriteBehind` on the real PostgreSQL: statements in flight run in order, in the caller's
transaction, and an error is never lost, whether it is the statement's or the caller's."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import WriteBehind

pytestmark = pytest.mark.integration


async def _table(db: AsyncSession) -> None:
    await db.execute(text("CREATE TEMP TABLE wb (n int PRIMARY KEY, seen int)"))


async def _insert(db: AsyncSession, n: int) -> None:
    # `seen` counts the rows already there: in order, statement n sees exactly n rows
    await db.execute(text("INSERT INTO wb (n, seen) SELECT :n, count(*) FROM wb"), {"n": n})


async def test_statements_run_in_order_in_the_callers_transaction(db: AsyncSession) -> None:
    await _table(db)
    async with WriteBehind() as behind:
        for n in range(20):
            await behind.submit(_insert(db, n))
    rows = (await db.execute(text("SELECT n, seen FROM wb ORDER BY n"))).all()
    assert [tuple(r) for r in rows] == [(n, n) for n in range(20)]


async def test_a_failed_statement_is_raised_by_the_next_submit(db: AsyncSession) -> None:
    await _table(db)
    behind = WriteBehind()
    await behind.submit(_insert(db, 1))
    await behind.submit(_insert(db, 1))  # duplicate key, fails in flight
    with pytest.raises(DBAPIError):
        await behind.submit(_insert(db, 2))  # waits for it first, so raises here
    await db.rollback()


async def test_the_last_failed_statement_is_raised_on_leaving(db: AsyncSession) -> None:
    await _table(db)
    behind = WriteBehind()
    with pytest.raises(DBAPIError):
        async with behind:
            await behind.submit(_insert(db, 1))
            await behind.submit(_insert(db, 1))
    await db.rollback()


async def test_the_callers_error_waits_for_the_statement_and_wins(db: AsyncSession) -> None:
    await _table(db)
    finished: list[int] = []

    async def slow() -> None:
        await db.execute(text("SELECT pg_sleep(0.2)"))
        finished.append(1)

    with pytest.raises(ZeroDivisionError):
        async with WriteBehind() as behind:
            await behind.submit(slow())
            _ = 1 / 0
    assert finished == [1]  # the statement ended before the caller's error left the block
    with pytest.raises(ZeroDivisionError):
        async with WriteBehind() as behind:
            await behind.submit(_insert(db, 1))
            await behind.submit(_insert(db, 1))  # fails too, but the caller's error is reported
            _ = 1 / 0
    await db.rollback()  # the session is idle again: nothing still in flight on it
    assert (await db.execute(text("SELECT 1"))).scalar() == 1
