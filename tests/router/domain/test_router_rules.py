"""Routing rules: ordered, first match wins, the default catches everything else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from services.router.domain.rules import match_rule
from shared.policy import Policy, RoutingRule


@pytest.fixture
def rules(policy: Policy) -> tuple[RoutingRule, ...]:
    return policy.rules


def test_first_match_wins_even_when_later_rules_also_match(rules: tuple[RoutingRule, ...]) -> None:
    rule, trace = match_rule({"company_domain": "acme.com", "company_size": 900, "country": "DE"},
                             rules)  # fmt: skip
    assert rule.id == "accounts"
    assert [(t.rule_id, t.matched) for t in trace] == [("accounts", True)]
    assert trace[0].reason == "matched: company_domain is present"


def test_trace_lists_rules_tried_and_why(rules: tuple[RoutingRule, ...]) -> None:
    rule, trace = match_rule({"company_size": 900, "country": "fr"}, rules)
    assert rule.id == "enterprise-emea"
    assert [(t.rule_id, t.matched) for t in trace] == [
        ("accounts", False),
        ("enterprise-emea", True),
    ]
    assert trace[0].reason == "did not match: company_domain is present"
    assert trace[1].reason == "matched: company_size ≥ 500 and country in [DE, FR]"


def test_default_rule_last(rules: tuple[RoutingRule, ...]) -> None:
    rule, trace = match_rule({"company_size": 900, "country": "US"}, rules)
    assert rule.id == "default"
    assert [t.matched for t in trace] == [False, False, True]
    assert trace[-1].reason == "default rule"


def test_order_in_the_file_decides(make_policy: Callable[..., Policy]) -> None:
    def swap(data: dict[str, Any]) -> None:
        data["rules"][0], data["rules"][1] = data["rules"][1], data["rules"][0]

    rule, _ = match_rule({"company_domain": "acme.com", "company_size": 900, "country": "DE"},
                         make_policy(swap).rules)  # fmt: skip
    assert rule.id == "enterprise-emea"


def test_no_default_is_an_error(rules: tuple[RoutingRule, ...]) -> None:
    with pytest.raises(ValueError, match="no routing rule matched"):
        match_rule({}, rules[:1])
