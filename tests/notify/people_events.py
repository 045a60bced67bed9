"""Events as the router and followup emit them, for people-planning and channel tests, with
owners from deploy/policy.example.yaml."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.notify.domain.people import PeopleLinks
from shared.events import (
    AccountRef,
    CloudEvent,
    Contact,
    Lead,
    LeadAssigned,
    LeadEscalated,
    LeadNurtured,
    LeadParked,
    Person,
    RepConsidered,
    RoutingReason,
    RuleScore,
    Sla,
    TeamRef,
    derived_id,
    make_event,
)
from shared.policy import Policy, load_policy
from tests.conftest import ROOT

NOW = datetime(2026, 12, 2, 13, 30, tzinfo=UTC)  # a Wednesday
LINKS = PeopleLinks(
    lead_url="http://127.0.0.1:8002/v1/admin/leads/{lead_id}",
    default_from="Baton <baton@example.com>",
)


def example_policy() -> Policy:
    return load_policy(ROOT / "deploy" / "policy.example.yaml")


def rep(policy: Policy, rep_id: str) -> Person:
    found = policy.rep(rep_id)
    assert found is not None
    return Person(id=found[1].id, name=found[1].name, email=found[1].email)


def manager_of(policy: Policy, rep_id: str) -> Person:
    found = policy.rep(rep_id)
    assert found is not None
    team, r = found
    email = team.manager_email_for(r)
    return Person(name=team.manager.name if email == team.manager.email else email, email=email)


def contact(**fields: Any) -> Contact:
    base: dict[str, Any] = {
        "email": "ada.lovelace@acme-industries.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "title": "VP Engineering",
        "company": "Acme Industries",
        "country": "DE",
        "phone": "+4930901820",
    }
    base.update(fields)
    return Contact(**base)


def assigned_event(
    policy: Policy,
    owner: str = "rep-anna",
    *,
    seq: int = 1,
    previous: str | None = None,
    source: str = "website-demo",
    lead: Contact | None = None,
    message: str | None = "We need 200 seats before Q1.",
    lead_id: str | None = None,
    earlier: list[str] | None = None,
) -> CloudEvent:
    lead_id = lead_id or str(uuid.uuid4())
    found = policy.rep(owner)
    assert found is not None
    team = found[0]
    data = LeadAssigned(
        lead_id=lead_id,
        assignment_seq=seq,
        assigned_at=NOW,
        owner=rep(policy, owner),
        manager=manager_of(policy, owner),
        team=TeamRef(id=team.id, name=team.name),
        score=85,
        tier="hot",
        stage="sql",
        breakdown=[
            RuleScore(
                rule_id="demo-request",
                category="intent",
                points=40,
                matched=True,
                reason="demo_request is true",
            ),
            RuleScore(
                rule_id="enterprise-size",
                category="fit",
                points=25,
                matched=True,
                reason="company_size ≥ 500",
            ),
            RuleScore(
                rule_id="senior-buyer",
                category="fit",
                points=15,
                matched=True,
                reason="seniority in c_level, vp, director",
            ),
            RuleScore(
                rule_id="core-market", category="fit", points=5, matched=True, reason="country"
            ),
            RuleScore(
                rule_id="pricing-page",
                category="intent",
                points=15,
                matched=False,
                reason="pricing_page is true",
            ),
        ],
        routing=RoutingReason(rule_id="enterprise", strategy="round_robin", reason="next in turn"),
        sla=Sla(
            tier="hot", window_seconds=300, clock="business", due_at=NOW + timedelta(minutes=5)
        ),
        lead=Lead(
            lead_id=lead_id,
            received_at=NOW,
            source=source,
            channel="form",
            contact=lead or contact(),
            message=message,
        ),
        account=AccountRef(domain="acme-industries.com", name="Acme Industries"),
        earlier_leads=earlier or [],
        previous_owner=rep(policy, previous) if previous else None,
        reason="sla_breach" if previous else None,
        policy_version=policy.version_id,
    )
    return make_event(
        type="lead.assigned",
        source="/baton/router",
        subject=lead_id,
        id=derived_id(lead_id, "assigned", seq),
        data=data,
    )


def escalated_event(
    policy: Policy,
    owner: str = "rep-anna",
    *,
    level: int = 1,
    action: str = "remind_owner",
    manager: Person | None = None,
    with_manager: bool = True,
) -> CloudEvent:
    lead_id = str(uuid.uuid4())
    found = policy.rep(owner)
    assert found is not None
    data = LeadEscalated(
        lead_id=lead_id,
        assignment_seq=1,
        level=level,
        action=action,
        owner=rep(policy, owner),
        manager=(manager or manager_of(policy, owner)) if with_manager else None,
        team_id=found[0].id,
        due_at=NOW,
        seconds_overdue=1000.0,
        escalated_at=NOW + timedelta(seconds=1000),
    )
    return make_event(
        type="lead.escalated",
        source="/baton/followup",
        subject=lead_id,
        id=derived_id(lead_id, "escalated", level),
        data=data,
    )


def parked_event(policy: Policy, team: str, name: str) -> CloudEvent:
    """lead.parked: nobody in `team` eligible (two at capacity, one out of office)."""
    touch = assigned_event(policy).payload().lead
    data = LeadParked(
        lead_id=touch.lead_id, parked_at=NOW, team=TeamRef(id=team, name=name), score=80,
        tier="hot", stage="sql",
        routing=RoutingReason(rule_id="enterprise", strategy="round_robin", reason="none"),
        reason="nobody eligible",
        considered=[
            RepConsidered(rep_id="rep-anna", eligible=False, reason="at capacity"),
            RepConsidered(rep_id="rep-james", eligible=False, reason="at capacity"),
            RepConsidered(rep_id="rep-olivia", eligible=False, reason="out of office"),
        ],
        wait_seconds=900, clock="business", lead=touch, policy_version="x",
    )  # fmt: skip
    return make_event(type="lead.parked", source="/baton/router", subject=touch.lead_id, data=data)


def nurtured_event(policy: Policy) -> CloudEvent:
    touch = assigned_event(policy).payload().lead
    data = LeadNurtured(
        lead_id=touch.lead_id, nurtured_at=NOW, score=20, tier="cold", stage="mql",
        breakdown=[],
        routing=RoutingReason(rule_id="nurture", strategy="nurture", reason="below 40"),
        reason="score 20 below the handoff threshold", reengage_at=NOW + timedelta(days=30),
        lead=touch, policy_version="x",
    )  # fmt: skip
    return make_event(
        type="lead.nurtured", source="/baton/router", subject=touch.lead_id, data=data
    )
