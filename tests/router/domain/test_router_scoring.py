"""Scoring: per-rule breakdown, fit/intent subtotals, stage and tier boundaries, disqualify."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from services.router.domain.scoring import score
from shared.policy import Policy, Qualification


@pytest.fixture
def q(policy: Policy) -> Qualification:
    return policy.qualification


def test_breakdown_lists_every_rule_with_matched_flag(q: Qualification) -> None:
    result = score({"company_size": 900, "demo_request": True, "seniority": "ic"}, q)
    assert [(r.rule_id, r.category, r.points, r.matched) for r in result.breakdown] == [
        ("enterprise-size", "fit", 25, True),
        ("senior", "fit", 10, False),
        ("demo", "intent", 40, True),
        ("pricing", "intent", 5, False),
    ]
    assert result.breakdown[0].reason == "company_size ≥ 500"
    assert [r.rule_id for r in result.matched] == ["enterprise-size", "demo"]
    assert (result.score, result.fit, result.intent) == (65, 25, 40)
    assert result.disqualification is None


@pytest.mark.parametrize(
    ("facts", "total", "stage", "tier"),
    [
        ({}, 0, "lead", "cold"),
        ({"pricing_page": True}, 5, "lead", "cold"),
        ({"company_size": 500, "pricing_page": True, "seniority": "vp"}, 40, "mql", "warm"),
        ({"company_size": 499, "pricing_page": True, "seniority": "vp"}, 15, "lead", "cold"),
        ({"demo_request": True, "company_size": 500, "pricing_page": True}, 70, "sql", "hot"),
        ({"demo_request": True, "company_size": 500}, 65, "mql", "warm"),
        ({"demo_request": True, "seniority": "director"}, 50, "mql", "warm"),
        (
            {"demo_request": True, "company_size": 10_000, "pricing_page": True,
             "seniority": "c_level"},
            80, "sql", "hot",
        ),
    ],
)  # fmt: skip
def test_stage_and_tier_boundaries(
    q: Qualification, facts: dict[str, Any], total: int, stage: str, tier: str
) -> None:
    result = score(facts, q)
    assert (result.score, result.stage, result.tier) == (total, stage, tier)


def test_negative_points_fall_into_lowest_tier(make_policy: Callable[..., Policy]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["qualification"]["rules"].append(
            {"id": "gmail", "category": "fit", "points": -30,
             "when": {"field": "email_kind", "op": "eq", "value": "free"}}
        )  # fmt: skip

    result = score({"email_kind": "free", "pricing_page": True}, make_policy(change).qualification)
    assert (result.score, result.fit, result.intent) == (-25, -30, 5)
    assert (result.stage, result.tier) == ("lead", "cold")


def test_disqualification_first_matching_rule_wins(q: Qualification) -> None:
    result = score({"company_domain": "Rival.com", "email": "kid@school.edu"}, q)
    assert result.disqualification is not None
    assert result.disqualification.rule_id == "competitor"
    assert result.disqualification.reason == "competitor"
    assert result.disqualification.condition == "company_domain in [rival.com]"
    student = score({"email": "kid@school.edu", "demo_request": True}, q)
    assert student.disqualification is not None
    assert student.disqualification.rule_id == "student"
    assert student.score == 40  # still scored, so the event can show the breakdown


def test_framework_answers_and_completeness(q: Qualification) -> None:
    result = score({"answers.budget": "50k", "answers.timeline": "Q1", "answers.need": " "}, q)
    assert result.framework_name == "BANT"
    assert result.framework == {
        "budget": "50k", "authority": None, "need": None, "timeline": "Q1",
    }  # fmt: skip
    assert result.completeness == 0.5
    assert score({}, q).completeness == 0.0
