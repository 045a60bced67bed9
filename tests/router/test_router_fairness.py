"""Weighted round robin stays exact across two concurrent instances and a restart of both."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from services.router.service import RouterService
from shared.events import Lead
from tests.router.conftest import RouterKit

pytestmark = pytest.mark.integration
# Over 10,000 leads, and a multiple of 12 so each half is a whole number of weight cycles (1+2+3).
N_LEADS = 10_008


async def _route_everywhere(
    instances: list[tuple[RouterKit, RouterService]], leads: list[Lead]
) -> None:
    """Every lead is delivered to every instance at once (a redelivery after a rebalance)."""
    gates = [asyncio.Semaphore(4) for _ in instances]

    async def one(index: int, lead: Lead) -> str:
        k, service = instances[index]
        async with gates[index]:
            return await k.receive(service, lead)

    outcomes = await asyncio.gather(
        *(one(i, lead) for lead in leads for i in range(len(instances)))
    )
    assert Counter(outcomes) == {"assigned": len(leads), "duplicate": len(leads)}


async def _owners(kit: RouterKit) -> Counter[str]:
    rows = await kit.rows(
        "SELECT owner_id, count(*) AS n, count(DISTINCT lead_id) AS leads "
        "FROM router.assignments WHERE owner_id LIKE :p GROUP BY owner_id",
        p=f"%-{kit.tag}",
    )
    assert all(r["n"] == r["leads"] for r in rows), "a lead was assigned twice"
    return Counter({r["owner_id"]: int(r["n"]) for r in rows})


async def test_two_instances_share_one_fair_sequence_across_a_restart(
    kit: RouterKit, new_kit: Callable[[str], RouterKit]
) -> None:
    a, b, c = kit.rep("a"), kit.rep("b"), kit.rep("c")  # weights 1, 2, 3

    def roomy(data: dict[str, Any]) -> None:  # capacity is not what this test is about
        for team in data["teams"]:
            for rep in team["reps"]:
                rep["capacity"] = 100_000

    policy = kit.policy(roomy)
    total, half = N_LEADS, N_LEADS // 2
    leads = [kit.lead(email=kit.email(f"f{i}", f"fair{i}-{kit.tag}.com")) for i in range(total)]

    first = [new_kit(kit.tag), new_kit(kit.tag)]
    try:
        await _route_everywhere([(k, k.service(policy)) for k in first], leads[:half])
    finally:
        for k in first:
            await k.engine.dispose()
    assert await _owners(kit) == {a: half // 6, b: half // 3, c: half // 2}

    # "restart": new processes (engines, services, empty memory) continue the same sequence
    second = [new_kit(kit.tag), new_kit(kit.tag)]
    try:
        await _route_everywhere([(k, k.service(policy)) for k in second], leads[half:])
    finally:
        for k in second:
            await k.engine.dispose()
    assert await _owners(kit) == {a: total // 6, b: total // 3, c: total // 2}

    [count] = await kit.rows(
        "SELECT count(*) AS n, count(DISTINCT lead_id) AS leads FROM router.assignments "
        "WHERE owner_id LIKE :p",
        p=f"%-{kit.tag}",
    )
    assert (count["n"], count["leads"]) == (total, total)
    [events] = await kit.rows(
        "SELECT count(*) AS n FROM router.outbox WHERE key = ANY(:ids)",
        ids=[lead.lead_id for lead in leads],
    )
    assert events["n"] == total
    loads = {rep: await kit.open_leads(rep) for rep in (a, b, c)}
    assert loads == {a: total // 6, b: total // 3, c: total // 2}
