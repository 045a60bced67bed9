"""The ticker's queries read due rows through partial indexes, whatever the number of open clocks.

100,000 open clocks that are not due (plus closed ones, nurture rows and recorded activities)
are inserted in a transaction that is rolled back; the planner statistics are refreshed inside
it, and the plans must be index range scans over due rows only, never a sequential scan.
Run with `-s` to print the plans (docs/followup.md quotes them).
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.service import TICK_LIMIT, FollowupService
from shared.events import utcnow
from tests.followup.conftest import EPOCH

pytestmark = pytest.mark.integration

OPEN = 100_000
DUE = 50
NOW = EPOCH + timedelta(days=1)

CLAIM = (
    "SELECT lead_id FROM followup.clocks WHERE status = 'open' AND next_fire_at <= :now "
    f"ORDER BY next_fire_at LIMIT {TICK_LIMIT} FOR UPDATE SKIP LOCKED"
)
NEXT = (
    "SELECT least((SELECT next_fire_at FROM followup.clocks WHERE status = 'open' "
    "ORDER BY next_fire_at LIMIT 1), "
    "(SELECT reengage_at FROM followup.reengagements WHERE status = 'pending' "
    "ORDER BY reengage_at LIMIT 1))"
)
REENGAGE = (
    "SELECT lead_id FROM followup.reengagements WHERE status = 'pending' AND reengage_at <= :now "
    f"ORDER BY reengage_at LIMIT {TICK_LIMIT} FOR UPDATE SKIP LOCKED"
)
PENDING = (
    "SELECT activity_id FROM followup.activities WHERE state = 'pending' "
    f"AND recorded_at <= :cutoff ORDER BY recorded_at LIMIT {TICK_LIMIT} FOR UPDATE SKIP LOCKED"
)


async def _populate(db: AsyncSession, *, analyze: bool = True) -> None:
    clock = text(
        "INSERT INTO followup.clocks (lead_id, assignment_seq, owner, team_id, tier, "
        "window_seconds, started_at, due_at, status, next_level, next_fire_at, chain) "
        "SELECT gen_random_uuid(), 1, CAST(:owner AS jsonb), 'emea', 'hot', 3600, "
        "CAST(:t AS timestamptz), CAST(:t AS timestamptz), "
        ":status, 1, CAST(:t AS timestamptz) + interval '1 second' * g, CAST(:chain AS jsonb) "
        "FROM generate_series(1, :n) g"
    )
    common = {
        "owner": '{"id": "rep-a", "name": "A", "email": "a@example.com"}',
        "chain": '[{"level": 1, "action": "remind_owner", "after_seconds": 0}]',
    }
    future, past = NOW + timedelta(hours=1), EPOCH
    for status, start, n in (("open", future, OPEN), ("met", past, OPEN), ("open", past, DUE)):
        await db.execute(clock, {**common, "status": status, "t": start, "n": n})
    await db.execute(
        text(
            "INSERT INTO followup.reengagements (lead_id, owner, reengage_at, status) "
            "SELECT gen_random_uuid(), '{}', CAST(:t AS timestamptz) + (interval '1 minute' * g), "
            "CASE WHEN g % 2 = 0 THEN 'sent' ELSE 'pending' END FROM generate_series(1, 50000) g"
        ),
        {"t": future},
    )
    await db.execute(
        text(
            "INSERT INTO followup.activities (activity_id, lead_id, type, at, actor, state) "
            "SELECT 'plan-' || g, gen_random_uuid(), 'contacted', :t, 'rep-a', "
            "CASE WHEN g % 1000 = 0 THEN 'pending' ELSE 'applied' END "
            "FROM generate_series(1, 50000) g"
        ),
        {"t": past},
    )
    for table in ("clocks", "reengagements", "activities") if analyze else ():
        await db.execute(text(f"ANALYZE followup.{table}"))


async def _plan(db: AsyncSession, sql: str, **params: object) -> str:
    rows = await db.execute(text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql), params)
    return "\n".join(r[0] for r in rows)


async def test_ticker_queries_use_the_partial_indexes_at_100k_open_clocks(
    db: AsyncSession, service: FollowupService
) -> None:
    await _populate(db)
    plans = {
        "claim due clocks": (await _plan(db, CLAIM, now=NOW), "clocks_due"),
        "next fire time": (await _plan(db, NEXT), "clocks_due"),
        "claim due re-engagements": (
            await _plan(db, REENGAGE, now=NOW + timedelta(days=365)),
            "reengage_due",
        ),
        "claim stale pending activities": (
            await _plan(db, PENDING, cutoff=utcnow() + timedelta(days=1)),
            "activities_pending",
        ),
    }
    for name, (plan, index) in plans.items():
        print(f"\n--- {name}\n{plan}")
        assert f"using {index}" in plan, name
        assert "Seq Scan" not in plan, name
    claim_plan = plans["claim due clocks"][0]
    assert f"rows={DUE} " in claim_plan  # only due rows were read

    started = time.perf_counter()
    fired = await service.tick(db, now=NOW)
    elapsed = time.perf_counter() - started
    print(f"\n--- one tick with {OPEN} open clocks, {DUE} due: {elapsed * 1000:.0f} ms")
    assert fired >= DUE
    started = time.perf_counter()
    await service.refresh_health(db, now=NOW)
    print(
        f"--- refresh_health (open-clock count + 7-day ratio): "
        f"{(time.perf_counter() - started) * 1000:.0f} ms"
    )


async def test_next_fire_time_planned_on_an_empty_table_reads_one_entry(db: AsyncSession) -> None:
    """The query has no parameters, so a connection plans it once. Planned before the clocks
    exist and run after 100,000 of them arrive (no ANALYZE in between), it must still read
    the first index entry only, not every open clock (what `min()` did)."""
    from services.followup import store

    await db.execute(text("DELETE FROM followup.clocks"))  # rolled back with the test
    await db.execute(text("DELETE FROM followup.reengagements"))
    await db.execute(text(f"PREPARE next_fire AS {NEXT}"))
    try:
        for _ in range(6):  # past the five custom plans: the cached plan is what runs now
            await db.execute(text("EXECUTE next_fire"))
        await _populate(db, analyze=False)
        plan = "\n".join(
            r[0] for r in await db.execute(text("EXPLAIN (ANALYZE, COSTS OFF) EXECUTE next_fire"))
        )
    finally:
        await db.execute(text("DEALLOCATE next_fire"))
    print(plan)
    clocks_scan = next(line for line in plan.splitlines() if "on clocks" in line)
    assert "rows=1 " in clocks_scan, plan
    assert await store.next_fire_time(db) == EPOCH + timedelta(seconds=1)  # the earliest open


async def test_clock_start_planned_on_empty_activities_probes_the_index(db: AsyncSession) -> None:
    """Clock start asks whether each lead has activities. Prepared (and past its five custom
    plans) while `followup.activities` is empty, then run after 50,000 activities arrive with
    no ANALYZE in between, it must still probe the index per lead, not read the table (the
    `EXISTS` it replaced was hashed over a scan of every activity: 50 ms for 50 clocks)."""
    import re
    import uuid

    from services.followup import store

    await db.execute(text("DELETE FROM followup.activities"))  # rolled back with the test
    names: list[str] = []

    def positional(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    sql = re.sub(r"(?<!:):([a-z_]+)", positional, store._START_CLOCKS.text)
    types = dict(store._CLOCK_TYPES)
    await db.execute(
        text(f"PREPARE start_clocks ({', '.join(types[n] + '[]' for n in names)}) AS {sql}")
    )
    one = {
        "assignment_seq": "1",
        "owner": "'{}'::jsonb",
        "manager": "NULL::jsonb",
        "team_id": "'emea'::text",
        "tier": "'hot'::text",
        "window_seconds": "60",
        "status": "'open'::text",
        "next_level": "1",
        "chain": "'[]'::jsonb",
        "contacted_at": "NULL::timestamptz",
    }

    def call(n: int) -> str:
        ids = ",".join(str(uuid.uuid4()) for _ in range(n))
        args = [
            f"'{{{ids}}}'::uuid[]"
            if c == "lead_id"
            else f"array_fill({one.get(c, 'now()')}, ARRAY[{n}])"
            for c in names
        ]
        return f"EXECUTE start_clocks ({', '.join(args)})"

    try:
        for _ in range(6):
            await db.execute(text(call(5)))
        await db.execute(
            text(
                "INSERT INTO followup.activities (activity_id, lead_id, type, at, actor, state) "
                "SELECT CAST(:tag AS text) || g, gen_random_uuid(), 'contacted', now(), 'rep-a', "
                "'applied' FROM generate_series(1, 50000) g"
            ),
            {"tag": uuid.uuid4().hex},
        )
        plan = "\n".join(
            r[0] for r in await db.execute(text("EXPLAIN (ANALYZE, COSTS OFF) " + call(50)))
        )
    finally:
        await db.execute(text("DEALLOCATE start_clocks"))
    print(plan)
    assert "Seq Scan on activities" not in plan, plan
