"""Read-only views for the admin API: route preview, rep availability, a lead's history.

Never writes. The preview runs the same pure decision as a real lead, on the live policy and
the current rep state, so what sales ops see is what the router would do now, minus the side
effects. It first derives the contact's facts exactly as intake does (`shared.lead_facts`):
a preview given what a form sent scores the same seniority band, e-mail kind and company
domain, and matches the same account, as the lead intake would publish.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.router import store
from services.router.batching import keys_of
from services.router.domain import outcomes
from services.router.domain.accounts import AccountMatch, business_domain
from services.router.domain.assignment import eligible, state_of
from services.router.domain.decision import (
    Decision,
    Disqualified,
    Merged,
    Nurtured,
    Unassigned,
    decide,
)
from services.router.domain.facts import flatten_lead
from services.router.service import RouterService
from shared.errors import DomainError
from shared.events import Contact, Lead
from shared.lead_facts import MAX_EMAIL, clean_text, derive_contact


class NoUsableContact(DomainError):
    status = 422
    type_slug = "no-usable-contact"
    title = "No usable contact"


def _sent(value: str | None, max_len: int = 500) -> str | None:
    """As intake reads a sent value: absent or blank is None, anything else is text."""
    if value is None or not value.strip():
        return None
    return clean_text(value, max_len) or ""


def derive_facts(lead: Lead, *, website: str | None) -> tuple[Lead, list[dict[str, str]]]:
    """The lead with its contact normalised and its facts derived as intake does it, and a
    warning per value intake would drop. Facts given in the request (seniority, email_kind)
    are derived afresh: intake never takes them from a sender either."""
    c = lead.contact
    derived = derive_contact(
        email=clean_text(c.email, MAX_EMAIL),
        phone=_sent(c.phone, 64),
        country=_sent(c.country),
        first_name=clean_text(c.first_name),
        last_name=clean_text(c.last_name),
        title=clean_text(c.title, 200),
        company=clean_text(c.company, 200),
        website=clean_text(website),
        stated_domain=clean_text(c.company_domain),
    )
    warnings = [{"name": f"contact.{n}", "message": m} for n, m in derived.warnings]
    if not derived.usable:
        invalid = {n for n, _ in derived.warnings}
        raise NoUsableContact(
            "the lead has neither a valid e-mail address nor a valid phone number",
            fields=[
                {
                    "name": f"contact.{n}",
                    "message": f"{n} is {'invalid' if n in invalid else 'missing'}",
                }
                for n in ("email", "phone")
            ],
        )
    contact = Contact(**dataclasses.asdict(derived.contact))
    return lead.model_copy(update={"contact": contact}), warnings


def _facts(lead: Lead, account: AccountMatch | None) -> dict[str, Any]:
    c = lead.contact
    return {
        "facts": {
            "seniority": c.seniority,
            "email_kind": c.email_kind,
            "company_domain": c.company_domain,
            "country": c.country,
        },
        "account": None
        if account is None
        else {
            "domain": account.domain,
            "name": account.name,
            "owner_id": account.owner_id,
            "source": account.source,
        },
    }


async def preview(
    service: RouterService,
    session: AsyncSession,
    *,
    lead: Lead,
    now: datetime,
    website: str | None = None,
) -> dict[str, Any]:
    """Score and route `lead` as the router would now, without effects. The contact is
    derived first (`derive_facts`), so the preview of what a form sent and the decision on
    the lead intake publishes from it agree."""
    policy = service.policy
    lead, warnings = derive_facts(lead, website=website)
    domain = business_domain(lead)
    # The decision's own read: the open lead by the identity keys (assigned, nurtured or
    # parked, domain.matching), so the preview merges exactly where the decision would.
    [inputs] = await store.decision_inputs(session, leads=[keys_of(lead)], now=now)
    account = await service.account_match(session, policy, domain)
    decision = decide(
        facts=flatten_lead(lead.model_dump(mode="json")),
        policy=policy,
        states=inputs.states,
        account_owner_id=account.owner_id if account else None,
        open_lead=inputs.open_lead,
        now=now,
        matched_on=inputs.matched_on,
    )
    return {
        "policy_version": policy.version_id,
        "explanation": list(decision.explanation),
        **_facts(lead, account),
        "warnings": warnings,
        **_outcome(decision),
    }


def _outcome(decision: Decision) -> dict[str, Any]:
    """The preview's account of one decision: what the real one would record and emit."""
    if isinstance(decision, Merged):
        return {
            "outcome": "merged",
            "into_lead_id": decision.into_lead_id,
            "owner_id": decision.owner_id,
        }
    q = decision.qualification
    out: dict[str, Any] = {
        "score": q.score,
        "tier": q.tier,
        "stage": q.stage,
        "breakdown": [r.model_dump() for r in outcomes.breakdown(q)],
        "rule_id": decision.rule_id,
    }
    if isinstance(decision, Disqualified):
        return {**out, "outcome": "disqualified", "reason": decision.reason}
    if isinstance(decision, Unassigned):
        return {**out, "outcome": "unassigned", "reason": decision.reason}
    if isinstance(decision, Nurtured):
        return {
            **out,
            "outcome": "nurtured",
            "reason": decision.reason,
            "reengage_at": decision.reengage_at.isoformat(),
        }
    return {
        **out,
        "outcome": "assigned",
        "owner_id": decision.owner_id,
        "team_id": decision.choice.team_id,
        "strategy": decision.choice.strategy,
        "reason": decision.choice.reason,
        "sla": {
            "tier": decision.tier,
            "window_seconds": decision.window_seconds,
            "clock": decision.clock,
            "due_at": decision.due_at.isoformat(),
        },
        "considered": [c._asdict() for c in decision.choice.considered],
    }


async def reps(
    service: RouterService, session: AsyncSession, *, now: datetime
) -> list[dict[str, Any]]:
    """Each rep's availability now: active, out of office, load against capacity, on duty."""
    states = await store.rep_states(session)
    out = []
    for team in service.policy.teams:
        for rep in team.reps:
            state = state_of(rep.id, states)
            ok, reason = eligible(rep, state, now, require_working_hours=False)
            out.append(
                {
                    "id": rep.id,
                    "name": rep.name,
                    "team_id": team.id,
                    "active": rep.active,
                    "out_of_office": rep.is_out_of_office(now),
                    "out_of_office_periods": [
                        {"from": a.from_.isoformat(), "until": a.until.isoformat()}
                        for a in rep.out_of_office
                    ],
                    "capacity": rep.capacity,
                    "open_leads": state.open_leads,
                    "weight": rep.weight,
                    "timezone": rep.timezone,
                    "on_duty": rep.schedule().is_working_time(now),
                    "eligible": ok,
                    "reason": reason,
                }
            )
    return out


async def lead_history(
    session: AsyncSession, lead_id: str, *, detail: bool
) -> dict[str, Any] | None:
    """The lead's routing state and decisions; with `detail`, also the lead and assignments."""
    row = await store.get_lead(session, lead_id)
    if row is None:
        return None
    out: dict[str, Any] = {
        "lead_id": row.lead_id,
        "status": row.status,
        "owner_id": row.owner_id,
        "team_id": row.team_id,
        "assignment_seq": row.assignment_seq,
    }
    if detail:
        out["closed_at"] = row.closed_at
        out["lead"] = row.lead
        out["assignments"] = await store.assignments_for(session, lead_id)
    out["decisions"] = await store.decisions_for(session, lead_id)
    return out
