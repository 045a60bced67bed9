"""The router's whole decision for one lead: merge, disqualify, assign or leave unassigned.

Precedence is fixed: a contact with a lead still open is merged into it (no second owner),
then disqualification, then the routing rules. The explanation lines go into events and may
reach logs, so they name fields, rule ids and rep ids only, never the contact's data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.router.domain.accounts import NO_ACCOUNT_EMAIL_KINDS
from services.router.domain.assignment import Choice, RepState, choose_owner
from services.router.domain.facts import LeadFacts
from services.router.domain.rules import RuleTry, match_rule
from services.router.domain.scoring import QualificationResult, score
from services.router.domain.sla import due_at
from shared.policy import Policy

ACCOUNT_OWNER_FACT = "account_owner"  # derived fact: the matched account's owner (rep id)


class OpenLeadRef(Protocol):
    """The same contact's lead that is still open (what the store finds by email/phone)."""

    @property
    def lead_id(self) -> str: ...
    @property
    def owner_id(self) -> str | None: ...
    @property
    def team_id(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class OpenLead:
    lead_id: str
    owner_id: str | None
    team_id: str | None


@dataclass(frozen=True, slots=True)
class Merged:
    into_lead_id: str
    owner_id: str | None
    reason: str

    @property
    def explanation(self) -> tuple[str, ...]:
        return (f"Merged into {self.into_lead_id}: {self.reason}",)


@dataclass(frozen=True, slots=True)
class Disqualified:
    rule_id: str
    reason: str
    qualification: QualificationResult
    explanation: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Assigned:
    qualification: QualificationResult
    rule_id: str
    strategy: str
    choice: Choice
    tier: str
    window_seconds: int
    due_at: datetime
    clock: str
    rule_trace: tuple[RuleTry, ...]
    explanation: tuple[str, ...]

    @property
    def owner_id(self) -> str:
        assert self.choice.rep_id is not None  # an Assigned always has an owner
        return self.choice.rep_id


@dataclass(frozen=True, slots=True)
class Unassigned:
    qualification: QualificationResult
    reason: str
    rule_id: str
    choice: Choice
    rule_trace: tuple[RuleTry, ...]
    explanation: tuple[str, ...]


Decision = Merged | Disqualified | Assigned | Unassigned


def decide(
    *,
    facts: LeadFacts,
    policy: Policy,
    states: Mapping[str, RepState],
    account_owner_id: str | None,
    open_lead: OpenLeadRef | None,
    now: datetime,
    exclude: frozenset[str] = frozenset(),
) -> Decision:
    """Decide what happens to a lead; pure, so redelivery recomputes the same decision.

    ``exclude`` lists reps that must not get the lead (the previous owner on reassignment).
    """
    if open_lead is not None:
        return Merged(
            into_lead_id=open_lead.lead_id,
            owner_id=open_lead.owner_id,
            reason=f"same contact has open lead {open_lead.lead_id}",
        )
    if facts.get("email_kind") in NO_ACCOUNT_EMAIL_KINDS:
        account_owner_id = None  # free-mail domains are people, not companies
    if account_owner_id is not None:
        # Conditions may test it: {field: account_owner, op: exists, value: true}.
        facts = {**facts, ACCOUNT_OWNER_FACT: account_owner_id}
    qualification = score(facts, policy.qualification)
    lines = _score_lines(qualification)
    dq = qualification.disqualification
    if dq is not None:
        lines.append(f"Disqualified by {dq.rule_id} ({dq.reason}): {dq.condition}")
        return Disqualified(dq.rule_id, dq.reason, qualification, tuple(lines))
    rule, trace = match_rule(facts, policy.rules)
    lines += [f"Rule {t.rule_id} {t.reason}" for t in trace]
    choice = choose_owner(rule, policy, states, now, account_owner_id, exclude)
    lines += [f"Skipped {c.rep_id}: {c.reason}" for c in choice.considered if not c.eligible]
    if choice.rep_id is None:
        lines.append(f"Unassigned: {choice.reason}")
        return Unassigned(qualification, choice.reason, rule.id, choice, trace, tuple(lines))
    found = policy.rep(choice.rep_id)
    if found is None:  # choose_owner only picks reps of the policy
        raise ValueError(f"rep {choice.rep_id} is not in the policy")
    tier_sla = policy.sla_for_tier(qualification.tier)
    deadline = due_at(now, tier_sla, found[1])
    lines.append(f"Owner {choice.rep_id} (team {choice.team_id}): {choice.reason}")
    lines.append(
        f"SLA {qualification.tier}: {tier_sla.window_seconds} s on the {tier_sla.clock} clock, "
        f"due {deadline.isoformat()}"
    )
    return Assigned(
        qualification=qualification,
        rule_id=rule.id,
        strategy=rule.strategy,
        choice=choice,
        tier=qualification.tier,
        window_seconds=tier_sla.window_seconds,
        due_at=deadline,
        clock=tier_sla.clock,
        rule_trace=trace,
        explanation=tuple(lines),
    )


def _score_lines(q: QualificationResult) -> list[str]:
    lines = [
        f"Score {q.score} (fit {q.fit}, intent {q.intent}): tier {q.tier}, stage {q.stage}",
    ]
    lines += [f"{r.points:+d} {r.rule_id} ({r.category}): {r.reason}" for r in q.matched]
    unmatched = [r.rule_id for r in q.breakdown if not r.matched]
    if unmatched:
        lines.append("Not counted: " + ", ".join(unmatched))
    if q.framework:
        missing = [name for name, answer in q.framework.items() if answer is None]
        answered = len(q.framework) - len(missing)
        line = f"{q.framework_name}: {answered}/{len(q.framework)} answered"
        lines.append(line + (f" (missing: {', '.join(missing)})" if missing else ""))
    return lines
