"""The router's whole decision for one lead: merge, disqualify, nurture, assign or leave
unassigned.

Precedence is fixed: a contact with a lead still open is merged into it (no second owner),
then disqualification, then the routing rules, which see the score, tier and stage (scoring
comes first) and may keep the lead with marketing (nurture). The explanation lines go into
events and may reach logs, so they name fields, rule ids and rep ids only, never the
contact's data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from services.router.domain.accounts import NO_ACCOUNT_EMAIL_KINDS
from services.router.domain.assignment import (
    Choice,
    Considered,
    RepState,
    choose_owner,
    eligible,
    state_of,
)
from services.router.domain.facts import LeadFacts
from services.router.domain.rules import RuleTry, match_rule
from services.router.domain.scoring import QualificationResult, score
from services.router.domain.sla import due_at
from shared.policy import Policy, RoutingRule

ACCOUNT_OWNER_FACT = "account_owner"  # derived fact: the matched account's owner (rep id)
ACCOUNT_MATCHED_FACT = "account_matched"  # derived fact: the business domain matched an account
NURTURE_STRATEGY = "nurture"
KEPT_OWNER_STRATEGY = "previous_owner"


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
    matched_on: str | None = None  # the identity key that found it (domain.matching)

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


@dataclass(frozen=True, slots=True)
class Nurtured:
    """A routing rule kept the lead with marketing: no rep, no SLA clock, back on
    ``reengage_at`` (or earlier, when a new touch crosses the handoff threshold)."""

    qualification: QualificationResult
    rule_id: str
    reason: str
    reengage_at: datetime
    choice: Choice  # nobody: strategy "nurture", the reason, no rep considered
    rule_trace: tuple[RuleTry, ...]
    explanation: tuple[str, ...]


Decision = Merged | Disqualified | Assigned | Unassigned | Nurtured


def decide(
    *,
    facts: LeadFacts,
    policy: Policy,
    states: Mapping[str, RepState],
    account_owner_id: str | None,
    open_lead: OpenLeadRef | None,
    now: datetime,
    exclude: frozenset[str] = frozenset(),
    to_sales: bool = False,
    keep_owner: str | None = None,
    matched_on: str | None = None,
) -> Decision:
    """Decide what happens to a lead; pure, so redelivery recomputes the same decision.

    ``exclude`` lists reps that must not get the lead (the previous owner on reassignment).
    ``to_sales``: the lead goes to sales whatever nurture rules say (a re-engaged lead: its
    nurture is over), so they are skipped and a lead no other rule takes goes to the fallback
    team; a reassignment (anyone in ``exclude``) is one too: a lead sales had never goes back
    to nurture. ``keep_owner`` (a re-engaged lead's previous owner) keeps it while eligible.
    """
    if open_lead is not None:
        return Merged(
            into_lead_id=open_lead.lead_id,
            owner_id=open_lead.owner_id,
            reason=f"same contact has open lead {open_lead.lead_id}"
            + (f" (matched on {matched_on})" if matched_on else ""),
            matched_on=matched_on,
        )
    if facts.get("email_kind") in NO_ACCOUNT_EMAIL_KINDS:
        account_owner_id = None  # free-mail domains are people, not companies
    # Conditions may test them: {field: account_owner, op: exists, value: true}.
    facts = {**facts, ACCOUNT_MATCHED_FACT: account_owner_id is not None}
    if account_owner_id is not None:
        facts[ACCOUNT_OWNER_FACT] = account_owner_id
    qualification = score(facts, policy.qualification)
    lines = _score_lines(qualification)
    dq = qualification.disqualification
    if dq is not None:
        lines.append(f"Disqualified by {dq.rule_id} ({dq.reason}): {dq.condition}")
        return Disqualified(dq.rule_id, dq.reason, qualification, tuple(lines))
    rule, trace = match_rule(
        {**facts, **qualification.facts()},  # routing rules see the score, tier and stage
        policy.rules,
        handoff_team=policy.fallback_team if to_sales or exclude else None,
    )
    lines += [f"Rule {t.rule_id} {t.reason}" for t in trace]
    if rule.nurture:
        return _nurtured(policy, rule, qualification, trace, lines, now)
    choice = _kept(policy, states, now, keep_owner, exclude) or choose_owner(
        rule, policy, states, now, account_owner_id, exclude
    )
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
        strategy=choice.strategy if choice.strategy == KEPT_OWNER_STRATEGY else rule.strategy,
        choice=choice,
        tier=qualification.tier,
        window_seconds=tier_sla.window_seconds,
        due_at=deadline,
        clock=tier_sla.clock,
        rule_trace=trace,
        explanation=tuple(lines),
    )


def _nurtured(
    policy: Policy,
    rule: RoutingRule,
    q: QualificationResult,
    trace: tuple[RuleTry, ...],
    lines: list[str],
    now: datetime,
) -> Nurtured:
    if policy.nurture is None:  # the loader requires the section once a rule nurtures
        raise ValueError("a nurture rule matched and the policy has no nurture section")
    reengage_at = now + timedelta(days=policy.nurture.reengage_after_days)
    while reengage_at.date() in policy.company_holidays:  # nobody would pick it up that day
        reengage_at += timedelta(days=1)
    reason = (
        f"nurture: rule {rule.id} keeps the lead with marketing (score {q.score}, stage "
        f"{q.stage}) until a new touch crosses the handoff threshold or "
        f"{reengage_at.date().isoformat()}"
    )
    lines.append(f"Nurtured: no rep, no SLA; re-engage {reengage_at.isoformat()}")
    choice = Choice(None, None, NURTURE_STRATEGY, reason, False, ())
    return Nurtured(q, rule.id, reason, reengage_at, choice, trace, tuple(lines))


def _kept(
    policy: Policy,
    states: Mapping[str, RepState],
    now: datetime,
    owner_id: str | None,
    exclude: frozenset[str],
) -> Choice | None:
    """The previous owner of a re-engaged lead keeps it while still eligible (they know it)."""
    found = policy.rep(owner_id) if owner_id and owner_id not in exclude else None
    if found is None or owner_id is None:
        return None
    team, rep = found
    ok, why = eligible(rep, state_of(rep.id, states), now, False)
    if not ok:
        return None
    reason = f"re-engaged: the previous owner {rep.id} keeps the lead"
    return Choice(
        rep.id, team.id, KEPT_OWNER_STRATEGY, reason, False, (Considered(rep.id, ok, why),)
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
