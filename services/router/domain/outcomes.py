"""What a decision leaves behind: turning a decision into rows, events and a trace.

One function per outcome (merged, disqualified, unassigned, assigned, reassigned, reassign
failed), each appending to a `Writes` the lead row, assignment, learned account, rep-state
changes, outbox event and decision trace the router stores for it. Pure: nothing is read or
written here; the service writes the `Writes` in its transaction and counts the `Recorded`
each function returns in its metrics.

Everything written carries the version of the one policy object the caller decided with, so
a reload landing mid-decision never mixes two versions in one decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.router.domain import parking
from services.router.domain.accounts import AccountMatch
from services.router.domain.decision import (
    Assigned,
    Decision,
    Disqualified,
    Merged,
    Nurtured,
    Unassigned,
)
from services.router.domain.scoring import QualificationResult
from services.router.domain.writes import Writes
from shared.events import (
    AccountRef,
    Lead,
    LeadAssigned,
    LeadDisqualified,
    LeadMerged,
    Person,
    RepConsidered,
    RoutingReason,
    RuleScore,
    RuleTried,
    Sla,
    TeamRef,
    derived_id,
    make_event,
)
from shared.policy import Policy

EVENT_SOURCE = "/baton/router"


@dataclass(frozen=True, slots=True)
class Recorded:
    """What one recorded outcome counts in `baton_routing_decisions_total` (outcome, team,
    tier) and whether it counts in `baton_leads_scored_total` (team, tier) too."""

    outcome: str
    team: str
    tier: str
    scored: bool


@dataclass(frozen=True, slots=True)
class Recording:
    """Where one decision's rows go and what stamps them: the policy that decided (its
    version), the topic its events are published on, and the decision time."""

    writes: Writes
    policy: Policy
    topic: str
    now: datetime

    def emit(self, type_: str, lead_id: str, data: Any, event_id: str) -> None:
        event = make_event(
            type=type_, source=EVENT_SOURCE, subject=lead_id, data=data, id=event_id, time=self.now
        )
        self.writes.outbox.append((event.id, self.topic, lead_id, event.to_bytes()))

    def trace(self, lead_id: str, kind: str, lines: Any, **extra: Any) -> None:
        self.writes.decision(
            lead_id=lead_id,
            kind=kind,
            policy_version=self.policy.version_id,
            at=self.now,
            trace={"explanation": list(lines), **extra},
        )


def breakdown(q: QualificationResult) -> list[RuleScore]:
    return [
        RuleScore(
            rule_id=r.rule_id,
            category=r.category,
            points=r.points,
            matched=r.matched,
            reason=r.reason,
        )
        for r in q.breakdown
    ]


def person(policy: Policy, rep_id: str | None) -> Person | None:
    found = policy.rep(rep_id) if rep_id else None
    if found is None:
        return None
    rep = found[1]
    return Person(id=rep.id, name=rep.name, email=rep.email)


def account_ref(policy: Policy, account: AccountMatch | None) -> AccountRef | None:
    if account is None:
        return None
    return AccountRef(
        domain=account.domain,
        name=account.name,
        owner_id=account.owner_id,
        owner=person(policy, account.owner_id),
    )


def lead_row(
    rec: Recording, lead: Lead, doc: dict[str, Any], status: str, **fields: Any
) -> dict[str, Any]:
    """The `router.leads` row of a received lead (``doc`` is the lead dumped once, as JSON)."""
    row = {
        "lead_id": lead.lead_id,
        "source": lead.source,
        "received_at": lead.received_at,
        "email": lead.contact.email,
        "phone": lead.contact.phone,
        "company_domain": lead.contact.company_domain,
        "policy_version": rec.policy.version_id,
        "lead": doc,
        "owner_id": None,
        "team_id": None,
        "assignment_seq": 0,
        "merged_into": None,
        "score": None,
        "tier": None,
        "stage": None,
        "open_until": None,
        "status": status,
    }
    row.update(fields)
    return row


def _scored(q: QualificationResult) -> dict[str, Any]:
    return {"score": q.score, "tier": q.tier, "stage": q.stage}


def merged(
    rec: Recording, *, lead: Lead, doc: dict[str, Any], decision: Merged, open_team: str | None
) -> Recorded:
    """The same contact has a lead still open: this one is stored merged into it, and
    `lead.merged` tells its owner about the new touch."""
    into, owner = decision.into_lead_id, decision.owner_id
    rec.writes.leads.append(lead_row(rec, lead, doc, "merged", merged_into=into, owner_id=owner))
    data = LeadMerged(
        lead_id=lead.lead_id,
        into_lead_id=into,
        owner=person(rec.policy, owner),
        touch=lead,
        policy_version=rec.policy.version_id,
        matched_on=decision.matched_on,
    )
    rec.emit("lead.merged", lead.lead_id, data, derived_id(lead.lead_id, "merged"))
    rec.trace(
        lead.lead_id, "merged", decision.explanation, into_lead_id=into, owner_id=owner,
        matched_on=decision.matched_on,
    )  # fmt: skip
    return Recorded("merged", open_team or "none", "none", scored=False)


def disqualified(
    rec: Recording, *, lead: Lead, doc: dict[str, Any], decision: Disqualified
) -> Recorded:
    q = decision.qualification
    rec.writes.leads.append(lead_row(rec, lead, doc, "disqualified", **_scored(q)))
    data = LeadDisqualified(
        lead_id=lead.lead_id,
        rule_id=decision.rule_id,
        reason=decision.reason,
        score=q.score,
        breakdown=breakdown(q),
        source=lead.source,
        policy_version=rec.policy.version_id,
    )
    event_id = derived_id(lead.lead_id, "disqualified")
    rec.emit("lead.disqualified", lead.lead_id, data, event_id)
    rec.trace(
        lead.lead_id,
        "disqualified",
        decision.explanation,
        rule_id=decision.rule_id,
        reason=decision.reason,
        score=q.score,
        tier=q.tier,
    )
    return Recorded("disqualified", "none", q.tier, scored=True)


def unassigned(
    rec: Recording, *, lead: Lead, doc: dict[str, Any], decision: Unassigned
) -> Recorded:
    """No rep is eligible anywhere: the lead is parked and `lead.parked` says so (team,
    manager, each rep skipped and why, the tier's window it may wait); it is also visible as
    its decision row, the unassigned counter and the eligible-reps gauge at 0, and it is
    routed when someone can take it."""
    q = decision.qualification
    rec.writes.leads.append(lead_row(rec, lead, doc, "unassigned", **_scored(q)))
    parked = parking.parked_event(rec.policy, lead=lead, decision=decision, now=rec.now)
    rec.emit("lead.parked", lead.lead_id, parked, parking.parked_id(lead.lead_id, 0))
    rec.trace(
        lead.lead_id,
        "unassigned",
        decision.explanation,
        rule_id=decision.rule_id,
        reason=decision.reason,
        considered=[c._asdict() for c in decision.choice.considered],
        score=q.score,
        tier=q.tier,
    )
    team = next((r.team for r in rec.policy.rules if r.id == decision.rule_id), None)
    return Recorded("unassigned", team or "none", q.tier, scored=True)


def assigned(
    rec: Recording,
    *,
    lead: Lead,
    doc: dict[str, Any],
    decision: Assigned,
    domain: str | None,
    account: AccountMatch | None,
    earlier: list[str],
) -> Recorded:
    """A first assignment: the lead row (open for merges for the policy's dedupe window),
    the business domain's account learned if it has none yet, and the assignment."""
    owner_id, team_id = decision.owner_id, decision.choice.team_id or ""
    open_until = rec.now + timedelta(days=rec.policy.dedupe.open_lead_days)
    rec.writes.leads.append(
        lead_row(
            rec,
            lead,
            doc,
            "assigned",
            owner_id=owner_id,
            team_id=team_id,
            assignment_seq=1,
            open_until=open_until,
            **_scored(decision.qualification),
        )
    )
    if domain:
        rec.writes.accounts.append((domain, owner_id, lead.lead_id))
    return assignment(
        rec,
        lead=lead,
        decision=decision,
        seq=1,
        account=account,
        earlier=earlier,
        previous=None,
        reason=None,
    )


def received(
    rec: Recording,
    *,
    lead: Lead,
    doc: dict[str, Any],
    decision: Decision,
    domain: str | None,
    account: AccountMatch | None,
    open_team: str | None,
    earlier: list[str],
) -> Recorded:
    """The rows of a received lead's decision, whichever it is."""
    if isinstance(decision, Merged):
        return merged(rec, lead=lead, doc=doc, decision=decision, open_team=open_team)
    if isinstance(decision, Disqualified):
        return disqualified(rec, lead=lead, doc=doc, decision=decision)
    if isinstance(decision, Unassigned):
        return unassigned(rec, lead=lead, doc=doc, decision=decision)
    if isinstance(decision, Nurtured):
        from services.router.domain import handoff  # it builds on this module's helpers

        return handoff.nurtured(rec, lead=lead, doc=doc, decision=decision, account=account)
    return assigned(
        rec,
        lead=lead,
        doc=doc,
        decision=decision,
        domain=domain,
        account=account,
        earlier=earlier,
    )


def _assigned_event(
    rec: Recording,
    *,
    lead: Lead,
    decision: Assigned,
    seq: int,
    account: AccountMatch | None,
    earlier: list[str],
    previous: str | None,
    reason: str | None,
) -> LeadAssigned:
    """`lead.assigned`: everything the owner, their manager and followup need to act on it."""
    policy = rec.policy
    team = policy.team(decision.choice.team_id or "")
    found = policy.rep(decision.owner_id)
    assert team is not None and found is not None
    rep = found[1]
    manager_email = team.manager_email_for(rep)
    q = decision.qualification
    return LeadAssigned(
        lead_id=lead.lead_id,
        assignment_seq=seq,
        assigned_at=rec.now,
        owner=Person(id=rep.id, name=rep.name, email=rep.email),
        manager=Person(
            name=team.manager.name if manager_email == team.manager.email else manager_email,
            email=manager_email,
        ),
        team=TeamRef(id=team.id, name=team.name),
        score=q.score,
        tier=q.tier,
        stage=q.stage,
        breakdown=breakdown(q),
        framework=q.framework,
        routing=RoutingReason(
            rule_id=decision.rule_id,
            strategy=decision.choice.strategy,
            reason=decision.choice.reason,
            fallback_used=decision.choice.fallback_used,
        ),
        explanation=list(decision.explanation),
        sla=Sla(
            tier=decision.tier,
            window_seconds=decision.window_seconds,
            clock=decision.clock,
            due_at=decision.due_at,
        ),
        lead=lead,
        account=account_ref(policy, account),
        earlier_leads=earlier,
        previous_owner=person(policy, previous),
        reason=reason,
        policy_version=policy.version_id,
        rules_tried=[
            RuleTried(rule_id=t.rule_id, matched=t.matched, reason=t.reason)
            for t in decision.rule_trace
        ],
        considered=[
            RepConsidered(rep_id=c.rep_id, eligible=c.eligible, reason=c.reason)
            for c in decision.choice.considered
        ],
    )


def assignment(
    rec: Recording,
    *,
    lead: Lead,
    decision: Assigned,
    seq: int,
    account: AccountMatch | None,
    earlier: list[str],
    previous: str | None,
    reason: str | None,
    kind: str | None = None,
) -> Recorded:
    """Assignment number ``seq`` (1: first, more: a reassignment away from ``previous``):
    the assignment row, the owner's open lead and round-robin weights, `lead.assigned` and
    the trace. The lead row itself is the caller's (inserted, or updated on reassignment).
    ``kind`` names the trace and the counted outcome when it is neither (a handoff)."""
    owner_id, team_id = decision.owner_id, decision.choice.team_id or ""
    choice = decision.choice
    rec.writes.assignments.append(
        dict(
            lead_id=lead.lead_id,
            seq=seq,
            owner_id=owner_id,
            team_id=team_id,
            rule_id=decision.rule_id,
            strategy=choice.strategy,
            reason=choice.reason,
            previous_owner_id=previous,
            assigned_at=rec.now,
            due_at=decision.due_at,
            policy_version=rec.policy.version_id,
        )
    )
    rec.writes.add_open(owner_id, 1)
    rec.writes.set_weights(choice.rr_weights)
    data = _assigned_event(
        rec,
        lead=lead,
        decision=decision,
        seq=seq,
        account=account,
        earlier=earlier,
        previous=previous,
        reason=reason,
    )
    rec.emit("lead.assigned", lead.lead_id, data, derived_id(lead.lead_id, "assigned", seq))
    kind = kind or ("assigned" if seq == 1 else "reassigned")
    q = decision.qualification
    rec.trace(
        lead.lead_id,
        kind,
        decision.explanation,
        owner_id=owner_id,
        team_id=team_id,
        seq=seq,
        rule_id=decision.rule_id,
        strategy=choice.strategy,
        previous_owner_id=previous,
        reason=reason,
        score=q.score,
        tier=q.tier,
        due_at=decision.due_at.isoformat(),
        considered=[c.model_dump() for c in data.considered],
    )
    # A reassigned lead was scored when it first arrived.
    return Recorded(kind, team_id, q.tier, scored=seq == 1)


def reassign_failed(
    rec: Recording,
    *,
    lead_id: str,
    decision: Decision,
    reason: str,
    owner_id: str,
    team_id: str | None,
    seq: int,
) -> Recorded:
    """No one else can take the lead: it stays with its owner, and the trace says why."""
    rec.trace(
        lead_id,
        "reassign_failed",
        decision.explanation,
        reason=reason,
        owner_id=owner_id,
        seq=seq,
    )
    return Recorded("reassign_failed", team_id or "none", "none", scored=False)
