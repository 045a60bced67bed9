"""A parked lead is announced, never silent: `lead.parked` names the team, its manager and why
each rep was skipped, with the tier's SLA window as the time it may wait (followup's waiting
clock escalates to the manager after it).

Pure. One park episode has one event id: the lead id and the assignment it was parked after
(0 for a lead parked on arrival, n after assignment n was rejected or its owner left), so a
recomputed decision (redelivery, a retry rolled back) republishes the same id.
"""

from __future__ import annotations

from datetime import datetime

from services.router.domain.decision import Unassigned
from shared.events import (
    Lead,
    LeadParked,
    Person,
    RepConsidered,
    RoutingReason,
    TeamRef,
    derived_id,
)
from shared.policy import Policy, Team


def parked_id(lead_id: str, seq: int) -> str:
    """The event id of the park episode that follows assignment ``seq`` (0: on arrival)."""
    return derived_id(lead_id, "parked", seq)


def reengage_parked_id(lead_id: str, seq: int) -> str:
    """The event id of the park episode of a re-engagement nobody could take (after assignment
    ``seq``: 0 for a nurtured lead); apart from `parked_id`, whose 0 a touch may have used."""
    return derived_id(lead_id, "parked", "reengaged", seq)


def parked_team(policy: Policy, decision: Unassigned) -> Team:
    """The team the lead was meant for: the matched rule's (the fallback team if it vanished)."""
    rule = next((r for r in policy.rules if r.id == decision.rule_id), None)
    return (policy.team(rule.team) if rule else None) or policy.fallback


def parked_event(
    policy: Policy, *, lead: Lead, decision: Unassigned, now: datetime, reason: str | None = None
) -> LeadParked:
    """`lead.parked` for ``decision``; ``reason`` says why it was routed again (a rejection)."""
    team = parked_team(policy, decision)
    q = decision.qualification
    tier_sla = policy.sla_for_tier(q.tier)
    choice = decision.choice
    return LeadParked(
        lead_id=lead.lead_id,
        parked_at=now,
        team=TeamRef(id=team.id, name=team.name),
        manager=Person(name=team.manager.name, email=team.manager.email),
        score=q.score,
        tier=q.tier,
        stage=q.stage,
        routing=RoutingReason(
            rule_id=decision.rule_id,
            strategy=choice.strategy,
            reason=choice.reason,
            fallback_used=choice.fallback_used,
        ),
        reason=f"{reason}: {decision.reason}" if reason else decision.reason,
        considered=[
            RepConsidered(rep_id=c.rep_id, eligible=c.eligible, reason=c.reason)
            for c in choice.considered
        ],
        wait_seconds=tier_sla.window_seconds,
        clock=tier_sla.clock,
        lead=lead,
        policy_version=policy.version_id,
    )
