"""Loader errors for followup's policy fields: the repeating last escalation level."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from shared.policy import load_policy, parse_policy
from tests.shared.test_policy import EXAMPLE, broken, example_data  # noqa: F401


def test_only_the_last_level_may_repeat(example_data: dict[str, Any]) -> None:  # noqa: F811
    def middle(d: dict[str, Any]) -> None:
        d["escalation"][1]["repeat_every_seconds"] = 900

    assert broken(example_data, middle) == (
        "escalation[1].repeat_every_seconds: only the last level may repeat"
    )


def test_a_repetition_has_a_minimum(example_data: dict[str, Any]) -> None:  # noqa: F811
    def too_often(d: dict[str, Any]) -> None:
        d["escalation"][-1]["repeat_every_seconds"] = 60

    assert broken(example_data, too_often) == (
        "escalation[2].repeat_every_seconds: Input should be greater than or equal to 300"
    )


@pytest.mark.parametrize("seconds", [300, 3600])
def test_the_last_level_may_repeat(example_data: dict[str, Any], seconds: int) -> None:  # noqa: F811
    data = {**example_data, "escalation": [dict(e) for e in example_data["escalation"]]}
    data["escalation"][-1]["repeat_every_seconds"] = seconds
    policy = parse_policy(yaml.safe_dump(data, sort_keys=False))
    assert policy.escalation[-1].repeat_every_seconds == seconds
    assert load_policy(EXAMPLE).escalation[-1].repeat_every_seconds is None


def test_feedback_reason_codes_are_checked(example_data: dict[str, Any]) -> None:  # noqa: F811
    def twice(d: dict[str, Any]) -> None:
        d["feedback"] = {"reasons": ["no_budget", "no_budget"]}

    def badly_named(d: dict[str, Any]) -> None:
        d["feedback"] = {"reasons": ["No Budget"]}

    def empty(d: dict[str, Any]) -> None:
        d["feedback"] = {"reasons": []}

    assert broken(example_data, twice) == "feedback.reasons: 'no_budget' is listed twice"
    assert broken(example_data, badly_named) == (
        "feedback.reasons: 'No Budget': use lower-case letters, digits, '-' and '_' only"
    )
    assert broken(example_data, empty) == "feedback.reasons: needs at least 1 item(s)"
    feedback = load_policy(EXAMPLE).feedback
    assert feedback is not None and feedback.accepts("not_icp") and feedback.accepts("other")
    assert not feedback.accepts("weird") and not feedback.accepts(None)
