"""The handoff between marketing and sales: a lead kept in nurture, a new touch that may cross
the threshold, and the re-engagement date that hands it to sales anyway.

Pure, like `domain.outcomes` whose helpers it builds on: each function appends to a `Writes`
the rows and events of one outcome and returns what it counts, plus (for a lead already
stored) the new values of its row, which the service writes with `store.update_routed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.router.domain import outcomes
from services.router.domain.accounts import AccountMatch
from services.router.domain.decision import Assigned, Disqualified, Merged, Nurtured, Unassigned
from services.router.domain.outcomes import Recorded, Recording
from shared.events import (
    Lead,
    LeadDisqualified,
    LeadNurtured,
    RoutingReason,
    RuleTried,
    derived_id,
)

REENGAGED = "reengaged"  # the reason on the `lead.assigned` of a re-engaged lead


def nurtured_id(lead_id: str, n: int = 1) -> str:
    """The `lead.nurtured` event id of the lead's n-th stay in nurture."""
    return derived_id(lead_id, "nurtured", n)


def handoff_reason(decision: Assigned) -> str:
    q = decision.qualification
    return (
        f"handoff: score {q.score} ({q.stage}) reached sales on a new touch "
        f"(rule {decision.rule_id})"
    )


def merge_touch(kept: dict[str, Any], touch: dict[str, Any]) -> dict[str, Any]:
    """The nurtured lead (JSON form) with what a new touch of the same contact adds: values the
    touch has win (they are newer), engagement flags add up, lists are joined; the lead keeps
    its id, arrival time, source and channel (where it came from first)."""
    out = dict(kept)
    for key in ("contact", "consent", "utm", "answers", "extra"):
        old, new = kept.get(key) or {}, touch.get(key) or {}
        out[key] = {**old, **{k: v for k, v in new.items() if v not in (None, "", [])}}
    if not (touch.get("consent") or {}).get("marketing_opt_in"):
        out["consent"] = kept.get("consent") or {}  # an unticked box does not withdraw consent
    old_eng, new_eng = kept.get("engagement") or {}, touch.get("engagement") or {}
    engagement = dict(old_eng)
    for key, value in new_eng.items():
        if isinstance(value, bool):
            engagement[key] = bool(old_eng.get(key)) or value
        elif isinstance(value, list):
            before = list(old_eng.get(key) or [])
            engagement[key] = before + [v for v in value if v not in before]
    out["engagement"] = engagement
    for key in ("message", "company_size", "industry"):
        if touch.get(key) not in (None, ""):
            out[key] = touch[key]
    return out


def _scored(decision: Assigned | Nurtured | Disqualified | Unassigned) -> dict[str, Any]:
    q = decision.qualification
    return {"score": q.score, "tier": q.tier, "stage": q.stage}


def _nurtured_event(
    rec: Recording, *, lead: Lead, decision: Nurtured, account: AccountMatch | None
) -> LeadNurtured:
    q = decision.qualification
    return LeadNurtured(
        lead_id=lead.lead_id,
        nurtured_at=rec.now,
        score=q.score,
        tier=q.tier,
        stage=q.stage,
        breakdown=outcomes.breakdown(q),
        framework=q.framework,
        routing=RoutingReason(
            rule_id=decision.rule_id, strategy=decision.choice.strategy, reason=decision.reason
        ),
        reason=decision.reason,
        explanation=list(decision.explanation),
        reengage_at=decision.reengage_at,
        lead=lead,
        account=outcomes.account_ref(rec.policy, account),
        policy_version=rec.policy.version_id,
        rules_tried=[
            RuleTried(rule_id=t.rule_id, matched=t.matched, reason=t.reason)
            for t in decision.rule_trace
        ],
    )


def _nurture_trace(rec: Recording, lead_id: str, decision: Nurtured, **extra: Any) -> None:
    q = decision.qualification
    rec.trace(
        lead_id,
        "nurtured",
        decision.explanation,
        rule_id=decision.rule_id,
        reason=decision.reason,
        reengage_at=decision.reengage_at.isoformat(),
        score=q.score,
        tier=q.tier,
        stage=q.stage,
        **extra,
    )


def nurtured(
    rec: Recording,
    *,
    lead: Lead,
    doc: dict[str, Any],
    decision: Nurtured,
    account: AccountMatch | None,
) -> Recorded:
    """A rule kept the lead with marketing: the lead row (status nurtured, no owner, open for
    the contact's next touches until its re-engagement plus the dedupe window), `lead.nurtured`
    (followup schedules the re-engagement from it) and the trace. No assignment, no SLA."""
    open_until = decision.reengage_at + timedelta(days=rec.policy.dedupe.open_lead_days)
    rec.writes.leads.append(
        outcomes.lead_row(rec, lead, doc, "nurtured", open_until=open_until, **_scored(decision))
    )
    data = _nurtured_event(rec, lead=lead, decision=decision, account=account)
    rec.emit("lead.nurtured", lead.lead_id, data, nurtured_id(lead.lead_id))
    _nurture_trace(rec, lead.lead_id, decision)
    return Recorded("nurtured", "none", decision.qualification.tier, scored=True)


@dataclass(frozen=True, slots=True)
class Touched:
    """What a touch on a nurtured lead did: the counted outcomes (the touch's merge, then the
    nurtured lead's) and the nurtured lead's new row values."""

    counted: tuple[Recorded, Recorded]
    row: dict[str, Any]  # `store.update_routed` arguments for the nurtured lead


def touch(
    rec: Recording,
    *,
    touch: Lead,
    touch_doc: dict[str, Any],
    kept: Lead,
    kept_doc: dict[str, Any],
    decision: Assigned | Nurtured | Disqualified | Unassigned,
    domain: str | None,
    account: AccountMatch | None,
    earlier: list[str],
    matched_on: str | None,
) -> Touched:
    """A new touch from a contact whose lead is nurtured: the touch is stored merged into it
    (`lead.merged`, no owner), and the nurtured lead, re-scored with both (``decision``), goes
    to sales if a rule now sends it to a team, is disqualified, parked, or stays nurtured.
    ``matched_on`` is the identity key that found the nurtured lead (`domain.matching`), told
    in `lead.merged` like any merge."""
    why = f"same contact's lead {kept.lead_id} is in nurture"
    why += f" (matched on {matched_on})" if matched_on else ""
    merge = Merged(kept.lead_id, None, why, matched_on)
    merged = outcomes.merged(rec, lead=touch, doc=touch_doc, decision=merge, open_team=None)
    row: dict[str, Any] = {"lead": kept_doc, "status": "nurtured", **_scored(decision)}
    if isinstance(decision, Nurtured):
        _nurture_trace(rec, kept.lead_id, decision, touch_lead_id=touch.lead_id)
        still = Recorded("nurture_touch", "none", decision.qualification.tier, scored=False)
        return Touched((merged, still), row)
    if isinstance(decision, Disqualified):
        recorded = outcomes.disqualified(rec, lead=kept, doc=kept_doc, decision=decision)
        rec.writes.leads.pop()  # the row exists: the caller updates it
        return Touched((merged, recorded), {**row, "status": "disqualified", "closed_at": rec.now})
    if isinstance(decision, Unassigned):
        recorded = outcomes.unassigned(rec, lead=kept, doc=kept_doc, decision=decision)
        rec.writes.leads.pop()
        return Touched((merged, recorded), {**row, "status": "unassigned"})
    if domain:
        rec.writes.accounts.append((domain, decision.owner_id, kept.lead_id))
    recorded = assign(
        rec, lead=kept, decision=decision, seq=1, account=account, earlier=earlier,
        previous=None, reason=handoff_reason(decision), kind="handoff",
    )  # fmt: skip
    return Touched((merged, recorded), {**row, **assigned_row(rec, decision, seq=1)})


def assigned_row(rec: Recording, decision: Assigned, *, seq: int) -> dict[str, Any]:
    """The row values of a stored lead that now has an owner (open for the dedupe window)."""
    return {
        "status": "assigned",
        "owner_id": decision.owner_id,
        "team_id": decision.choice.team_id or "",
        "assignment_seq": seq,
        "open_until": rec.now + timedelta(days=rec.policy.dedupe.open_lead_days),
        "closed_at": None,
        **_scored(decision),
    }


def assign(
    rec: Recording,
    *,
    lead: Lead,
    decision: Assigned,
    seq: int,
    account: AccountMatch | None,
    earlier: list[str],
    previous: str | None,
    reason: str,
    kind: str,
) -> Recorded:
    """`outcomes.assignment` under this outcome's own name (trace kind and counter); the lead
    was scored when it was first decided, so it is not counted as scored again."""
    recorded = outcomes.assignment(
        rec, lead=lead, decision=decision, seq=seq, account=account, earlier=earlier,
        previous=previous, reason=reason, kind=kind,
    )  # fmt: skip
    return Recorded(kind, recorded.team, recorded.tier, scored=False)


def reengage_disqualified(
    rec: Recording, *, lead: Lead, source: str, decision: Disqualified, at: datetime
) -> Recorded:
    """The current policy disqualifies a lead coming back from nurture: a `lead.disqualified`
    (its own id: the lead was not disqualified before) and a trace; the caller closes it."""
    q = decision.qualification
    data = LeadDisqualified(
        lead_id=lead.lead_id,
        rule_id=decision.rule_id,
        reason=decision.reason,
        score=q.score,
        breakdown=outcomes.breakdown(q),
        source=source,
        policy_version=rec.policy.version_id,
    )
    event_id = derived_id(lead.lead_id, "disqualified", REENGAGED)
    rec.emit("lead.disqualified", lead.lead_id, data, event_id)
    rec.trace(
        lead.lead_id, "reengage_disqualified", decision.explanation, rule_id=decision.rule_id,
        reason=decision.reason, score=q.score, tier=q.tier, at=at.isoformat(),
    )  # fmt: skip
    return Recorded("reengage_disqualified", "none", q.tier, scored=False)


def reengage_failed(
    rec: Recording, *, lead_id: str, decision: Unassigned, at: datetime
) -> Recorded:
    """Nobody can take a re-engaged lead: the trace says why (the caller parks it)."""
    reason = decision.reason
    rec.trace(lead_id, "reengage_failed", decision.explanation, reason=reason, at=at.isoformat())
    return Recorded("reengage_failed", "none", decision.qualification.tier, scored=False)
