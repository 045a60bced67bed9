"""A learned account whose owner left the policy is decided again (issue #18) on the real
PostgreSQL: the next lead of the domain gets an owner by the rules, the account moves to
that owner (it kept the departed rep forever before: insert-once), the event says why, and
the domain's later leads go to the new account owner."""

from __future__ import annotations

import pytest

from services.router import store
from shared.events import LeadAssigned
from tests.router.conftest import RouterKit

pytestmark = pytest.mark.integration


async def test_an_account_whose_owner_left_moves_to_the_owner_decided_now(kit: RouterKit) -> None:
    service = kit.service()
    domain = f"moved-{kit.tag}.com"
    first = kit.lead(domain=domain, email=kit.email(domain=domain))
    gone = f"gone-{kit.tag}"  # a rep the live policy no longer has
    async with kit.sessions() as session, session.begin():
        w = store.Writes()
        w.accounts.append((domain, gone, first.lead_id))
        await store.write(session, w)

    lead = kit.lead(email=kit.email(domain=domain))
    assert await kit.receive(service, lead) == "assigned"
    (event,) = [e for e in await kit.events(lead.lead_id) if e["type"] == "lead.assigned"]
    assigned = LeadAssigned.model_validate(event["data"])
    owner = assigned.owner.id
    assert any(f"learned owner {gone} is no longer in the policy" in line
               and line.endswith(f"moves to {owner}") for line in assigned.explanation)  # fmt: skip
    rows = await kit.rows("SELECT owner_id FROM router.accounts WHERE domain = :d", d=domain)
    assert [r["owner_id"] for r in rows] == [owner]

    later = kit.lead(email=kit.email(domain=domain))
    assert await kit.receive(service, later) == "assigned"
    (event,) = [e for e in await kit.events(later.lead_id) if e["type"] == "lead.assigned"]
    again = LeadAssigned.model_validate(event["data"])
    assert again.owner.id == owner and again.routing.rule_id == "accounts"
    assert not any("no longer in the policy" in line for line in again.explanation)
