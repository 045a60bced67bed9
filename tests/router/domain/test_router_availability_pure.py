"""Pure parts of rep pause and out-of-office reassignment: eligibility, the rep state a
batch carries forward, and the policy fields with the loader's errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from services.router.domain.assignment import RepState, eligible
from services.router.domain.writes import Writes
from shared.policy import PolicyError, parse_policy
from tests.router.conftest import base_policy

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def _errors(change: Any) -> str:
    data = base_policy("avail")
    change(data)
    with pytest.raises(PolicyError) as info:
        parse_policy(yaml.safe_dump(data))
    return str(info.value)


def test_a_paused_rep_is_not_eligible_and_says_why() -> None:
    rep = parse_policy(yaml.safe_dump(base_policy("avail"))).teams[0].reps[0]
    paused = RepState(rep.id, paused="missed 3 SLAs in a row")
    assert eligible(rep, paused, NOW, False) == (False, "paused: missed 3 SLAs in a row")
    assert eligible(rep, RepState(rep.id), NOW, False) == (True, "eligible")


def test_a_batch_keeps_a_pause_while_it_counts_leads() -> None:
    """Later decisions of one batch read the states earlier ones leave behind."""
    writes = Writes()
    writes.add_open("rep-x", 1)
    writes.set_weights({"rep-x": -2})
    after = writes.applied_to({"rep-x": RepState("rep-x", 4, 1, paused="missed 2 SLAs in a row")})
    assert after["rep-x"] == RepState("rep-x", 5, -2, paused="missed 2 SLAs in a row")


def test_pause_and_out_of_office_fields_load() -> None:
    data = base_policy("avail")
    data["teams"][0]["pause_after_missed_slas"] = 3
    data["teams"][0]["reassign_on_out_of_office"] = True
    data["teams"][0]["reps"][1]["reassign_on_out_of_office"] = False
    team = parse_policy(yaml.safe_dump(data)).teams[0]
    assert team.pause_after_missed_slas == 3
    assert [team.reassigns_on_out_of_office(r) for r in team.reps] == [True, False, True]
    default = parse_policy(yaml.safe_dump(base_policy("avail"))).teams[0]
    assert default.pause_after_missed_slas is None
    assert not default.reassigns_on_out_of_office(default.reps[0])


def test_bad_pause_and_out_of_office_fields_name_the_field() -> None:
    def zero(data: dict[str, Any]) -> None:
        data["teams"][1]["pause_after_missed_slas"] = 0

    def word(data: dict[str, Any]) -> None:
        data["teams"][0]["reps"][2]["reassign_on_out_of_office"] = "sometimes"

    assert (
        "teams[1].pause_after_missed_slas: Input should be greater than or equal to 1"
        in _errors(zero)
    )
    assert "teams[0].reps[2].reassign_on_out_of_office: Input should be a valid boolean" in _errors(
        word
    )
