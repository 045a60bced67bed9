"""Score a lead against the qualification definition and say which rules counted.

Every rule appears in the breakdown with a ``matched`` flag, so a rep (or sales ops tuning the
policy) can see both why a lead scored what it did and which signals were absent.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.router.domain.conditions import describe, evaluate, is_missing
from services.router.domain.facts import LeadFacts
from shared.policy import Qualification


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule_id: str
    category: str
    points: int
    matched: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Disqualification:
    rule_id: str
    reason: str
    condition: str


@dataclass(frozen=True, slots=True)
class QualificationResult:
    """The outcome of scoring: totals, the per-rule breakdown, stage, tier, framework answers."""

    score: int
    fit: int
    intent: int
    breakdown: tuple[RuleResult, ...]
    stage: str
    tier: str
    disqualification: Disqualification | None
    framework_name: str
    framework: dict[str, str | None]
    completeness: float

    @property
    def matched(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.breakdown if r.matched)

    def facts(self) -> dict[str, object]:
        """The result as facts routing rules may test (`shared.policy.SCORED_FIELDS`), so the
        handoff to sales is a rule on the score, tier, stage or framework answers."""
        return {
            "score": self.score,
            "fit": self.fit,
            "intent": self.intent,
            "tier": self.tier,
            "stage": self.stage,
            "framework_answered": sum(1 for a in self.framework.values() if a is not None),
            "framework_complete": self.completeness >= 1.0,
        }


def _framework_answers(
    facts: LeadFacts, questions: tuple[str, ...]
) -> tuple[dict[str, str | None], float]:
    answers: dict[str, str | None] = {}
    for question in questions:
        value = facts.get(f"answers.{question}")
        answers[question] = None if is_missing(value) else str(value)
    if not questions:
        return answers, 1.0
    answered = sum(1 for v in answers.values() if v is not None)
    return answers, answered / len(questions)


def _disqualification(facts: LeadFacts, qualification: Qualification) -> Disqualification | None:
    for rule in qualification.disqualify:
        if evaluate(rule.when, facts):
            return Disqualification(rule.id, rule.reason, describe(rule.when))
    return None


def score(facts: LeadFacts, qualification: Qualification) -> QualificationResult:
    """Apply every scoring rule (each counts once), then derive stage, tier and disqualification."""
    breakdown = tuple(
        RuleResult(
            rule_id=rule.id,
            category=rule.category,
            points=rule.points,
            matched=evaluate(rule.when, facts),
            reason=describe(rule.when),
        )
        for rule in qualification.rules
    )
    fit = sum(r.points for r in breakdown if r.matched and r.category == "fit")
    intent = sum(r.points for r in breakdown if r.matched and r.category == "intent")
    total = fit + intent
    answers, completeness = _framework_answers(facts, qualification.framework.questions)
    return QualificationResult(
        score=total,
        fit=fit,
        intent=intent,
        breakdown=breakdown,
        stage=qualification.stage_for_score(total),
        tier=qualification.tier_for_score(total),
        disqualification=_disqualification(facts, qualification),
        framework_name=qualification.framework.name,
        framework=answers,
        completeness=completeness,
    )
