"""A fetched batch decided together (`on_received_many`) equals deciding it one lead at a time.

Two kits with their own reps (so their round-robin pointers and loads are independent) get the
same sequence of leads: one decides it as one batch in one transaction, the other one lead per
transaction. Outcomes, owners, merges, learned accounts and rep loads must be identical.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

import pytest

from services.router.service import RouterService
from shared.events import Lead, utcnow
from tests.router.conftest import RouterKit

pytestmark = pytest.mark.integration


def _line(tag: str) -> str:
    """Eight digits of the tag's hash: kits whose tags share a prefix get unrelated numbers."""
    return f"{int(hashlib.sha256(tag.encode()).hexdigest(), 16) % 10**8:08d}"


def _sequence(kit: RouterKit, seed: int, n: int) -> list[Lead]:
    """Mixed traffic: repeat contacts (merge), shared company domains (accounts), free-mail,
    phone-only contacts, students (disqualified), a listed account and exact redeliveries."""
    rng = random.Random(seed)
    leads: list[Lead] = []
    for i in range(n):
        roll = rng.random()
        if leads and roll < 0.1:
            leads.append(rng.choice(leads))  # the same lead again (a redelivery)
        elif leads and roll < 0.25:
            prior = rng.choice(leads)
            leads.append(kit.lead(email=prior.contact.email, phone=prior.contact.phone))
        elif roll < 0.45:
            leads.append(kit.lead(email=kit.email(f"p{i}", f"co{rng.randrange(5)}-{kit.tag}.com")))
        elif roll < 0.55:
            leads.append(kit.lead(email=kit.email(f"f{i}", "gmail.com"), kind="free"))
        elif roll < 0.62:
            # the kit's own 8 digits (15 in all, E.164's most): phones merge across the whole
            # session database, and `other` kits' tags differ only in their last four digits
            phone = f"+4930{_line(kit.tag)}{rng.randrange(1000):03d}"
            leads.append(kit.lead(email=None, phone=phone, kind=None))
        elif roll < 0.68:
            leads.append(kit.lead(title="Student"))
        elif roll < 0.72:
            leads.append(kit.lead(email=kit.email(f"l{i}", f"listed-{kit.tag}.com")))
        else:
            leads.append(kit.lead())
    return leads


def _plain(kit: RouterKit) -> Callable[[str | None], str | None]:
    return lambda value: value.replace(kit.tag, "T") if value else value


async def _summary(kit: RouterKit, leads: list[Lead]) -> list[tuple[object, ...]]:
    plain, index = _plain(kit), {lead.lead_id: i for i, lead in enumerate(leads)}
    rows = await kit.rows(
        "SELECT lead_id::text AS id, status, owner_id, merged_into::text AS into FROM router.leads "
        "WHERE lead_id = ANY(CAST(:ids AS uuid[]))",
        ids=list(index),
    )
    earlier: dict[int, list[int]] = {}
    accounts: dict[int, str | None] = {}
    for lead in leads:
        for event in await kit.events(lead.lead_id):
            if event["type"] == "lead.assigned":
                data = event["data"]
                earlier[index[lead.lead_id]] = [index[e] for e in data["earlier_leads"]]
                accounts[index[lead.lead_id]] = plain((data.get("account") or {}).get("owner_id"))
    return sorted(
        (
            index[r["id"]],
            r["status"],
            plain(r["owner_id"]),
            index.get(r["into"] or ""),
            earlier.get(index[r["id"]]),
            accounts.get(index[r["id"]]),
        )
        for r in rows
    )


async def _loads(kit: RouterKit) -> dict[str | None, int]:
    rows = await kit.rows(
        "SELECT rep_id, open_leads, rr_current_weight FROM router.rep_state WHERE rep_id LIKE :t",
        t=f"%-{kit.tag}",
    )
    plain = _plain(kit)
    return {plain(r["rep_id"]): (r["open_leads"], r["rr_current_weight"]) for r in rows}  # type: ignore[misc]


@pytest.mark.parametrize(
    ("seed", "chunk"),
    [(1, 50), (2, 50), (3, 50), (1, 7), (2, 1), (3, 1000)],
    ids=["1", "2", "3", "1-chunk7", "2-chunk1", "3-onewrite"],
)
async def test_a_batch_decides_exactly_as_one_at_a_time(
    kit: RouterKit, new_kit: Callable[[str], RouterKit], seed: int, chunk: int
) -> None:
    """Also with the run written in chunks of other sizes, each chunk's statement in flight
    while the next chunk is decided: 1 (every lead its own write), 7, and 1,000 (one write)."""
    other = new_kit(f"{kit.tag[:4]}{seed:04d}")
    try:
        together, alone = kit.service(), other.service()
        together.write_chunk = chunk
        batch = _sequence(kit, seed, 120)
        async with kit.sessions() as session, session.begin():
            outcomes = await together.on_received_many(session, leads=batch, now=utcnow())
        single = _sequence(other, seed, 120)
        one_by_one = [await other.receive(alone, lead) for lead in single]

        assert outcomes == one_by_one
        assert {"assigned", "merged", "duplicate", "disqualified"} <= set(outcomes)
        assert await _summary(kit, batch) == await _summary(other, single)
        assert await _loads(kit) == await _loads(other)
    finally:
        await other.engine.dispose()


async def test_a_lead_twice_in_one_batch_is_decided_once(kit: RouterKit) -> None:
    service: RouterService = kit.service()
    lead = kit.lead()
    async with kit.sessions() as session, session.begin():
        outcomes = await service.on_received_many(session, leads=[lead, lead], now=utcnow())
    assert outcomes == ["assigned", "duplicate"]
    assert len(await kit.assignments(lead.lead_id)) == 1
    assert [e["type"] for e in await kit.events(lead.lead_id)] == ["lead.assigned"]
