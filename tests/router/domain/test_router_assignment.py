"""Eligibility, smooth weighted round robin, least loaded, account owner, fixed and fallback."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.router.domain.assignment import (
    NO_ELIGIBLE_REP,
    RepState,
    choose_owner,
    eligible,
    pick_least_loaded,
    pick_round_robin,
)
from shared.policy import Policy, Rep, RoutingRule

Factory = Callable[..., Policy]

SATURDAY = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # Wednesday, 11:00 in Berlin


@pytest.fixture(scope="module")
def team_of(
    make_policy: Factory, rep_spec: Callable[..., dict[str, Any]]
) -> Callable[..., list[Rep]]:
    """``team_of(1, 2, 3)``: reps rep-a, rep-b, rep-c with those weights."""

    def build(*weights: int) -> list[Rep]:
        def change(data: dict[str, Any]) -> None:
            data["accounts"] = []
            data["teams"][0]["reps"] = [
                rep_spec(f"rep-{chr(ord('a') + i)}", weight=w) for i, w in enumerate(weights)
            ]

        return list(make_policy(change).teams[0].reps)

    return build


def run_rr(reps: list[Rep], picks: int, states: dict[str, RepState] | None = None) -> list[str]:
    states = dict(states or {})
    sequence = []
    for _ in range(picks):
        winner, weights = pick_round_robin(reps, states)
        sequence.append(winner)
        for rep_id, current in weights.items():
            states[rep_id] = RepState(rep_id, 0, current)
    return sequence


# --- smooth weighted round robin -------------------------------------------------------------


def test_swrr_exact_shares_over_600_picks(team_of: Callable[..., list[Rep]]) -> None:
    counts = Counter(run_rr(team_of(1, 2, 3), 600))
    assert counts == {"rep-a": 100, "rep-b": 200, "rep-c": 300}


def test_swrr_sequence_is_smooth_and_deterministic(team_of: Callable[..., list[Rep]]) -> None:
    reps = team_of(1, 2, 3)
    sequence = run_rr(reps, 60)
    assert sequence[:6] == ["rep-c", "rep-b", "rep-a", "rep-c", "rep-b", "rep-c"]
    assert sequence == run_rr(reps, 60)
    assert all(len({*sequence[i : i + 3]}) > 1 for i in range(len(sequence) - 2))
    equal = run_rr(team_of(1, 1, 1), 30)
    assert all(a != b for a, b in itertools.pairwise(equal))
    assert equal[:3] == ["rep-a", "rep-b", "rep-c"]  # ties -> lowest rep id


def test_swrr_state_round_trip_matches_uninterrupted_run(team_of: Callable[..., list[Rep]]) -> None:
    """Stop after every pick, store the state as JSON (the DB), reload: same sequence."""
    reps = team_of(3, 1, 2)
    expected = run_rr(reps, 50)
    stored = "{}"
    got = []
    for _ in range(50):
        states = {k: RepState(k, 0, v) for k, v in json.loads(stored).items()}
        winner, weights = pick_round_robin(reps, states)
        assert pick_round_robin(reps, states) == (winner, weights)  # pure
        got.append(winner)
        stored = json.dumps({**json.loads(stored), **weights})
    assert got == expected


def test_swrr_only_candidates_change(team_of: Callable[..., list[Rep]]) -> None:
    reps = team_of(1, 1, 1)
    states = {"rep-c": RepState("rep-c", 0, 7)}
    winner, weights = pick_round_robin(reps[:2], states)
    assert winner == "rep-a"
    assert weights == {"rep-a": -1, "rep-b": 1}


def test_swrr_needs_candidates() -> None:
    with pytest.raises(ValueError):
        pick_round_robin([], {})


@settings(max_examples=40, deadline=None)
@given(weights=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=5),
       cycles=st.integers(min_value=1, max_value=4))  # fmt: skip
def test_swrr_property_exact_share_per_cycle(
    weights: list[int], cycles: int, team_of: Callable[..., list[Rep]]
) -> None:
    reps = team_of(*weights)
    counts = Counter(run_rr(reps, sum(weights) * cycles))
    assert counts == {r.id: r.weight * cycles for r in reps}


# --- least loaded ----------------------------------------------------------------------------


def test_least_loaded_uses_load_per_weight_then_rep_id(team_of: Callable[..., list[Rep]]) -> None:
    a, b, c = team_of(3, 1, 1)
    states = {"rep-a": RepState("rep-a", 3), "rep-b": RepState("rep-b", 2),
              "rep-c": RepState("rep-c", 1)}  # fmt: skip
    assert pick_least_loaded([a, b, c], states) == "rep-a"  # 3/3 = 1 ties c's 1/1 -> id
    assert pick_least_loaded([b, c], states) == "rep-c"
    assert pick_least_loaded([b, c], {}) == "rep-b"


# --- eligibility -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_rep(make_policy: Factory) -> Callable[..., Rep]:
    """``one_rep(**overrides)``: rep-anna with those policy fields changed."""

    def build(**overrides: Any) -> Rep:
        def change(data: dict[str, Any]) -> None:
            data["teams"][0]["reps"][0].update(overrides)

        return make_policy(change).teams[0].reps[0]

    return build


def test_eligibility_reasons(one_rep: Callable[..., Rep]) -> None:
    ok = one_rep(capacity=2)
    assert eligible(ok, RepState(ok.id, 1), NOW, False) == (True, "eligible")
    assert eligible(ok, RepState(ok.id, 2), NOW, False) == (
        False, "at capacity (2/2 open leads)",
    )  # fmt: skip
    assert eligible(one_rep(active=False), RepState("rep-anna"), NOW, False) == (False, "inactive")
    away = one_rep(out_of_office=[{"from": "2026-12-01T00:00:00+01:00",
                                   "until": "2026-12-03T00:00:00+01:00"}])  # fmt: skip
    assert eligible(away, RepState(away.id), NOW, False) == (
        False, "out of office until 2026-12-03T00:00:00+01:00",
    )  # fmt: skip
    after = datetime(2026, 12, 2, 23, 0, tzinfo=UTC)  # the absence ended at 23:00 UTC
    assert eligible(away, RepState(away.id), after, False) == (True, "eligible")
    assert eligible(ok, RepState(ok.id), SATURDAY, True) == (False, "outside working hours")
    assert eligible(ok, RepState(ok.id), SATURDAY, False) == (True, "eligible")
    assert eligible(ok, RepState(ok.id), NOW, True) == (True, "eligible")


# --- choose_owner ----------------------------------------------------------------------------


def rule(policy: Policy, rule_id: str) -> RoutingRule:
    return next(r for r in policy.rules if r.id == rule_id)


@pytest.fixture(scope="module")
def edit(make_policy: Factory) -> Factory:
    """``edit(rep_anna={...})``: the base policy with those reps' fields changed."""

    def build(**by_rep: dict[str, Any]) -> Policy:
        def change(data: dict[str, Any]) -> None:
            for team in data["teams"]:
                for r in team["reps"]:
                    r.update(by_rep.get(r["id"].replace("-", "_"), {}))

        return make_policy(change)

    return build


def test_round_robin_in_rule_team_returns_new_weights(policy: Policy) -> None:
    choice = choose_owner(rule(policy, "enterprise-emea"), policy, {}, NOW, None)
    assert (choice.rep_id, choice.team_id, choice.strategy) == ("rep-anna", "emea", "round_robin")
    assert not choice.fallback_used
    assert dict(choice.rr_weights) == {"rep-anna": -1, "rep-ben": 1}
    assert [c.rep_id for c in choice.considered] == ["rep-anna", "rep-ben"]
    assert choice.reason == "round_robin in team emea picked rep-anna"


def test_least_loaded_default(policy: Policy) -> None:
    states = {"rep-carl": RepState("rep-carl", 3), "rep-dora": RepState("rep-dora", 1)}
    choice = choose_owner(rule(policy, "default"), policy, states, NOW, None)
    assert (choice.rep_id, choice.strategy, choice.rr_weights) == ("rep-dora", "least_loaded", {})


def test_account_owner_when_eligible(policy: Policy) -> None:
    choice = choose_owner(rule(policy, "accounts"), policy, {}, NOW, "rep-anna")
    assert (choice.rep_id, choice.team_id, choice.strategy) == ("rep-anna", "emea", "account_owner")
    assert choice.reason == "account owner rep-anna of the matched account"


def test_account_owner_out_of_office_falls_through_to_team_round_robin(edit: Factory) -> None:
    policy = edit(rep_anna={"out_of_office": [{"from": "2026-12-01T00:00:00Z",
                                               "until": "2026-12-10T00:00:00Z"}]})  # fmt: skip
    choice = choose_owner(rule(policy, "accounts"), policy, {}, NOW, "rep-anna")
    assert (choice.rep_id, choice.strategy, choice.fallback_used) == (
        "rep-ben", "round_robin", False,
    )  # fmt: skip
    assert choice.reason.startswith("account owner rep-anna not eligible (out of office until")
    assert choice.considered[0].rep_id == "rep-anna" and not choice.considered[0].eligible


def test_account_rule_without_account_uses_team_round_robin(policy: Policy) -> None:
    choice = choose_owner(rule(policy, "accounts"), policy, {}, NOW, None)
    assert (choice.rep_id, choice.strategy) == ("rep-anna", "round_robin")
    assert choice.reason.startswith("no matching account; ")


@pytest.fixture(scope="module")
def fixed_policy(make_policy: Factory) -> Factory:
    """A first rule 'vip' that gives banks to rep-ben (fixed); reps editable like ``edit``."""

    def build(**by_rep: dict[str, Any]) -> Policy:
        def change(data: dict[str, Any]) -> None:
            vip = {"field": "industry", "op": "eq", "value": "Bank"}
            data["rules"].insert(
                0, {"id": "vip", "when": vip, "team": "emea", "strategy": "fixed",
                    "owner": "rep-ben"},
            )  # fmt: skip
            for team in data["teams"]:
                for r in team["reps"]:
                    r.update(by_rep.get(r["id"].replace("-", "_"), {}))

        return make_policy(change)

    return build


def test_fixed_owner_and_its_fallback(fixed_policy: Factory) -> None:
    policy = fixed_policy()
    choice = choose_owner(rule(policy, "vip"), policy, {}, NOW, None)
    assert (choice.rep_id, choice.strategy, choice.fallback_used) == ("rep-ben", "fixed", False)
    policy = fixed_policy(rep_ben={"active": False})
    choice = choose_owner(rule(policy, "vip"), policy, {}, NOW, None)
    assert (choice.rep_id, choice.team_id, choice.fallback_used) == ("rep-carl", "inbound", True)
    assert choice.reason == (
        "fixed owner rep-ben not eligible (inactive); round_robin in fallback team inbound "
        "picked rep-carl"
    )


def test_fallback_team_when_rule_team_full(policy: Policy) -> None:
    states = {"rep-anna": RepState("rep-anna", 10), "rep-ben": RepState("rep-ben", 10)}
    choice = choose_owner(rule(policy, "enterprise-emea"), policy, states, NOW, None)
    assert (choice.rep_id, choice.team_id, choice.fallback_used) == ("rep-carl", "inbound", True)
    skipped = [(c.rep_id, c.reason) for c in choice.considered if not c.eligible]
    assert skipped == [("rep-anna", "at capacity (10/10 open leads)"),
                       ("rep-ben", "at capacity (10/10 open leads)")]  # fmt: skip
    assert choice.reason == (
        "no eligible rep in team emea; round_robin in fallback team inbound picked rep-carl"
    )


def test_working_hours_required_then_relaxed_in_fallback(make_policy: Factory) -> None:
    def change(data: dict[str, Any]) -> None:
        data["rules"][1]["require_working_hours"] = True

    policy = make_policy(change)
    choice = choose_owner(rule(policy, "enterprise-emea"), policy, {}, SATURDAY, None)
    assert (choice.rep_id, choice.team_id, choice.fallback_used) == ("rep-carl", "inbound", True)
    assert "outside working hours" in {c.reason for c in choice.considered}
    assert choice.reason.endswith("(outside working hours, so no lead is left unowned)")
    on_time = choose_owner(rule(policy, "enterprise-emea"), policy, {}, NOW, None)
    assert (on_time.rep_id, on_time.fallback_used) == ("rep-anna", False)


def test_nobody_eligible_is_unassigned(edit: Factory) -> None:
    policy = edit(rep_anna={"active": False}, rep_ben={"active": False},
                  rep_carl={"active": False}, rep_dora={"capacity": 1})  # fmt: skip
    states = {"rep-dora": RepState("rep-dora", 1)}
    choice = choose_owner(rule(policy, "enterprise-emea"), policy, states, NOW, None)
    assert choice.rep_id is None and choice.team_id is None
    assert choice.reason.endswith(NO_ELIGIBLE_REP)
    assert len(choice.considered) == 4 and not any(c.eligible for c in choice.considered)


def test_exclude_previous_owner_on_reassignment(policy: Policy) -> None:
    choice = choose_owner(rule(policy, "enterprise-emea"), policy, {}, NOW, None,
                          exclude=frozenset({"rep-anna"}))  # fmt: skip
    assert choice.rep_id == "rep-ben"
    assert ("rep-anna", False, "previous owner") in choice.considered
