"""The policy fields of the handoff: routing rules on scored facts, nurture rules, the nurture
section; each mistake is an error naming the field (the real loader)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shared.policy import PolicyError
from tests.router.domain.conftest import PolicyFactory

COLD_RULE = {"id": "cold", "when": {"field": "stage", "op": "eq", "value": "lead"}, "nurture": True}


def _with_nurture(rule: dict[str, Any], days: int | None = 30) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["rules"].insert(2, rule)
        if days is not None:
            data["nurture"] = {"reengage_after_days": days}

    return change


def test_a_nurture_rule_and_scored_fields_load(make_policy: PolicyFactory) -> None:
    scored = {"id": "hot", "when": {"all": [
        {"field": "score", "op": "gte", "value": 70}, {"field": "tier", "op": "eq", "value": "hot"},
        {"field": "fit", "op": "gt", "value": 0}, {"field": "intent", "op": "gt", "value": 0},
        {"field": "framework_answered", "op": "gte", "value": 2},
        {"field": "framework_complete", "op": "eq", "value": True},
        {"field": "account_matched", "op": "eq", "value": False},
        {"field": "source", "op": "eq", "value": "website-demo"},
        {"field": "channel", "op": "eq", "value": "form"}]},
        "team": "emea", "strategy": "round_robin"}  # fmt: skip

    def change(data: dict[str, Any]) -> None:
        _with_nurture(COLD_RULE)(data)
        data["rules"].insert(0, scored)

    policy = make_policy(change)
    cold = policy.rules[3]
    assert cold.nurture and cold.team == "" and cold.strategy == "nurture"
    assert policy.nurture is not None and policy.nurture.reengage_after_days == 30
    assert policy.rules[0].team == "emea"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_with_nurture(COLD_RULE, days=None), "rules[2].nurture: needs the nurture section"),
        (_with_nurture(COLD_RULE, days=0), "nurture.reengage_after_days: Input should be"),
        (_with_nurture({**COLD_RULE, "team": "emea"}), "rules[2].team: a nurture rule sends"),
        (_with_nurture({**COLD_RULE, "strategy": "fixed"}), "rules[2].strategy: a nurture rule"),
        (
            _with_nurture({**COLD_RULE, "require_working_hours": True}),
            "rules[2].require_working_hours: a nurture rule assigns no rep",
        ),
        (
            _with_nurture({"id": "x", "when": COLD_RULE["when"], "strategy": "round_robin"}),
            "rules[2].team: required unless nurture: true",
        ),
        (
            _with_nurture({"id": "x", "when": COLD_RULE["when"], "team": "emea"}),
            "rules[2].strategy: required unless nurture: true",
        ),
        (
            _with_nurture(
                {"id": "x", "when": COLD_RULE["when"], "team": "emea", "strategy": "nurture"}
            ),
            "rules[2].strategy: to nurture, write nurture: true",
        ),
        (
            lambda d: d["rules"][1].update(strategy="random"),
            "rules[1].strategy: Input should be 'account_owner', 'round_robin', 'least_loaded' "
            "or 'fixed'",
        ),
        (
            _with_nurture({**COLD_RULE, "when": {"field": "stagee", "op": "eq", "value": "x"}}),
            "rules[2].when.field: unknown lead field 'stagee'",
        ),
        (
            lambda d: d["qualification"]["rules"][0].update(
                when={
                    "any": [
                        {"field": "country", "op": "eq", "value": "DE"},
                        {"field": "score", "op": "gte", "value": 50},
                    ]
                }
            ),
            "qualification.rules[0].when.any[1].field: 'score' is known only after scoring",
        ),
        (
            lambda d: d["qualification"]["disqualify"][0].update(
                when={"not": {"field": "stage", "op": "eq", "value": "sql"}}
            ),
            "qualification.disqualify[0].when.not.field: 'stage' is known only after scoring",
        ),
    ],
)
def test_loader_errors_name_the_field(
    make_policy: PolicyFactory, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    with pytest.raises(PolicyError) as err:
        make_policy(change)
    assert message in str(err.value), str(err.value)
