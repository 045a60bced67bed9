"""Followup SIGKILLed while SLA clocks are due and firing, restarted a few seconds later.

The policy gives every lead a 5 s window and a two-level chain (remind the owner at the
deadline, notify the manager 2 s later), so every assigned lead must escalate exactly twice.
Followup is killed once a quarter of the first level has fired; while it is down more clocks
come due and more leads are assigned. After the restart every level must fire exactly once:
one distinct `lead.escalated` per (lead, level) on Kafka and one row in followup.escalations.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from shared.events import parse_event
from shared.settings import Settings
from tests.e2e.conftest import Stack
from tests.faults.conftest import (
    assert_clean,
    make_stack,
    no_sla_policy,
    reconcile,
    record,
    sql,
    start_all,
    stop_all,
    stream_leads,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

WINDOW, STEPS = 5, (0, 2)
LEVELS = {1, 2}


@pytest.fixture
def sla_stack(
    fault_settings: Settings, env_secrets: dict[str, str], tmp_path: Path
) -> Iterator[Stack]:
    policy = no_sla_policy(tmp_path, window=WINDOW, steps=STEPS)
    s = make_stack(
        fault_settings, env_secrets, tmp_path, policy=policy,
        extra_env={"TICKER_MAX_SLEEP_SECONDS": "0.5"},
    )  # fmt: skip
    try:
        yield s
    finally:
        stop_all(s)


class Escalations:
    """Every lead.escalated on the topic, from the beginning, collected in the background."""

    def __init__(self, settings: Settings) -> None:
        self.consumer = AIOKafkaConsumer(
            settings.topics.leads_escalated,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=f"escalations-{uuid.uuid4().hex[:8]}",
        )
        self.ids: dict[tuple[str, int], set[str]] = defaultdict(set)
        self.messages = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                for msg in msgs:
                    event = parse_event(msg.value)
                    if event.type != "lead.escalated":
                        continue
                    key = (event.subject, int(event.data["level"]))
                    self.ids[key].add(event.id)
                    self.messages += 1

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.consumer.stop()


async def test_followup_sigkilled_with_clocks_due(sla_stack: Stack) -> None:
    stack = sla_stack
    settings = stack.settings
    await start_all(stack)
    seen = Escalations(settings)
    await seen.start()
    try:
        first = await stream_leads(stack, 60, on_progress=lambda _: asyncio.sleep(0.02))
        ids = [uuid.UUID(x) for x in first.accepted]

        async def quarter_fired() -> bool:
            rows = await sql(
                settings, "SELECT count(*) FROM followup.escalations WHERE lead_id = ANY($1)", ids
            )
            return int(rows[0][0]) >= len(ids) // 4

        await wait_until(quarter_fired, timeout=60, what="a quarter of level 1 fired")
        stack.stop("followup", kill=True)
        killed = time.monotonic()
        fired_before = await sql(
            settings, "SELECT count(*) FROM followup.escalations WHERE lead_id = ANY($1)", ids
        )
        # while it is down: more clocks come due, and more leads are assigned to it
        second = await stream_leads(stack, 30, on_progress=lambda _: asyncio.sleep(0.02))
        await asyncio.sleep(max(0.0, 4 - (time.monotonic() - killed)))
        restarted, restarted_wall = time.monotonic(), time.time()
        await asyncio.to_thread(stack.start, "followup")
        print(
            f"killed after {fired_before[0][0]} of {2 * len(ids)} escalations of the first "
            f"batch had fired; down {restarted - killed:.1f}s"
        )

        accepted = first.accepted + second.accepted
        r = await reconcile(settings, accepted)
        assert_clean(r)
        assigned = [
            row[0]
            for row in await sql(
                settings,
                "SELECT DISTINCT lead_id::text FROM router.assignments WHERE lead_id = ANY($1)",
                [uuid.UUID(x) for x in accepted],
            )
        ]
        wanted = {(lead, level) for lead in assigned for level in LEVELS}

        async def all_fired() -> bool:
            return wanted <= seen.ids.keys()

        await wait_until(all_fired, timeout=90, what="every level of every lead on Kafka")
        complete = time.monotonic()
        await asyncio.sleep(3)  # a repeat would arrive now
    finally:
        await seen.stop()

    mine = {k: v for k, v in seen.ids.items() if k[0] in set(assigned)}
    repeated = sorted(k for k, v in mine.items() if len(v) > 1)
    rows = await sql(
        settings,
        "SELECT lead_id::text, level, count(*) FROM followup.escalations"
        " WHERE lead_id = ANY($1) GROUP BY lead_id, level",
        [uuid.UUID(x) for x in assigned],
    )
    in_db = {(row[0], int(row[1])): int(row[2]) for row in rows}
    lost = wanted - mine.keys()
    r.duplicated = repeated  # the row's "duplicated" column: an escalation level fired twice
    r.lost = sorted({lead for lead, _ in lost})
    # recovery: when the last level that came due while followup was down had fired
    overdue = await sql(
        settings,
        "SELECT count(*), max(extract(epoch FROM fired_at)) FROM followup.escalations"
        " WHERE lead_id = ANY($1) AND extract(epoch FROM fired_at) - seconds_late < $2"
        " AND extract(epoch FROM fired_at) > $2",
        [uuid.UUID(x) for x in assigned],
        restarted_wall,
    )
    n_overdue, last_overdue = int(overdue[0][0]), float(overdue[0][1] or restarted_wall)
    record(
        "Followup SIGKILLed with SLA clocks due and firing, restarted 4 s later"
        f" ({n_overdue} levels came due while it was down)",
        len(accepted),
        r,
        last_overdue - restarted_wall,
    )
    print(f"all levels on Kafka {complete - restarted:.1f}s after the restart")
    print(f"{len(wanted)} escalations expected, {seen.messages} lead.escalated messages read")
    assert not lost, f"{len(lost)} escalation levels never fired: {sorted(lost)[:5]}"
    assert not repeated, f"escalation levels fired twice: {repeated[:5]}"
    assert set(mine) == wanted, "no level beyond the chain, none for unassigned leads"
    assert in_db == dict.fromkeys(wanted, 1), "followup.escalations: one row per (lead, level)"
    statuses = await sql(
        settings,
        "SELECT status, count(*) FROM followup.clocks WHERE lead_id = ANY($1) GROUP BY status",
        [uuid.UUID(x) for x in assigned],
    )
    assert {row[0]: int(row[1]) for row in statuses} == {"exhausted": len(assigned)}
