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


def match_rule(
    facts: LeadFacts, rules: Sequence[RoutingRule]
) -> tuple[RoutingRule, tuple[RuleTry, ...]]:
    """The first matching rule and the trace of every rule tried up to it."""
    trace: list[RuleTry] = []
    for rule in rules:
        if rule.default or rule.when is None:
            trace.append(RuleTry(rule.id, True, "default rule"))
            return rule, tuple(trace)
        condition = describe(rule.when)
        if evaluate(rule.when, facts):
            trace.append(RuleTry(rule.id, True, f"matched: {condition}"))
            return rule, tuple(trace)
        trace.append(RuleTry(rule.id, False, f"did not match: {condition}"))
    # The loader requires a default last rule; a hand-built policy without one is a bug.
    raise ValueError("no routing rule matched and there is no default rule")
