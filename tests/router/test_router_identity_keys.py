"""Identity keys on the real PostgreSQL (issue #18): a `+tag` repeat and a phone-only touch
find the contact's open lead through the keys earlier touches gave (merge chaining), the
merged touch's facts reach that lead, and an erasure by one spelling erases the others."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.router import store
from services.router.erasure import erase_contact
from services.router.store_identity import CANDIDATE_LIMIT
from shared.db import Outbox
from shared.events import Contact, LeadMerged, utcnow
from tests.router.conftest import RouterKit

pytestmark = pytest.mark.integration


def _touch(kit: RouterKit, email: str | None, phone: str | None, **contact: Any) -> Any:
    lead = kit.lead(email=email, phone=phone)
    if contact:
        lead = lead.model_copy(
            update={"contact": Contact.model_validate({**lead.contact.model_dump(), **contact})}
        )
    return lead


async def _merged(kit: RouterKit, lead_id: str) -> LeadMerged:
    (event,) = [e for e in await kit.events(lead_id) if e["type"] == "lead.merged"]
    return LeadMerged.model_validate(event["data"])


async def test_a_tag_repeat_then_a_phone_only_touch_chain_into_the_first_lead(
    kit: RouterKit,
) -> None:
    service = kit.service()
    email = kit.email("ana")
    local, _, domain = email.partition("@")
    first = _touch(kit, email, "+4915112345601")
    assert await kit.receive(service, first) == "assigned"

    tagged = _touch(kit, f"{local}+news@{domain}", "+4915112345602", title="CTO")
    assert await kit.receive(service, tagged) == "merged"
    merged = await _merged(kit, tagged.lead_id)
    assert (merged.into_lead_id, merged.matched_on) == (first.lead_id, "email")

    # only the new phone the tagged touch gave: found through that touch's keys
    phone_only = _touch(
        kit, None, "+4915112345602", first_name="ADA", last_name="lovelace", title=None
    )
    assert await kit.receive(service, phone_only) == "merged"
    chained = await _merged(kit, phone_only.lead_id)
    assert (chained.into_lead_id, chained.matched_on) == (first.lead_id, "phone")

    (stored,) = await kit.rows(
        "SELECT lead FROM router.leads WHERE lead_id = CAST(:l AS uuid)", l=first.lead_id
    )
    assert stored["lead"]["contact"]["phone"] == "+4915112345602"  # the new facts reached it
    assert stored["lead"]["contact"]["title"] == "CTO"
    assert stored["lead"]["lead_id"] == first.lead_id


async def test_a_colleague_on_a_line_someone_else_gave_gets_a_lead_of_their_own(
    kit: RouterKit,
) -> None:
    service = kit.service()
    line = "+4930901820"
    assert await kit.receive(service, _touch(kit, kit.email("ana"), line)) == "assigned"
    colleague = _touch(kit, None, line, first_name="Ben", last_name="Silva")
    assert await kit.receive(service, colleague) == "assigned"


async def test_an_erasure_by_one_spelling_erases_the_tagged_ones(kit: RouterKit) -> None:
    service = kit.service()
    email = kit.email("eve")
    local, _, domain = email.partition("@")
    first = _touch(kit, f"{local}+q4@{domain}", None)
    assert await kit.receive(service, first) == "assigned"
    again = _touch(kit, email, None)
    assert await kit.receive(service, again) == "merged"

    async with kit.sessions() as session, session.begin():
        _, lead_ids = await erase_contact(
            session,
            outbox=Outbox("router"),
            topic=kit.settings.topics.contacts_erased,
            email=f"{local}+other@{domain}",
            phone=None,
            now=utcnow(),
        )
    assert sorted(lead_ids) == sorted([first.lead_id, again.lead_id])
    rows = await kit.rows(
        "SELECT count(*) AS n FROM router.contact_keys WHERE lead_id = ANY(CAST(:ids AS uuid[]))",
        ids=lead_ids,
    )
    assert rows[0]["n"] == 0  # the keys are personal data: gone with the leads


async def test_a_busy_shared_line_costs_a_decision_a_bounded_read(db: AsyncSession) -> None:
    """400 of 4,000 stored touches gave one switchboard number: the phone probe reads the newest
    `CANDIDATE_LIMIT` key rows off `contact_keys_recent`, not all 400 (hot path: one read)."""
    tag = uuid.uuid4().hex[:8]
    line, w = "+4930" + str(int(tag, 16) % 10**8).zfill(8), store.Writes()
    for i in range(4000):  # 400 on the line, the others with numbers of their own
        lead_id = str(uuid.uuid4())
        w.leads.append(
            {"lead_id": lead_id, "source": "web", "received_at": utcnow() - timedelta(seconds=i),
             "email": f"p{i}.{tag}@line.example", "phone": line if i < 400 else f"+1{i}{tag}",
             "company_domain": None,
             "status": "disqualified", "owner_id": None, "team_id": None, "assignment_seq": 0,
             "merged_into": None, "score": 0, "tier": "cold", "stage": "lead",
             "policy_version": "v", "lead": {"lead_id": lead_id}, "open_until": None}
        )  # fmt: skip
    await store.write(db, w)
    await db.execute(text("ANALYZE router.contact_keys, router.leads"))  # as autovacuum would
    params: dict[str, Any] = {
        "ids": [str(uuid.uuid4())], "emails": [None], "phones": [line], "domains": [None],
        "ekeys": [None], "now": utcnow(), "earlier": store.EARLIER_LIMIT,
    }  # fmt: skip
    plan: Any = (
        await db.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + str(store._INPUTS)), params)
    ).scalar()
    scans = [n for n in _nodes(plan[0]["Plan"]) if n.get("Relation Name") == "contact_keys"]
    assert scans
    assert max(n["Actual Rows"] * n["Actual Loops"] for n in scans) <= CANDIDATE_LIMIT
    leads = [n for n in _nodes(plan[0]["Plan"]) if n.get("Relation Name") == "leads"]
    assert max(n["Actual Rows"] * n["Actual Loops"] for n in leads) <= CANDIDATE_LIMIT
    (found,) = await store.decision_inputs(
        db, leads=[store.LeadKeys(params["ids"][0], None, line, None)], now=utcnow()
    )
    assert found.open_lead is None  # none open, and a line of 400 addresses merges nobody


def _nodes(node: dict[str, Any]) -> Any:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)
