"""Read-only views for the admin API: route preview, rep availability, a lead's history.

Never writes. The preview runs the same pure decision as a real lead, on the live policy and
the current rep state, so what sales ops see is what the router would do now, minus the side
effects.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.router import store
from services.router.domain.accounts import business_domain
from services.router.domain.assignment import eligible, state_of
from services.router.domain.decision import Assigned, Disqualified, Merged, Unassigned, decide
from services.router.domain.facts import flatten_lead
from services.router.service import RouterService
from shared.events import Lead


async def preview(
    service: RouterService, session: AsyncSession, *, lead: Lead, now: datetime
) -> dict[str, Any]:
    policy = service.policy
    domain = business_domain(lead)
    open_lead = await store.find_open_lead(
        session, email=lead.contact.email, phone=lead.contact.phone, now=now
    )
    account = await service.account_match(session, policy, domain)
    decision = decide(
        facts=flatten_lead(lead.model_dump(mode="json")),
        policy=policy,
        states=await store.rep_states(session),
        account_owner_id=account.owner_id if account else None,
        open_lead=open_lead,
        now=now,
    )
    out: dict[str, Any] = {"policy_version": policy.version_id, "explanation": []}
    if isinstance(decision, Merged):
        out.update(
            outcome="merged",
            into_lead_id=decision.into_lead_id,
            owner_id=decision.owner_id,
            explanation=list(decision.explanation),
        )
        return out
    q = decision.qualification
    out.update(
        score=q.score,
        tier=q.tier,
        stage=q.stage,
        explanation=list(decision.explanation),
        breakdown=[
            {
                "rule_id": r.rule_id,
                "category": r.category,
                "points": r.points,
                "matched": r.matched,
                "reason": r.reason,
            }
            for r in q.breakdown
        ],
    )
    if isinstance(decision, Disqualified):
        out.update(outcome="disqualified", rule_id=decision.rule_id, reason=decision.reason)
    elif isinstance(decision, Unassigned):
        out.update(outcome="unassigned", rule_id=decision.rule_id, reason=decision.reason)
    else:
        assert isinstance(decision, Assigned)
        out.update(
            outcome="assigned",
            owner_id=decision.owner_id,
            team_id=decision.choice.team_id,
            rule_id=decision.rule_id,
            strategy=decision.choice.strategy,
            reason=decision.choice.reason,
            sla={
                "tier": decision.tier,
                "window_seconds": decision.window_seconds,
                "clock": decision.clock,
                "due_at": decision.due_at.isoformat(),
            },
            considered=[c._asdict() for c in decision.choice.considered],
        )
    return out


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
