"""A lead submitted just before its contact was erased, whose `lead.received` reaches the router
only after the erasure, is erased on arrival: not routed, not stored with personal data, and
announced in `contact.erased` so intake erases its copy. Real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from services.router import store_erasure
from services.router.erasure import contact_digests, erase_contact
from shared.db import Outbox
from shared.events import utcnow

pytestmark = pytest.mark.integration


async def _erase(kit: Any, *, email: str | None = None, phone: str | None = None) -> str:
    async with kit.sessions() as session, session.begin():
        erasure_id, _ = await erase_contact(
            session,
            outbox=Outbox("router"),
            topic=kit.settings.topics.contacts_erased,
            email=email,
            phone=phone,
            now=utcnow(),
        )
    return str(erasure_id)


async def _erased_events(kit: Any, lead_id: str) -> list[dict[str, Any]]:
    """contact.erased events in the router's outbox that name this lead."""
    rows = await kit.rows(
        "SELECT payload FROM router.outbox WHERE topic = :t ORDER BY id",
        t=kit.settings.topics.contacts_erased,
    )
    events = [orjson.loads(bytes(r["payload"])) for r in rows]
    return [e for e in events if lead_id in e["data"]["lead_ids"]]


async def test_a_lead_received_before_the_erasure_is_erased_on_arrival(kit: Any) -> None:
    registry = CollectorRegistry()
    service = kit.service(registry=registry)
    earlier = kit.lead()
    email = earlier.contact.email
    assert await kit.receive(service, earlier) == "assigned"
    in_flight = kit.lead(email=email, received_at=utcnow())  # sent before the erasure below

    first_erasure = await _erase(kit, email=email.upper())  # normalised like the stored column

    assert await kit.receive(service, in_flight) == "erased"
    assert (
        await kit.rows(
            "SELECT 1 FROM router.leads WHERE lead_id = CAST(:l AS uuid)", l=in_flight.lead_id
        )
        == []
    )
    assert await kit.events(in_flight.lead_id) == []  # no lead.assigned / disqualified
    announced = await _erased_events(kit, in_flight.lead_id)
    assert len(announced) == 1
    assert announced[0]["data"]["lead_ids"] == [in_flight.lead_id]
    assert announced[0]["data"]["reason"] == "request"
    assert announced[0]["data"]["erasure_id"] != first_erasure
    logged = await kit.rows(
        "SELECT reason FROM router.erasures WHERE CAST(:l AS uuid) = ANY(lead_ids)",
        l=in_flight.lead_id,
    )
    assert [r["reason"] for r in logged] == ["request"]
    assert (
        registry.get_sample_value(
            "baton_routing_decisions_total", {"outcome": "erased", "team": "none", "tier": "none"}
        )
        == 1.0
    )
    # what the router keeps of the erased contact is a digest, never the address
    kept = await kit.rows(
        "SELECT digest FROM router.erased_contacts WHERE digest = ANY(:d)",
        d=contact_digests(email, None),
    )
    assert len(kept) == 1
    assert email not in str(kept[0]["digest"])


async def test_a_lead_received_after_the_erasure_is_a_new_submission(kit: Any) -> None:
    service = kit.service()
    email = kit.email()
    await _erase(kit, email=email)
    later = kit.lead(email=email, received_at=utcnow() + timedelta(seconds=1))
    assert await kit.receive(service, later) == "assigned"
    assert await _erased_events(kit, later.lead_id) == []


async def test_matching_on_the_phone_alone(kit: Any) -> None:
    service = kit.service()
    phone = "+4915112" + kit.tag[:6].translate(str.maketrans("abcdef", "123456"))
    in_flight = kit.lead(phone=phone, received_at=utcnow() - timedelta(seconds=5))
    await _erase(kit, phone=phone)
    assert await kit.receive(service, in_flight) == "erased"


async def test_in_a_batch_only_the_in_flight_lead_is_erased(kit: Any) -> None:
    service = kit.service()
    email = kit.email()
    before = utcnow() - timedelta(seconds=5)
    a, b = kit.lead(received_at=before), kit.lead(received_at=before)
    in_flight = kit.lead(email=email, received_at=before)
    await _erase(kit, email=email)
    async with kit.sessions() as session, session.begin():
        outcomes = await service.on_received_many(session, leads=[a, in_flight, b], now=utcnow())
    assert outcomes == ["assigned", "erased", "assigned"]
    assert [len(await kit.events(x.lead_id)) > 0 for x in (a, in_flight, b)] == [True, False, True]


async def test_a_second_erasure_moves_the_time_on_and_old_digests_are_forgotten(kit: Any) -> None:
    email = kit.email()
    digest = contact_digests(email, None)
    await _erase(kit, email=email)
    first = (await kit.rows("SELECT erased_at FROM router.erased_contacts WHERE digest = ANY(:d)",
                            d=digest))[0]["erased_at"]  # fmt: skip
    await _erase(kit, email=email)
    second = (await kit.rows("SELECT erased_at FROM router.erased_contacts WHERE digest = ANY(:d)",
                             d=digest))[0]["erased_at"]  # fmt: skip
    assert second > first
    async with kit.sessions() as session, session.begin():
        await store_erasure.forget_erased_contacts(session, before=second)
    assert len(await kit.rows("SELECT 1 FROM router.erased_contacts WHERE digest = ANY(:d)",
                              d=digest)) == 1  # fmt: skip
    async with kit.sessions() as session, session.begin():
        await store_erasure.forget_erased_contacts(
            session, before=second + timedelta(microseconds=1)
        )
    assert await kit.rows("SELECT 1 FROM router.erased_contacts WHERE digest = ANY(:d)",
                          d=digest) == []  # fmt: skip
