"""The router's service against the real PostgreSQL: redelivery, merge, accounts, outcomes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from shared.events import LeadAssigned, LeadDisqualified, LeadMerged, utcnow
from tests.router.conftest import RouterKit

pytestmark = pytest.mark.integration


async def test_redelivery_yields_one_assignment_and_one_event(kit: RouterKit) -> None:
    service, other = kit.service(), kit.service()
    lead = kit.lead()
    assert await kit.receive(service, lead) == "assigned"
    assert await kit.receive(service, lead) == "duplicate"
    # the same event reaching two instances at once: one decides, the other finds the lead
    lead2 = kit.lead()
    outcomes = await asyncio.gather(*(kit.receive(s, lead2) for s in (service, other, service)))
    assert sorted(outcomes) == ["assigned", "duplicate", "duplicate"]
    for one in (lead, lead2):
        assert len(await kit.assignments(one.lead_id)) == 1
        events = await kit.events(one.lead_id)
        assert [e["type"] for e in events] == ["lead.assigned"]
        decisions = await kit.rows(
            "SELECT kind FROM router.decisions WHERE lead_id = CAST(:l AS uuid)", l=one.lead_id
        )
        assert [d["kind"] for d in decisions] == ["assigned"]


async def test_same_email_while_open_merges_into_the_current_owner(kit: RouterKit) -> None:
    service = kit.service()
    first = kit.lead()
    assert await kit.receive(service, first) == "assigned"
    owner = (await kit.assignments(first.lead_id))[0]["owner_id"]
    again = kit.lead(email=first.contact.email, message="second touch")
    assert await kit.receive(service, again) == "merged"

    assert await kit.assignments(again.lead_id) == []
    [event] = await kit.events(again.lead_id)
    assert event["type"] == "lead.merged"
    merged = LeadMerged.model_validate(event["data"])
    assert merged.into_lead_id == first.lead_id
    assert merged.owner is not None and merged.owner.id == owner
    assert merged.touch.message == "second touch"
    assert await kit.open_leads(owner) == 1  # a merge adds no load


async def test_same_phone_while_open_merges(kit: RouterKit) -> None:
    service = kit.service()
    phone = f"+4930{int(kit.tag, 16) % 10**8:08d}"
    first = kit.lead(email=None, phone=phone, kind=None)
    assert await kit.receive(service, first) == "assigned"
    again = kit.lead(email=kit.email("other"), phone=phone)
    assert await kit.receive(service, again) == "merged"
    [event] = await kit.events(again.lead_id)
    assert event["data"]["into_lead_id"] == first.lead_id


async def test_closed_lead_does_not_absorb_a_new_one(kit: RouterKit) -> None:
    service = kit.service()
    first = kit.lead()
    assert await kit.receive(service, first) == "assigned"
    async with kit.sessions() as session, session.begin():
        await service.close(session, lead_id=first.lead_id, status="converted", at=utcnow())
    again = kit.lead(email=first.contact.email)
    assert await kit.receive(service, again) == "assigned"


async def test_twenty_contacts_from_one_company_get_one_owner(kit: RouterKit) -> None:
    """A business domain seen before is an account: its first owner gets every later contact."""
    service = kit.service()
    domain = f"newco-{kit.tag}.com"
    leads = [kit.lead(email=kit.email(f"p{i}", domain)) for i in range(20)]
    outcomes = await asyncio.gather(*(kit.receive(service, lead) for lead in leads))
    assert outcomes == ["assigned"] * 20
    owners = {(await kit.assignments(lead.lead_id))[0]["owner_id"] for lead in leads}
    assert len(owners) == 1
    [account] = await kit.rows("SELECT owner_id FROM router.accounts WHERE domain = :d", d=domain)
    assert {account["owner_id"]} == owners
    strategies = [
        (await kit.assignments(lead.lead_id))[0]["strategy"] for lead in leads
    ]  # the first is round robin, every later one the account owner
    assert sorted(strategies).count("account_owner") == 19


async def test_listed_account_goes_to_its_owner(kit: RouterKit) -> None:
    service = kit.service()
    lead = kit.lead(email=kit.email("buyer", f"eu.listed-{kit.tag}.com"))
    assert await kit.receive(service, lead) == "assigned"
    [row] = await kit.assignments(lead.lead_id)
    assert (row["owner_id"], row["strategy"], row["rule_id"]) == (
        kit.rep("c"),
        "account_owner",
        "accounts",
    )


async def test_free_mail_never_matches_an_account(kit: RouterKit) -> None:
    """gmail.com is listed as an account in the kit's policy, yet never routes as one."""
    service = kit.service()
    leads = [
        kit.lead(email=kit.email(f"private{i}", "gmail.com"), kind="free", domain="gmail.com")
        for i in range(3)
    ]
    for lead in leads:
        assert await kit.receive(service, lead) == "assigned"
    for lead in leads:
        [row] = await kit.assignments(lead.lead_id)
        assert row["strategy"] == "round_robin" and row["rule_id"] == "default"
        [event] = await kit.events(lead.lead_id)
        assert event["data"]["account"] is None
    owners = {(await kit.assignments(lead.lead_id))[0]["owner_id"] for lead in leads}
    assert len(owners) > 1  # three people, not one "gmail" account
    assert await kit.rows("SELECT 1 FROM router.accounts WHERE domain = 'gmail.com'") == []


async def test_disqualified_lead_is_announced_and_not_assigned(kit: RouterKit) -> None:
    service = kit.service()
    lead = kit.lead(email=kit.email("spy", f"rival-{kit.tag}.com"))
    assert await kit.receive(service, lead) == "disqualified"
    assert await kit.assignments(lead.lead_id) == []
    [event] = await kit.events(lead.lead_id)
    assert event["type"] == "lead.disqualified"
    data = LeadDisqualified.model_validate(event["data"])
    assert (data.rule_id, data.reason) == ("competitor", "competitor")
    assert data.policy_version == service.policy.version_id
    [status] = await kit.rows(
        "SELECT status FROM router.leads WHERE lead_id = CAST(:l AS uuid)", l=lead.lead_id
    )
    assert status["status"] == "disqualified"


async def test_no_eligible_rep_in_the_rule_team_uses_the_fallback_team(kit: RouterKit) -> None:
    service = kit.service()
    lead = kit.lead(utm={"utm_campaign": "closed"})
    assert await kit.receive(service, lead) == "assigned"
    [row] = await kit.assignments(lead.lead_id)
    assert (row["owner_id"], row["team_id"], row["rule_id"]) == (
        kit.rep("r"),
        "reserve",
        "closed-desk",
    )
    [event] = await kit.events(lead.lead_id)
    assert event["data"]["routing"]["fallback_used"] is True
    assert "no eligible rep in team closed" in event["data"]["routing"]["reason"]
    assert {"rep_id": kit.rep("z"), "eligible": False, "reason": "inactive"} in event["data"][
        "considered"
    ]


async def test_nobody_eligible_leaves_the_lead_unassigned_but_visible(kit: RouterKit) -> None:
    """`lead.parked` says so (tests/router/test_router_no_silent_lead.py checks its content);
    a decision row and metrics show it too."""

    def everyone_away(data: dict[str, Any]) -> None:
        for team in data["teams"]:
            for rep in team["reps"]:
                rep["active"] = False

    registry = CollectorRegistry()
    service = kit.service(kit.policy(everyone_away), registry)
    lead = kit.lead()
    assert await kit.receive(service, lead) == "unassigned"
    assert [e["type"] for e in await kit.events(lead.lead_id)] == ["lead.parked"]
    assert await kit.assignments(lead.lead_id) == []
    [decision] = await kit.rows(
        "SELECT kind, policy_version, trace FROM router.decisions WHERE lead_id = CAST(:l AS uuid)",
        l=lead.lead_id,
    )
    assert decision["kind"] == "unassigned"
    assert decision["policy_version"] == service.policy.version_id
    assert decision["trace"]["reason"].endswith("no eligible rep")
    assert {c["rep_id"] for c in decision["trace"]["considered"]} >= {kit.rep("a"), kit.rep("r")}
    labels = {"outcome": "unassigned", "team": "direct", "tier": "cold"}
    assert registry.get_sample_value("baton_routing_decisions_total", labels) == 1.0
    for team in ("direct", "closed", "reserve"):
        assert registry.get_sample_value("baton_team_eligible_reps", {"team": team}) == 0.0


async def test_assigned_event_carries_the_full_context(kit: RouterKit) -> None:
    """Everything a rep needs for a warm first contact, checked against the contract model."""
    from shared.events import Engagement

    service = kit.service()
    domain = f"listed-{kit.tag}.com"
    earlier = kit.lead(email=kit.email("first", domain))
    assert await kit.receive(service, earlier) == "assigned"
    lead = kit.lead(
        email=kit.email("second", domain),
        company_size=800,
        industry="software",
        message="we need this next quarter",
        answers={"budget": "50k"},
        utm={"utm_source": "google", "utm_campaign": "spring"},
        engagement=Engagement(
            demo_request=True,
            pricing_page=True,
            pages_viewed=["/pricing", "/security"],
            content_downloaded=["whitepaper.pdf"],
        ),
    )
    assert await kit.receive(service, lead) == "assigned"
    [event] = await kit.events(lead.lead_id)
    assert event["type"] == "lead.assigned" and event["subject"] == lead.lead_id
    data = LeadAssigned.model_validate(event["data"])
    c = kit.rep("c")
    assert data.assignment_seq == 1
    assert (data.owner.id, data.owner.name, data.owner.email) == (c, f"Rep {c}", f"{c}@example.com")
    assert data.manager is not None and data.manager.email == "eric@example.com"  # rep override
    assert (data.team.id, data.team.name) == ("direct", "Direct Sales")
    assert (data.score, data.tier, data.stage) == (75, "hot", "sql")
    assert {r.rule_id for r in data.breakdown if r.matched} == {
        "enterprise-size",
        "business-email",
        "demo",
    }
    assert data.framework == {"budget": "50k", "timeline": None}
    assert (data.routing.rule_id, data.routing.strategy) == ("accounts", "account_owner")
    assert data.routing.reason == f"account owner {c} of the matched account"
    assert [(t.rule_id, t.matched) for t in data.rules_tried] == [("accounts", True)]
    assert [(x.rep_id, x.eligible) for x in data.considered] == [(c, True)]
    assert any(line.startswith("Owner ") for line in data.explanation)
    assert (data.sla.tier, data.sla.window_seconds, data.sla.clock) == ("hot", 3600, "business")
    assert data.sla.due_at > data.assigned_at
    assert data.lead.contact.email == lead.contact.email
    assert data.lead.contact.company == "Analytical Engines"
    assert data.lead.engagement.pages_viewed == ["/pricing", "/security"]
    assert data.lead.engagement.content_downloaded == ["whitepaper.pdf"]
    assert data.lead.message == "we need this next quarter"
    assert data.account is not None
    assert (data.account.domain, data.account.name, data.account.owner_id) == (
        domain,
        "Listed Corp",
        c,
    )
    assert data.account.owner is not None and data.account.owner.email == f"{c}@example.com"
    assert data.earlier_leads == [earlier.lead_id]
    assert data.previous_owner is None and data.reason is None
    assert data.policy_version == service.policy.version_id
    # the explanation names rule ids and fields, never the contact's data
    assert lead.contact.email is not None
    assert lead.contact.email not in " ".join(data.explanation)
