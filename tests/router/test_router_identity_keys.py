"""Identity keys on the real PostgreSQL (issue #18): a `+tag` repeat and a phone-only touch
find the contact's open lead through the keys earlier touches gave (merge chaining), the
merged touch's facts reach that lead, and an erasure by one spelling erases the others."""

from __future__ import annotations

from typing import Any

import pytest

from services.router.erasure import erase_contact
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
