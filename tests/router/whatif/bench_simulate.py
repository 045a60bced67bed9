"""Measure `baton simulate` on 100,000 stored leads (not collected by pytest; run by hand):

    .venv/bin/python -m tests.router.whatif.bench_simulate [N]

Creates a scratch database, migrates it, stores N generated leads spread over 30 days (as the
router stores them: lead row + first assignment + decision), then times loading + replaying
them through the synthetic policy, the way the CLI does, and drops the database.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson

from ops.migrate import run_all
from services.router.whatif.run import run_simulation
from shared.db import read_only_session
from shared.settings import Settings
from tests.router.whatif.synthetic import generate, policy_data, to_policy


async def _admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _fill(dsn: str, n: int, tag: str) -> tuple[datetime, datetime]:
    end = datetime(2024, 7, 1, tzinfo=UTC)
    start = end - timedelta(days=30)
    leads = generate(n, tag=tag, seed=1, start=start, end=end)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "leads",
            schema_name="router",
            columns=["lead_id", "source", "received_at", "email", "status", "owner_id",
                     "team_id", "assignment_seq", "score", "policy_version", "lead", "closed_at"],
            records=[
                (uuid.UUID(s.lead_id), s.lead["source"], s.received_at,
                 s.lead["contact"]["email"], "assigned", f"desk-a-{tag}", "desk", 1, s.score,
                 "bench", orjson.dumps(s.lead).decode(), s.closed_at)
                for s in leads
            ],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "assignments",
            schema_name="router",
            columns=["lead_id", "seq", "owner_id", "team_id", "rule_id", "strategy", "reason",
                     "assigned_at", "due_at", "policy_version"],
            records=[
                (uuid.UUID(s.lead_id), 1, f"desk-a-{tag}", "desk", "default", "round_robin",
                 "round_robin in team desk picked it", s.received_at, s.received_at, "bench")
                for s in leads
            ],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "decisions",
            schema_name="router",
            columns=["lead_id", "kind", "policy_version", "at", "trace"],
            records=[
                (uuid.UUID(s.lead_id), "assigned", "bench", s.received_at,
                 orjson.dumps({"explanation": ["Score 0", "Rule default default rule"]}).decode())
                for s in leads
            ],
        )  # fmt: skip
    finally:
        await conn.close()
    return start, end


async def main(n: int) -> None:
    base = Settings()
    name = f"baton_bench_{uuid.uuid4().hex[:8]}"
    await _admin(base.asyncpg_dsn, f'CREATE DATABASE "{name}"')
    url = base.database_url.rsplit("/", 1)[0] + "/" + name
    dsn = base.asyncpg_dsn.rsplit("/", 1)[0] + "/" + name
    try:
        await asyncio.to_thread(run_all, url)
        tag = "bench"
        t0 = time.perf_counter()
        since, until = await _fill(dsn, n, tag)
        print(f"stored {n} leads in {time.perf_counter() - t0:.1f} s")
        policy = to_policy(policy_data(tag))
        t0 = time.perf_counter()
        async with read_only_session(url) as session:
            report = await run_simulation(session, policy=policy, since=since, until=until)
        elapsed = time.perf_counter() - t0
        print(
            f"simulated {report.leads} leads (load + replay + report) in {elapsed:.1f} s; "
            f"{len(report.owner_changes)} owner changes"
        )
    finally:
        await _admin(base.asyncpg_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
