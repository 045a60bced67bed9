"""Ordered routing rules: the first whose condition holds wins; the default catches the rest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.router.domain.conditions import describe, evaluate
from services.router.domain.facts import LeadFacts
from shared.policy import RoutingRule


@dataclass(frozen=True, slots=True)
class RuleTry:
    """One rule the router tried, and why it did or did not match (policy words, no lead data)."""

    rule_id: str
    matched: bool
    reason: str


SKIPPED_NURTURE = "skipped: a nurture rule, and the lead's nurture is over"


def match_rule(
    facts: LeadFacts, rules: Sequence[RoutingRule], *, handoff_team: str | None = None
) -> tuple[RoutingRule, tuple[RuleTry, ...]]:
    """The first matching rule and the trace of every rule tried up to it.

    With ``handoff_team`` (a re-engaged lead: its nurture is over, sales gets it) nurture rules
    are skipped, and a lead no other rule takes goes to that team by round robin.
    """
    trace: list[RuleTry] = []
    for rule in rules:
        if handoff_team is not None and rule.nurture:
            trace.append(RuleTry(rule.id, False, SKIPPED_NURTURE))
            continue
        if rule.default or rule.when is None:
            trace.append(RuleTry(rule.id, True, "default rule"))
            return rule, tuple(trace)
        condition = describe(rule.when)
        if evaluate(rule.when, facts):
            trace.append(RuleTry(rule.id, True, f"matched: {condition}"))
            return rule, tuple(trace)
        trace.append(RuleTry(rule.id, False, f"did not match: {condition}"))
    if handoff_team is not None:
        handoff = RoutingRule(id="handoff", default=True, team=handoff_team, strategy="round_robin")
        trace.append(RuleTry(handoff.id, True, f"no other rule matched: team {handoff_team}"))
        return handoff, tuple(trace)
    # The loader requires a default last rule; a hand-built policy without one is a bug.
    raise ValueError("no routing rule matched and there is no default rule")
